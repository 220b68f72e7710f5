//! `system.identify`: who the socket is, then either a resume of their earlier session or a
//! new session that starts with `system.ready`.

use crate::conn::{send_sized, uuid_field, Conn, Flow};
use crate::resume::find_detached;
use crate::session::Session;
use ecto_core::model::Server;
use ecto_core::usecases::base::publish::close;
use ecto_core::usecases::gateway::{identify, ready, session_counted, PROTOCOL_VERSION};
use ecto_core::usecases::Caller;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// The token and active channel of an identify payload; a wrong protocol version or an
/// active channel that is not an id closes the socket.
fn parse_identify(data: &Value) -> Result<(&str, Option<Uuid>), Flow> {
    let Some(token) = data.get("token").and_then(Value::as_str) else {
        return Err(Flow::Close(close::AUTHENTICATION_FAILED, "Auth failed"));
    };
    match data.get("protocol_version") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_i64() == Some(PROTOCOL_VERSION) => {}
        Some(_) => {
            return Err(Flow::Close(
                close::PROTOCOL_VERSION_MISMATCH,
                "Unsupported protocol version",
            ))
        }
    }
    let active = match data.get("active_channel_id") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_str().and_then(ecto_core::parse_id) {
            Some(id) => Some(id),
            None => {
                return Err(Flow::Close(
                    close::AUTHENTICATION_FAILED,
                    "Invalid identify payload",
                ))
            }
        },
    };
    Ok((token, active))
}

impl Conn {
    /// `system.identify {token, protocol_version?, active_channel_id?, session_id?,
    /// resume_seq?}`.
    pub(crate) async fn on_identify(&mut self, data: Value) -> Flow {
        let (token, active) = match parse_identify(&data) {
            Ok(asked) => asked,
            Err(flow) => return flow,
        };
        let Some(server) = self.server().await else {
            return Flow::Close(close::UNKNOWN_ERROR, "Unknown server");
        };
        let caller = match self.identified(&server, token).await {
            Ok(caller) => caller,
            Err(flow) => return flow,
        };
        if let Some(flow) = self.resume_if_asked(&data, &server, &caller).await {
            return flow;
        }
        self.start_session(server, caller, active).await
    }

    /// The member `token` proves, counted within the user's cap of sockets.
    async fn identified(&mut self, server: &Server, token: &str) -> Result<Caller, Flow> {
        let svc = &self.gateway.services;
        let caller = match identify(svc, server, token).await {
            Ok(Ok(caller)) => caller,
            Ok(Err(refusal)) => return Err(Flow::Close(refusal.code, refusal.reason)),
            Err(e) => {
                tracing::warn!(error = %e, "identify failed");
                return Err(Flow::Close(close::UNKNOWN_ERROR, "Identify failed"));
            }
        };
        let cap = self.gateway.config.sockets_per_user;
        match session_counted(svc, server.id, caller.user_id, cap).await {
            Ok(within) => {
                // Given back when the socket closes, at once when it is over the cap.
                self.counted = Some((server.id, caller.user_id));
                if !within {
                    return Err(Flow::Close(close::RATE_LIMITED, "Too many sockets"));
                }
            }
            Err(e) => tracing::warn!(error = %e, "session count unavailable"),
        }
        Ok(caller)
    }

    /// Resume: the same user's earlier session of this server, if its gap can be served;
    /// named by `session_id`, or found by `resume_seq` alone as the Ecto client sends it.
    /// `None` when there is nothing to resume (a new session starts).
    async fn resume_if_asked(
        &mut self,
        data: &Value,
        server: &Server,
        caller: &Caller,
    ) -> Option<Flow> {
        let resume_seq = data.get("resume_seq").and_then(Value::as_u64)?;
        let old_id = match uuid_field(data, "session_id") {
            Some(id) => Some(id),
            None => find_detached(&self.gateway, server.id, caller.user_id, resume_seq).await,
        };
        let resumed = match old_id {
            Some(old_id) => self.try_resume(server, caller, old_id, resume_seq).await,
            None => None,
        };
        crate::resume::count(resumed.is_some());
        resumed
    }

    /// A new session under the hello id: `system.ready` (with the active channel's messages
    /// when it is readable, and a subscription to it).
    async fn start_session(
        &mut self,
        server: Server,
        caller: Caller,
        active: Option<Uuid>,
    ) -> Flow {
        let session_id = self.hello_id;
        // Followed before the state is read: no event after the read is missed.
        if !self.follow(server.id).await {
            return Flow::Close(close::UNKNOWN_ERROR, "Ready failed");
        }
        let svc = &self.gateway.services;
        let (payload, active) = match ready(svc, &server, &caller, session_id, active, 0).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "ready failed");
                return Flow::Close(close::UNKNOWN_ERROR, "Ready failed");
            }
        };
        let socket = self.attach();
        let session = Arc::new(Session::new(
            session_id,
            server,
            caller,
            active.into_iter().collect(),
            socket,
            false,
        ));
        self.gateway.insert(session.clone());
        self.session = Some(session.clone());
        // Online before the ready goes out; the announcement is held until the ready is
        // queued, like any delivery meanwhile.
        self.opened(&session).await;
        if send_sized(&mut self.ws, "system.ready", &payload, payload.size_hint()).await {
            self.live();
            Flow::Continue
        } else {
            Flow::Close(close::UNKNOWN_ERROR, "Ready failed")
        }
    }
}
