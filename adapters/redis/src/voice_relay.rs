//! Voice across instances: each voice channel is hosted by exactly one instance's SFU at a
//! time, and the other instances relay their sessions' voice calls to it.
//!
//! - The host holds a lease, `voicehost:<channel>` = its instance id, set with `NX` by the
//!   first join and renewed every few seconds while it has participants there; it is released
//!   when the last participant leaves, and expires when the host dies.
//! - A call for a channel hosted elsewhere is published on the host's request channel,
//!   `voicerpc:<host>`; the host runs it on its SFU and publishes the answer on the caller's
//!   `voicereply:<caller>`. The transport options it returns carry the host's own announced
//!   address, so the browser sends media straight to the host.
//! - When the host does not answer within [`CALL_TIMEOUT`], it is taken for dead: the lease is
//!   dropped (if it is still that host's), the call fails (voice.error 8002), and the next join
//!   takes the channel over.
//! - No ghosts: every instance sweeps the voice states every [`RENEW_EVERY`]; a state whose
//!   channel has had no host on two sweeps in a row (its host died, or stopped and released
//!   it) is a participation without media, and ends as a [`MediaLoss`] (everyone hears the
//!   state removed and may join again, which elects a new host). A host that finds its lease
//!   taken by another instance ends its own participants there the same way.

use crate::RedisConn;
use crate::RedisVoiceStateStore;
use async_trait::async_trait;
use ecto_core::ports::{
    ClosedProducer, MediaLoss, MediaPlane, NewConsumer, ProduceRequest, Produced, Transports,
    VoiceStateStore,
};
use ecto_core::{CoreError, CoreResult};
use futures_util::StreamExt;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

/// How long a relayed call may take before the host is taken for dead.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a lease lives without renewal.
const LEASE: Duration = Duration::from_secs(15);
/// How often the host renews its leases.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// KEYS: lease. ARGV: instance, ms. Renews the lease when it is still ours, takes it back
/// when nobody holds it; 0 when another instance does.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local v = redis.call('GET', KEYS[1]) \
         if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end \
         if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
         return 0",
    )
});
/// KEYS: lease. ARGV: instance. Drops the lease when it is (still) that instance's.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});

/// A call, as it travels.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Join {
        server: Uuid,
        channel: Uuid,
        user: Uuid,
    },
    Leave {
        channel: Uuid,
        user: Uuid,
    },
    Capabilities {
        channel: Uuid,
        user: Uuid,
        caps: Value,
    },
    Connect {
        channel: Uuid,
        user: Uuid,
        transport: Uuid,
        dtls: Value,
    },
    Produce {
        channel: Uuid,
        user: Uuid,
        request: ProduceRequest,
    },
    ResumeConsumer {
        channel: Uuid,
        user: Uuid,
        consumer: Uuid,
    },
    PauseProducer {
        channel: Uuid,
        user: Uuid,
        producer: Uuid,
        paused: bool,
    },
    PauseAudio {
        channel: Uuid,
        user: Uuid,
        paused: bool,
    },
    CloseProducer {
        channel: Uuid,
        user: Uuid,
        producer: Uuid,
    },
}

