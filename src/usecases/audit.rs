//! Building audit entries and publishing events: the two things every mutation does.

use super::base::access::Perms;
use super::base::identity::Caller;
use crate::model::NewAudit;
use crate::ports::{Event, Scope};
use crate::{new_id, CoreResult, Services};
use serde::Serialize;
use uuid::Uuid;

/// The audit entry for `action` by `caller` on `target`.
pub fn entry(
    svc: &Services,
    server_id: Uuid,
    caller: &Caller,
    action: &'static str,
    target: Option<(&'static str, Uuid)>,
    details: Option<serde_json::Value>,
) -> NewAudit {
    NewAudit {
        id: new_id(),
        server_id,
        actor_id: caller.user_id,
        action,
        target_type: target.map(|t| t.0),
        target_id: target.map(|t| t.1),
        details,
        created_at: svc.clock.now(),
    }
}

/// Publishes `name` with `data` to the server's sessions in `scope`. A failure to publish is
/// logged, not returned: the change it reports is already committed.
pub async fn publish<T: Serialize>(
    svc: &Services,
    server_id: Uuid,
    scope: Scope,
    name: &str,
    data: &T,
) {
    if crate::memo::invalidates(name) {
        svc.memo.invalidate(server_id);
    }
    let data = match serde_json::to_value(data) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, event = name, "cannot serialize event");
            return;
        }
    };
    if let Err(e) = svc
        .events
        .publish(Event::new(server_id, scope, name, data))
        .await
    {
        tracing::error!(error = %e, event = name, "cannot publish event");
    }
}

/// `{success: true}`.
pub fn success() -> serde_json::Value {
    serde_json::json!({ "success": true })
}

/// What `auditlog.list` returns.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub entries: Vec<crate::model::AuditEntry>,
    pub has_more: bool,
}

/// `auditlog.list` (VIEW_AUDIT_LOG): newest first, `before` an entry id.
pub async fn list(
    svc: &Services,
    server: &crate::model::Server,
    caller: &Caller,
    mut query: crate::ports::AuditQuery,
) -> CoreResult<AuditPage> {
    let perms = Perms::load(svc, server, caller).await?;
    perms.require(crate::permissions::bits::VIEW_AUDIT_LOG, "VIEW_AUDIT_LOG")?;
    let limit = query.limit;
    query.limit = limit + 1;
    let mut entries = svc.structure.audit_log(server.id, query).await?;
    let has_more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    Ok(AuditPage { entries, has_more })
}
