//! [`EventBus`] in one process: a broadcast channel carrying every server's events, and each
//! server's log as compact JSON in a ring. A feed that falls more than the channel's capacity
//! behind skips what it missed; the gateway sees the gap in positions and reads the skipped
//! events from the log. Joining and leaving change nothing: the one process hears everything.
//! The channel allocates all its slots up front, so the capacity is kept moderate (4,096
//! events); the log grows with use, up to its bound.

use async_trait::async_trait;
use ecto_core::ports::{Event, EventBus, EventStream, InlineSink};
use ecto_core::{CoreError, CoreResult};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::broadcast;
use uuid::Uuid;

#[derive(Default)]
struct Log {
    /// Position of the newest event.
    head: u64,
    /// The newest events, oldest first; the last one is at `head`.
    entries: VecDeque<Box<str>>,
}

/// In-process fan-out with a bounded log per server.
pub struct MemoryEventBus {
    /// Each receiver takes a clone of what is sent, and the channel lets its copy go once the
    /// last receiver has it: shared, the one feed (the dispatcher's) gets the event itself
    /// rather than a deep copy of its data (perf of a sequential send: 1.2 % of the server's
    /// CPU copying and dropping the copy).
    sender: broadcast::Sender<Arc<Event>>,
    logs: Mutex<HashMap<Uuid, Log>>,
    log_events: usize,
    /// The sink offered each event first ([`EventBus::offer_inline`]): the first one set. A
    /// second would be another gateway on this bus, whose feed keeps the first sink idle (it
    /// takes events only while one feed is open).
    inline: OnceLock<InlineSink>,
}

impl MemoryEventBus {
    /// A bus whose subscribers may fall `capacity` events behind, keeping the last
    /// `log_events` events for [`EventBus::since`].
    pub fn new(capacity: usize, log_events: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(16)).0,
            logs: Mutex::new(HashMap::new()),
            log_events: log_events.max(1),
            inline: OnceLock::new(),
        }
    }

    fn logs(&self) -> MutexGuard<'_, HashMap<Uuid, Log>> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryEventBus {
    fn default() -> Self {
        Self::new(4_096, 50_000)
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, mut event: Event) -> CoreResult<()> {
        let mut logs = self.logs();
        let log = logs.entry(event.server_id).or_default();
        event.position = log.head + 1;
        event.published_ms = ecto_core::ports::publish_time_ms();
        let json = serde_json::to_string(&event).map_err(CoreError::internal)?;
        log.head = event.position;
        log.entries.push_back(json.into_boxed_str());
        while log.entries.len() > self.log_events {
            log.entries.pop_front();
        }
        // Offered and sent under the lock so that the sink and subscribers see positions in
        // order. No receiver is fine: nobody is connected. The sink takes the event only
        // while the feed is one (its owner's): another feed would miss what it took.
        if self.sender.receiver_count() == 1 {
            if let Some(sink) = self.inline.get() {
                if sink(&event) {
                    return Ok(());
                }
            }
        }
        let _ = self.sender.send(Arc::new(event));
        Ok(())
    }

    fn offer_inline(&self, sink: InlineSink) {
        let _ = self.inline.set(sink);
    }

    async fn feed(&self) -> CoreResult<EventStream> {
        let receiver = self.sender.subscribe();
        Ok(Box::pin(futures_util::stream::unfold(
            receiver,
            |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => {
                            let event = Arc::try_unwrap(event).unwrap_or_else(|e| (*e).clone());
                            return Some((event, rx));
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(skipped = n, "event subscriber lagged");
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        )))
    }

    async fn join(&self, _server: Uuid) -> CoreResult<()> {
        Ok(())
    }

    async fn leave(&self, _server: Uuid) -> CoreResult<()> {
        Ok(())
    }

    fn partial(&self) -> bool {
        false
    }

    async fn since(&self, server: Uuid, after: u64) -> CoreResult<Option<Vec<Event>>> {
        let texts: Vec<Box<str>> = {
            let logs = self.logs();
            let Some(log) = logs.get(&server) else {
                return Ok((after == 0).then(Vec::new));
            };
            let oldest = log.head + 1 - log.entries.len() as u64;
            if after > log.head || after + 1 < oldest {
                return Ok(None);
            }
            log.entries
                .iter()
                .skip((after + 1 - oldest) as usize)
                .cloned()
                .collect()
        };
        texts
            .iter()
            .map(|t| serde_json::from_str(t).map_err(CoreError::internal))
            .collect::<CoreResult<Vec<Event>>>()
            .map(Some)
    }

    async fn head(&self, server: Uuid) -> CoreResult<u64> {
        Ok(self.logs().get(&server).map_or(0, |l| l.head))
    }
}
