//! Building audit entries and publishing events: the two things every mutation does.

use super::base::identity::Caller;
use crate::model::NewAudit;
use crate::ports::{Event, Scope};
use crate::{new_id, CoreError, CoreResult, Services};
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

/// Checks override targets: roles must be roles of this server (NOT_FOUND 5000), members
/// members of it (NOT_FOUND 2000), and the caller must be allowed to grant what they allow
/// where they hold `held` (their bits at the channel's or category's level).
pub async fn check_overrides(
    svc: &Services,
    server_id: Uuid,
    perms: &super::perms::Perms,
    held: u64,
    overrides: &[crate::permissions::Override],
) -> CoreResult<()> {
    use crate::permissions::TargetType;
    for o in overrides {
        if !crate::permissions::is_valid(o.deny) {
            return Err(CoreError::invalid_permission_bits());
        }
        perms.may_grant_within(o.allow, held)?;
        match o.target_type {
            TargetType::Role => {
                if !perms.data.roles.iter().any(|r| r.id == o.target_id) {
                    return Err(CoreError::role_not_found());
                }
            }
            TargetType::Member => {
                if svc.members.get(server_id, o.target_id).await?.is_none() {
                    return Err(CoreError::member_not_found());
                }
            }
        }
    }
    Ok(())
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
    let perms = super::perms::Perms::load(svc, server, caller).await?;
    perms.require(crate::permissions::bits::VIEW_AUDIT_LOG, "VIEW_AUDIT_LOG")?;
    let limit = query.limit;
    query.limit = limit + 1;
    let mut entries = svc.structure.audit_log(server.id, query).await?;
    let has_more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    Ok(AuditPage { entries, has_more })
}
