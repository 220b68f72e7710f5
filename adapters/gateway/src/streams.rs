//! The servers this process follows. Each server's events are a stream of their own (numbered
//! from 1 in the server's log); the process joins a server's stream on the bus before its first
//! socket of that server identifies, and leaves it once no socket of the server has been open
//! here for `stream_linger`, so its feed carries the traffic of the communities it serves and
//! not the deployment's. A server whose requests it serves (its memo read) is followed too,
//! for as long as they come. Joining and leaving go through the dispatcher, which reads the feed:
//! a server joined is positioned at its head read after the join took effect, and the events
//! that were already on their way are recognised by their positions.

use crate::registry::Gateway;
use crate::session::Session;
use ecto_core::{CoreError, CoreResult};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;
use uuid::Uuid;

/// One server followed by this process.
pub(crate) struct Stream {
    /// The last position of the server's log applied to all its sessions here.
    pub position: u64,
    /// The server's sessions here.
    pub sessions: HashMap<Uuid, Arc<Session>>,
    /// Connections holding the stream open ([`Joined`]).
    pins: usize,
    /// Since when no connection holds it.
    idle_since: Instant,
}

impl Stream {
    pub fn new(position: u64) -> Self {
        Self {
            position,
            sessions: HashMap::new(),
            pins: 0,
            idle_since: Instant::now(),
        }
    }
}

/// What the dispatcher is asked to do besides reading the feed.
pub(crate) enum Command {
    /// Follow the server, then answer.
    Join(Uuid, oneshot::Sender<CoreResult<()>>),
    /// Follow the server: requests of it are served here (its memo is wanted).
    Want(Uuid),
    /// Stop following the server if still nothing holds it.
    Leave(Uuid),
}

/// A connection's hold on a followed server: while any is held (or a session of the server is
/// here) the process keeps following it.
pub(crate) struct Joined {
    gateway: Arc<Gateway>,
    server_id: Uuid,
}

impl Drop for Joined {
    fn drop(&mut self) {
        let mut registry = self.gateway.registry();
        if let Some(stream) = registry.streams.get_mut(&self.server_id) {
            stream.pins = stream.pins.saturating_sub(1);
            if stream.pins == 0 {
                stream.idle_since = Instant::now();
            }
        }
    }
}

impl Gateway {
    /// Follows the server's events (joining its stream on the bus unless already followed)
    /// for as long as the returned hold lives.
    pub(crate) async fn join(self: &Arc<Self>, server_id: Uuid) -> CoreResult<Joined> {
        loop {
            if let Some(stream) = self.registry().streams.get_mut(&server_id) {
                stream.pins += 1;
                return Ok(Joined {
                    gateway: self.clone(),
                    server_id,
                });
            }
            let (answer, answered) = oneshot::channel();
            self.commands
                .send(Command::Join(server_id, answer))
                .map_err(|_| CoreError::internal_msg("the dispatcher has stopped"))?;
            answered
                .await
                .map_err(|_| CoreError::internal_msg("the dispatcher has stopped"))??;
        }
    }

    /// Does what the dispatcher was asked (on the dispatcher's task, between two events).
    pub(crate) async fn command(&self, command: Command) {
        match command {
            Command::Join(server_id, answer) => {
                let _ = answer.send(self.follow(server_id).await);
            }
            Command::Want(server_id) => {
                if let Err(e) = self.follow(server_id).await {
                    tracing::debug!(error = %e, "server's events not followed for its memo");
                    self.services.memo.unask(server_id);
                }
            }
            Command::Leave(server_id) => self.unfollow(server_id).await,
        }
    }

    /// Joins the server's stream on the bus, then positions it at the server's head: events
    /// after the head arrive on the feed, and those up to it are known by their positions.
    async fn follow(&self, server_id: Uuid) -> CoreResult<()> {
        if self.registry().streams.contains_key(&server_id) {
            return Ok(());
        }
        self.services.events.join(server_id).await?;
        let head = self.services.events.head(server_id).await?;
        self.services.memo.follow(server_id, true);
        self.registry()
            .streams
            .entry(server_id)
            .or_insert_with(|| Stream::new(head));
        metrics::counter!("ecto_event_streams_joined_total").increment(1);
        Ok(())
    }

    /// Leaves the server's stream if nothing held it, and no request read its memo, for
    /// `stream_linger`.
    async fn unfollow(&self, server_id: Uuid) {
        let linger = self.config.stream_linger;
        if self.services.memo.used_within(server_id, linger) {
            return;
        }
        {
            let mut registry = self.registry();
            let idle = registry.streams.get(&server_id).is_some_and(|s| {
                s.pins == 0 && s.sessions.is_empty() && s.idle_since.elapsed() >= linger
            });
            if !idle {
                return;
            }
            registry.streams.remove(&server_id);
        }
        self.services.memo.follow(server_id, false);
        metrics::counter!("ecto_event_streams_left_total").increment(1);
        if let Err(e) = self.services.events.leave(server_id).await {
            tracing::warn!(error = %e, "event stream not left");
        }
    }

    /// Asks the dispatcher to leave the streams nothing has held for `stream_linger`.
    pub(crate) fn leave_idle(&self) {
        let linger = self.config.stream_linger;
        let idle: Vec<Uuid> = self
            .registry()
            .streams
            .iter()
            .filter(|(_, s)| {
                s.pins == 0 && s.sessions.is_empty() && s.idle_since.elapsed() >= linger
            })
            .map(|(id, _)| *id)
            .collect();
        for server_id in idle {
            let _ = self.commands.send(Command::Leave(server_id));
        }
    }
}