impl Op {
    fn channel(&self) -> Uuid {
        match self {
            Op::Join { channel, .. }
            | Op::Leave { channel, .. }
            | Op::Capabilities { channel, .. }
            | Op::Connect { channel, .. }
            | Op::Produce { channel, .. }
            | Op::ResumeConsumer { channel, .. }
            | Op::PauseProducer { channel, .. }
            | Op::PauseAudio { channel, .. }
            | Op::CloseProducer { channel, .. } => *channel,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: Uuid,
    reply_to: Uuid,
    op: Op,
}

/// A refusal or failure, as it travels back.
#[derive(Debug, Serialize, Deserialize)]
struct Failure {
    refused: bool,
    message: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    id: Uuid,
    result: Result<Value, Failure>,
}

/// Consumers keep whom they are for on the way (the wire form of [`NewConsumer`] does not).
#[derive(Serialize, Deserialize)]
struct Consumers(Vec<(Uuid, NewConsumer)>);

impl Consumers {
    fn of(list: Vec<NewConsumer>) -> Self {
        Consumers(list.into_iter().map(|c| (c.for_user, c)).collect())
    }
    fn into_list(self) -> Vec<NewConsumer> {
        self.0
            .into_iter()
            .map(|(for_user, mut c)| {
                c.for_user = for_user;
                c
            })
            .collect()
    }
}

fn to_value<T: Serialize>(v: T) -> CoreResult<Value> {
    serde_json::to_value(v).map_err(CoreError::internal)
}

fn from_value<T: for<'de> Deserialize<'de>>(v: Value) -> CoreResult<T> {
    serde_json::from_value(v).map_err(CoreError::internal)
}

/// Runs a call on this instance's SFU.
async fn execute(local: &dyn MediaPlane, op: Op) -> CoreResult<Value> {
    match op {
        Op::Join {
            server,
            channel,
            user,
        } => to_value(local.join(server, channel, user).await?),
        Op::Leave { channel, user } => to_value(local.leave(channel, user).await?),
        Op::Capabilities {
            channel,
            user,
            caps,
        } => to_value(Consumers::of(
            local.set_capabilities(channel, user, caps).await?,
        )),
        Op::Connect {
            channel,
            user,
            transport,
            dtls,
        } => to_value(local.connect(channel, user, transport, dtls).await?),
        Op::Produce {
            channel,
            user,
            request,
        } => {
            let produced = local.produce(channel, user, request).await?;
            to_value((produced.producer_id, Consumers::of(produced.consumers)))
        }
        Op::ResumeConsumer {
            channel,
            user,
            consumer,
        } => to_value(local.resume_consumer(channel, user, consumer).await?),
        Op::PauseProducer {
            channel,
            user,
            producer,
            paused,
        } => to_value(
            local
                .pause_producer(channel, user, producer, paused)
                .await?,
        ),
        Op::PauseAudio {
            channel,
            user,
            paused,
        } => to_value(local.pause_audio(channel, user, paused).await?),
        Op::CloseProducer {
            channel,
            user,
            producer,
        } => to_value(local.close_producer(channel, user, producer).await?),
    }
}

type Pending = Arc<Mutex<HashMap<Uuid, oneshot::Sender<Result<Value, Failure>>>>>;

/// The media plane of a managed instance: its own SFU for the channels it hosts, a relay to
/// the host for the others.
pub struct RoutedMediaPlane {
    local: Arc<dyn MediaPlane>,
    conn: RedisConn,
    instance: Uuid,
    pending: Pending,
    /// Who this instance hosts, per channel: user → server (leases are renewed while
    /// non-empty).
    hosted: Mutex<HashMap<Uuid, HashMap<Uuid, Uuid>>>,
    /// Participations that lost their media (to the voice use cases).
    losses: tokio::sync::mpsc::UnboundedSender<MediaLoss>,
    states: RedisVoiceStateStore,
    /// Channels with voice states but no host at the last sweep.
    suspects: Mutex<HashSet<Uuid>>,
    stopping: AtomicBool,
}

impl RoutedMediaPlane {
    /// Starts serving relayed calls for `local`, collecting the answers to ours, renewing
    /// leases and sweeping ghost states; lost participations are sent on `losses`.
    pub async fn start(
        local: Arc<dyn MediaPlane>,
        conn: RedisConn,
        losses: tokio::sync::mpsc::UnboundedSender<MediaLoss>,
    ) -> CoreResult<Arc<RoutedMediaPlane>> {
        let plane = Arc::new(RoutedMediaPlane {
            local,
            states: RedisVoiceStateStore(conn.clone()),
            conn,
            instance: ecto_core::new_id(),
            pending: Arc::new(Mutex::new(HashMap::new())),
            hosted: Mutex::new(HashMap::new()),
            losses,
            suspects: Mutex::new(HashSet::new()),
            stopping: AtomicBool::new(false),
        });
        let channels = [
            plane.requests_of(plane.instance),
            plane.replies_of(plane.instance),
        ];
        let redis = plane.conn.clone();
        let mut subscribed = crate::subscribe(&redis, &channels).await?;
        let weak = Arc::downgrade(&plane);
        tokio::spawn(async move {
            loop {
                // (The subscribing half lives as long as its messages are read.)
                let (_subscriber, mut messages) = subscribed;
                while let Some((_, payload)) = messages.next().await {
                    let Some(plane) = weak.upgrade() else { return };
                    plane.on_message(payload);
                }
                // The connection ended (Redis restarted or unreachable): subscribe again.
                // Calls in flight meanwhile time out as any unanswered call does.
                match crate::resubscribe(&redis, &channels, || weak.strong_count() > 0).await {
                    Some(again) => subscribed = again,
                    None => return,
                }
            }
        });
        let weak = Arc::downgrade(&plane);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RENEW_EVERY);
            loop {
                tick.tick().await;
                let Some(plane) = weak.upgrade() else { break };
                if plane.stopping.load(Ordering::Relaxed) {
                    break;
                }
                plane.renew().await;
                plane.sweep().await;
            }
        });
        Ok(plane)
    }

    fn requests_of(&self, instance: Uuid) -> String {
        self.conn.key(&format!("voicerpc:{instance}"))
    }

    fn replies_of(&self, instance: Uuid) -> String {
        self.conn.key(&format!("voicereply:{instance}"))
    }

    fn lease(&self, channel: Uuid) -> String {
        self.conn.key(&format!("voicehost:{channel}"))
    }

    fn lease_ms(&self) -> u64 {
        LEASE.as_millis() as u64
    }

    /// Serves a call relayed to this instance.
    /// One message of this instance's channels: a call to serve, or the answer to one of ours.
    fn on_message(self: Arc<Self>, payload: String) {
        if let Ok(request) = serde_json::from_str::<Request>(&payload) {
            tokio::spawn(async move { self.serve(request).await });
        } else if let Ok(reply) = serde_json::from_str::<Reply>(&payload) {
            let waiting = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&reply.id);
            if let Some(tx) = waiting {
                let _ = tx.send(reply.result);
            }
        }
    }

    async fn serve(&self, request: Request) {
        let result = self.run_local(request.op).await.map_err(failure);
        let reply = Reply {
            id: request.id,
            result,
        };
        let Ok(text) = serde_json::to_string(&reply) else {
            return;
        };
        if let Err(e) = self
            .conn
            .publish(&self.replies_of(request.reply_to), &text)
            .await
        {
            tracing::warn!(error = %e, "voice reply not sent");
        }
    }

    /// Runs a call here, keeping track of whom this instance hosts.
    async fn run_local(&self, op: Op) -> CoreResult<Value> {
        let membership = match &op {
            Op::Join {
                server,
                channel,
                user,
            } => Some((*channel, *user, Some(*server))),
            Op::Leave { channel, user } => Some((*channel, *user, None)),
            _ => None,
        };
        let result = execute(self.local.as_ref(), op).await;
        if let Some((channel, user, joined)) = membership {
            if result.is_ok() {
                self.track(channel, user, joined).await;
            }
        }
        result
    }

    /// Records a participant joining (in `server`) or leaving a hosted channel; the last one
    /// out releases the lease.
    async fn track(&self, channel: Uuid, user: Uuid, joined: Option<Uuid>) {
        let empty = {
            let mut hosted = self.hosted.lock().unwrap_or_else(|p| p.into_inner());
            let users = hosted.entry(channel).or_default();
            match joined {
                Some(server) => {
                    users.insert(user, server);
                }
                None => {
                    users.remove(&user);
                }
            }
            let empty = users.is_empty();
            if empty {
                hosted.remove(&channel);
            }
            empty
        };
        if empty {
            let mut conn = self.conn.near();
            let _: Result<i64, _> = RELEASE
                .key(self.lease(channel))
                .arg(self.instance.to_string())
                .invoke_async(&mut conn)
                .await;
        }
    }

    /// The media plane ended a participation here on its own.
    pub async fn forget(&self, channel: Uuid, user: Uuid) {
        self.track(channel, user, None).await;
    }

    /// Renews the leases of the channels hosted here; a channel another instance took over
    /// meanwhile is given up, its participants here lose their media.
    async fn renew(&self) {
        let channels: Vec<Uuid> = self
            .hosted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        let mut conn = self.conn.near();
        for channel in channels {
            let renewed: Result<i64, _> = RENEW
                .key(self.lease(channel))
                .arg(self.instance.to_string())
                .arg(self.lease_ms())
                .invoke_async(&mut conn)
                .await;
            match renewed {
                Ok(0) => self.give_up(channel).await,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, %channel, "voice lease not renewed"),
            }
        }
    }

    /// Ends every participation of `channel` on this instance's SFU.
    async fn give_up(&self, channel: Uuid) {
        let users = self
            .hosted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&channel)
            .unwrap_or_default();
        tracing::warn!(%channel, participants = users.len(), "voice channel taken over by another instance");
        for (user, server) in users {
            let closed = self.local.leave(channel, user).await.unwrap_or_default();
            let _ = self.losses.send(MediaLoss {
                server_id: server,
                channel_id: channel,
                user_id: user,
                session_id: None,
                closed,
            });
        }
    }

    /// Ends the voice states of channels that have had no host on two sweeps in a row.
    async fn sweep(&self) {
        let servers = match self.states.servers().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "voice sweep skipped");
                return;
            }
        };
        let previous =
            std::mem::take(&mut *self.suspects.lock().unwrap_or_else(|p| p.into_inner()));
        let mut suspects = HashSet::new();
        let mut conn = self.conn.near();
        for server in servers {
            let Ok(states) = self.states.list(server).await else {
                continue;
            };
            let channels: BTreeSet<Uuid> = states.iter().map(|s| s.channel_id).collect();
            for channel in channels {
                let hosted: bool = match conn.exists(self.lease(channel)).await {
                    Ok(h) => h,
                    Err(_) => continue,
                };
                if hosted {
                    continue;
                }
                if !previous.contains(&channel) {
                    suspects.insert(channel);
                    continue;
                }
                for state in states.iter().filter(|s| s.channel_id == channel) {
                    let _ = self.losses.send(MediaLoss {
                        server_id: server,
                        channel_id: channel,
                        user_id: state.user_id,
                        session_id: Some(state.session_id),
                        closed: Vec::new(),
                    });
                }
            }
        }
        *self.suspects.lock().unwrap_or_else(|p| p.into_inner()) = suspects;
    }

    /// The instance hosting `channel`; a join claims it when nobody does.
    async fn host(&self, channel: Uuid, claim: bool) -> CoreResult<Uuid> {
        let mut conn = self.conn.near();
        let key = self.lease(channel);
        if claim {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(self.instance.to_string())
                .arg("NX")
                .arg("PX")
                .arg(self.lease_ms())
                .query_async(&mut conn)
                .await
                .map_err(crate::redis_error)?;
            if set.is_some() {
                return Ok(self.instance);
            }
        }
        let holder: Option<String> = conn.get(&key).await.map_err(crate::redis_error)?;
        match holder.and_then(|h| Uuid::parse_str(&h).ok()) {
            Some(host) => Ok(host),
            None if claim => Box::pin(self.host(channel, true)).await,
            None => Err(CoreError::bad_request(
                "This voice channel is not hosted anywhere",
            )),
        }
    }

    /// Runs `op` where its channel is hosted.
    async fn call(&self, op: Op) -> CoreResult<Value> {
        let claim = matches!(op, Op::Join { .. });
        let channel = op.channel();
        let host = self.host(channel, claim).await?;
        if host == self.instance {
            return self.run_local(op).await;
        }
        let id = ecto_core::new_id();
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let request = Request {
            id,
            reply_to: self.instance,
            op,
        };
        let text = serde_json::to_string(&request).map_err(CoreError::internal)?;
        let receivers = self.conn.publish(&self.requests_of(host), &text).await?;
        let answer = if receivers == 0 {
            None
        } else {
            tokio::time::timeout(CALL_TIMEOUT, rx)
                .await
                .ok()
                .and_then(Result::ok)
        };
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        match answer {
            Some(Ok(value)) => Ok(value),
            Some(Err(f)) if f.refused => Err(CoreError::bad_request(f.message)),
            Some(Err(f)) => Err(CoreError::internal_msg(f.message)),
            None => {
                // The host is gone: nobody may keep routing to it.
                let mut conn = self.conn.near();
                let _: Result<i64, _> = RELEASE
                    .key(self.lease(channel))
                    .arg(host.to_string())
                    .invoke_async(&mut conn)
                    .await;
                Err(CoreError::internal_msg(format!(
                    "the voice host {host} did not answer"
                )))
            }
        }
    }
}

