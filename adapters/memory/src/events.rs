//! [`EventBus`] in one process: a broadcast channel. A subscriber that falls more than the
//! channel's capacity behind skips what it missed (the gateway's resume covers sessions).
//! The channel allocates all its slots up front, so the capacity is kept moderate (4,096
//! events): the only subscriber, the gateway's dispatcher, never falls that far behind.

use async_trait::async_trait;
use ecto_core::ports::{Event, EventBus, EventStream};
use ecto_core::CoreResult;
use tokio::sync::broadcast;

/// In-process fan-out.
pub struct MemoryEventBus {
    sender: broadcast::Sender<Event>,
}

impl MemoryEventBus {
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(16)).0,
        }
    }
}

impl Default for MemoryEventBus {
    fn default() -> Self {
        Self::new(4_096)
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, event: Event) -> CoreResult<()> {
        // No receiver is fine: nobody is connected.
        let _ = self.sender.send(event);
        Ok(())
    }

    async fn subscribe(&self) -> CoreResult<EventStream> {
        let receiver = self.sender.subscribe();
        Ok(Box::pin(futures_util::stream::unfold(
            receiver,
            |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => return Some((event, rx)),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(skipped = n, "event subscriber lagged");
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        )))
    }
}
