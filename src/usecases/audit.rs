//! `auditlog.list`. Audit entries are written by the mutations themselves, with the change
//! (see [`crate::usecases::base::publish::entry`]).

use super::base::access::Perms;
use super::base::identity::Caller;
use crate::{CoreResult, Services};
use serde::Serialize;

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
