//! Events of an operator's command for a running server that shares no event bus with it
//! (self-hosted without Redis): the command's bus also leaves each event in the database
//! ([`RelayingBus`]), and the server takes them every [`POLL`] and publishes them on its own
//! bus ([`spawn_taker`]), where they close sessions and reach its caches as its own events do.
//! With Redis every process hears the bus and none of this runs.

use async_trait::async_trait;
use ecto_core::ports::{Event, EventBus, EventStream, InlineSink};
use ecto_core::CoreResult;
use ecto_sql::Db;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How often the server looks for events left by a command: how long at most a command's
/// change waits before the server's sessions see it.
const POLL: Duration = Duration::from_secs(1);

/// A command's bus: publishes on `inner` (its own process) and leaves every event for the
/// running server.
pub(crate) struct RelayingBus {
    pub(crate) inner: Arc<dyn EventBus>,
    pub(crate) db: Db,
}

#[async_trait]
impl EventBus for RelayingBus {
    async fn publish(&self, event: Event) -> CoreResult<()> {
        if let Err(e) = self.db.relay_event(&event).await {
            tracing::error!(
                error = %e,
                event = %event.name,
                "the running server cannot be told of this change: restart it so that its \
                 sessions see it"
            );
        }
        self.inner.publish(event).await
    }

    async fn feed(&self) -> CoreResult<EventStream> {
        self.inner.feed().await
    }

    async fn join(&self, server: Uuid) -> CoreResult<()> {
        self.inner.join(server).await
    }

    async fn leave(&self, server: Uuid) -> CoreResult<()> {
        self.inner.leave(server).await
    }

    fn partial(&self) -> bool {
        self.inner.partial()
    }

    async fn since(&self, server: Uuid, after: u64) -> CoreResult<Option<Vec<Event>>> {
        self.inner.since(server, after).await
    }

    async fn head(&self, server: Uuid) -> CoreResult<u64> {
        self.inner.head(server).await
    }

    fn offer_inline(&self, sink: InlineSink) {
        self.inner.offer_inline(sink)
    }
}

/// The server's side: drops what was left before it started (it has no session and no cache
/// those events concern), then every [`POLL`] publishes what commands left on `events`.
pub(crate) fn spawn_taker(db: Db, events: Arc<dyn EventBus>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        if let Err(e) = db.take_relayed_events().await {
            tracing::warn!(error = %e, "cannot clear the events left by earlier commands");
        }
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let taken = match db.take_relayed_events().await {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the events left by a command");
                    continue;
                }
            };
            for event in taken {
                tracing::info!(event = %event.name, "publishing an event of an operator's command");
                if let Err(e) = events.publish(event).await {
                    tracing::warn!(error = %e, "cannot publish an event of an operator's command");
                }
            }
        }
    })
    .abort_handle()
}
