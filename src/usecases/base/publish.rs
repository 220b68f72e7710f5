//! What every mutation does once its change is committed, and what ends sessions: the audit
//! entry written with the change, the events published to the server's sessions (including
//! the activity items a change created), and the internal event that closes sessions.

use super::identity::Caller;
use super::views::activity_items;
use crate::model::{ActivityRecord, NewAudit, Server};
use crate::ports::{Event, Scope};
use crate::{new_id, Services};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// Name of the internal event that closes sessions (never sent to clients).
pub const CLOSE_EVENT: &str = "internal.close";

/// WebSocket close codes (DECISIONS §2).
pub mod close {
    /// Anything else (also: missed events, a full outbound queue).
    pub const UNKNOWN_ERROR: u16 = 4000;
    /// A frame that is not a JSON event.
    pub const INVALID_PAYLOAD: u16 = 4002;
    /// An event before identify, an identify timeout, or a kick or ban.
    pub const NOT_AUTHENTICATED: u16 = 4003;
    /// An identify whose token proves no member of this server.
    pub const AUTHENTICATION_FAILED: u16 = 4004;
    /// A second identify on the same socket.
    pub const ALREADY_AUTHENTICATED: u16 = 4005;
    /// The session ended: revoked, or resumed elsewhere.
    pub const SESSION_EXPIRED: u16 = 4006;
    /// A resume whose sequence cannot be served.
    pub const INVALID_SEQUENCE: u16 = 4007;
    /// Too many events, or too many sockets.
    pub const RATE_LIMITED: u16 = 4008;
    /// No heartbeat in time.
    pub const SESSION_TIMEOUT: u16 = 4009;
    /// An identify asking for another protocol version.
    pub const PROTOCOL_VERSION_MISMATCH: u16 = 4010;
    /// The process is stopping, or the server was deleted.
    pub const SERVER_SHUTTING_DOWN: u16 = 4011;
}

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
    let data = match serde_json::to_value(data) {
        Ok(v) => v,
        Err(e) => {
            // Not published, so not heard by any process: this one drops the server's memo
            // itself, whatever the change was.
            if crate::memo::invalidates(name) {
                svc.memo.invalidate(server_id);
            }
            tracing::error!(error = %e, event = name, "cannot serialize event");
            return;
        }
    };
    svc.memo.notice(server_id, name, &data);
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

/// Publishes `activity.create` to the recipient of each of `records` (already committed). A
/// failure to build the items is logged, not returned: what they report is already written.
pub async fn activity_created(svc: &Services, server: &Server, records: Vec<ActivityRecord>) {
    if records.is_empty() {
        return;
    }
    let users: Vec<Uuid> = records.iter().map(|r| r.user_id).collect();
    match activity_items(svc, server, records).await {
        Ok(items) => {
            for (user, item) in users.into_iter().zip(items) {
                publish(svc, server.id, Scope::User(user), "activity.create", &item).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot build activity items to publish"),
    }
}

/// Closes the sessions of `user_id` in the server (every session when `None`) with `code`.
pub async fn close_sessions(
    svc: &Services,
    server_id: Uuid,
    user_id: Option<Uuid>,
    code: u16,
    reason: &str,
) {
    let scope = match user_id {
        Some(u) => Scope::User(u),
        None => Scope::Server,
    };
    publish(
        svc,
        server_id,
        scope,
        CLOSE_EVENT,
        &json!({ "code": code, "reason": reason }),
    )
    .await;
}
