//! [`EventBus`] on Redis pub/sub: every process publishes to, and listens on, one channel.

use crate::RedisConn;
use async_trait::async_trait;
use ecto_core::ports::{Event, EventBus, EventStream};
use ecto_core::{CoreError, CoreResult};
use futures_util::StreamExt;
use redis::AsyncCommands;

/// Cross-process fan-out.
pub struct RedisEventBus {
    conn: RedisConn,
    client: redis::Client,
}

impl RedisEventBus {
    pub fn new(conn: RedisConn, url: &str) -> CoreResult<Self> {
        Ok(Self {
            conn,
            client: redis::Client::open(url).map_err(CoreError::internal)?,
        })
    }

    fn channel(&self) -> String {
        self.conn.key("events")
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, event: Event) -> CoreResult<()> {
        let payload = serde_json::to_string(&event).map_err(CoreError::internal)?;
        let mut conn = self.conn.manager.clone();
        conn.publish::<_, _, ()>(self.channel(), payload)
            .await
            .map_err(CoreError::internal)
    }

    async fn subscribe(&self) -> CoreResult<EventStream> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(CoreError::internal)?;
        pubsub
            .subscribe(self.channel())
            .await
            .map_err(CoreError::internal)?;
        let stream = pubsub.into_on_message().filter_map(|msg| async move {
            let payload: String = msg.get_payload().ok()?;
            match serde_json::from_str::<Event>(&payload) {
                Ok(event) => Some(event),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable event on the bus");
                    None
                }
            }
        });
        Ok(Box::pin(stream))
    }
}