fn failure(e: CoreError) -> Failure {
    Failure {
        refused: !e.is_fault(),
        message: e.message,
    }
}

#[async_trait]
impl MediaPlane for RoutedMediaPlane {
    fn router_capabilities(&self) -> Value {
        self.local.router_capabilities()
    }

    async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let channels: Vec<Uuid> = self
            .hosted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(channel, _)| channel)
            .collect();
        let mut conn = self.conn.near();
        for channel in channels {
            let _: Result<i64, _> = RELEASE
                .key(self.lease(channel))
                .arg(self.instance.to_string())
                .invoke_async(&mut conn)
                .await;
        }
    }

    async fn join(&self, server: Uuid, channel: Uuid, user: Uuid) -> CoreResult<Transports> {
        from_value(
            self.call(Op::Join {
                server,
                channel,
                user,
            })
            .await?,
        )
    }

    async fn leave(&self, channel: Uuid, user: Uuid) -> CoreResult<Vec<ClosedProducer>> {
        from_value(self.call(Op::Leave { channel, user }).await?)
    }

    async fn set_capabilities(
        &self,
        channel: Uuid,
        user: Uuid,
        caps: Value,
    ) -> CoreResult<Vec<NewConsumer>> {
        let consumers: Consumers = from_value(
            self.call(Op::Capabilities {
                channel,
                user,
                caps,
            })
            .await?,
        )?;
        Ok(consumers.into_list())
    }

    async fn connect(
        &self,
        channel: Uuid,
        user: Uuid,
        transport: Uuid,
        dtls: Value,
    ) -> CoreResult<()> {
        from_value(
            self.call(Op::Connect {
                channel,
                user,
                transport,
                dtls,
            })
            .await?,
        )
    }

    async fn produce(
        &self,
        channel: Uuid,
        user: Uuid,
        request: ProduceRequest,
    ) -> CoreResult<Produced> {
        let (producer_id, consumers): (Uuid, Consumers) = from_value(
            self.call(Op::Produce {
                channel,
                user,
                request,
            })
            .await?,
        )?;
        Ok(Produced {
            producer_id,
            consumers: consumers.into_list(),
        })
    }

    async fn resume_consumer(&self, channel: Uuid, user: Uuid, consumer: Uuid) -> CoreResult<()> {
        from_value(
            self.call(Op::ResumeConsumer {
                channel,
                user,
                consumer,
            })
            .await?,
        )
    }

    async fn pause_producer(
        &self,
        channel: Uuid,
        user: Uuid,
        producer: Uuid,
        paused: bool,
    ) -> CoreResult<()> {
        from_value(
            self.call(Op::PauseProducer {
                channel,
                user,
                producer,
                paused,
            })
            .await?,
        )
    }

    async fn pause_audio(&self, channel: Uuid, user: Uuid, paused: bool) -> CoreResult<()> {
        from_value(
            self.call(Op::PauseAudio {
                channel,
                user,
                paused,
            })
            .await?,
        )
    }

    async fn close_producer(
        &self,
        channel: Uuid,
        user: Uuid,
        producer: Uuid,
    ) -> CoreResult<ClosedProducer> {
        from_value(
            self.call(Op::CloseProducer {
                channel,
                user,
                producer,
            })
            .await?,
        )
    }
}
