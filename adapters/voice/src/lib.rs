//! `ecto-voice`: the selective forwarding unit behind the core's [`MediaPlane`] port, built on
//! the sans-IO crates of the `rtc` family (STUN, DTLS, SRTP, RTCP) so that mediasoup-client,
//! which the Ecto client uses, connects to it as it would to mediasoup.
//!
//! One UDP port serves every transport (they are told apart by ICE ufrag, then by address,
//! as mediasoup's WebRtcServer does). A dedicated thread owns the socket and all media state
//! ([`engine`]); the async side sends it commands and awaits their answers, so a burst of
//! media never slows HTTP or `/ws`, and media never waits for the async runtime.
//!
//! What it does: ICE-lite with consent (30 s), DTLS in the server role with the client's
//! certificate checked against its announced fingerprint, SRTP (AES-GCM or AES-CM-SHA1-80),
//! per-producer payload-type and header-extension mapping to the router's, per-consumer SSRC,
//! sequence-number and timestamp rewriting with continuity across pauses, and key-frame
//! requests (PLI) on consumer resume and when a consumer asks (PLI/FIR, at most one per
//! producer every 500 ms).

mod bwe;
mod caps;
mod engine;
mod ice;
mod loss;
mod rtp;
mod tcp;
mod transport;

use async_trait::async_trait;
use ecto_core::ports::{
    ClosedProducer, MediaLoss, MediaPlane, NewConsumer, ProduceRequest, Produced, Transports,
};
use ecto_core::{CoreError, CoreResult};
use engine::{Command, Engine};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Where the SFU listens and what it tells clients.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The address the UDP socket binds (port 0: any free port).
    pub bind: SocketAddr,
    /// The address clients send media to (its port 0: the bound port).
    pub announced_ip: IpAddr,
    /// The RTP one send transport may bring in, in kbit/s, averaged over a second (0: no
    /// cap); what goes over it is dropped before it reaches anyone.
    pub max_bitrate_kbps: u32,
    /// The RTP all send transports of one community server may bring in together, in kbit/s
    /// (0: no cap); each sender is told its share by REMB, and what goes over is dropped.
    pub max_server_bitrate_kbps: u32,
}

/// Counters of the media thread.
#[derive(Debug, Default)]
pub struct Stats {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    /// RTP packets sent to consumers.
    pub forwarded: AtomicU64,
    pub decrypt_failures: AtomicU64,
    /// Packets sent again to consumers that asked for them (NACK).
    pub retransmitted: AtomicU64,
    /// NACKs sent to producers for packets the SFU missed.
    pub nacks_sent: AtomicU64,
    /// Producer packets dropped for going over `max_bitrate_kbps` or the server's cap.
    pub over_cap: AtomicU64,
    /// Transport-wide congestion-control feedback packets sent to producers.
    pub congestion_feedback: AtomicU64,
    pub transports: AtomicU64,
    pub producers: AtomicU64,
    pub consumers: AtomicU64,
}

/// Where this process reaches the media socket bound at `bound` (loopback when it listens on
/// every interface).
fn reachable(bound: SocketAddr) -> SocketAddr {
    if bound.ip().is_unspecified() {
        let loopback: IpAddr = if bound.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(loopback, bound.port())
    } else {
        bound
    }
}

/// Listens for ICE over TCP on the port number of the media socket, bridging to it; `false`
/// (with a log line) when that TCP port cannot be had, and clients then have UDP only.
fn start_tcp(bound: SocketAddr) -> bool {
    let listener = std::net::TcpListener::bind(bound).and_then(|l| {
        l.set_nonblocking(true)?;
        Ok(l)
    });
    let runtime = tokio::runtime::Handle::try_current();
    match (listener, runtime) {
        (Ok(listener), Ok(runtime)) => {
            let _guard = runtime.enter();
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    runtime.spawn(tcp::serve(listener, reachable(bound)));
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "voice over TCP unavailable");
                    false
                }
            }
        }
        (Err(e), _) => {
            tracing::warn!(%bound, error = %e, "voice over TCP unavailable: its port is taken");
            false
        }
        (_, Err(e)) => {
            tracing::warn!(error = %e, "voice over TCP unavailable: no runtime");
            false
        }
    }
}

/// A socket connected to the media socket `bound` (through loopback when it listens on every
/// interface), whose datagrams the media thread recognises by their source.
fn waker_for(bound: SocketAddr) -> std::io::Result<UdpSocket> {
    let to = reachable(bound);
    let any: IpAddr = if to.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0))?;
    socket.connect(to)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The SFU of this process.
pub struct Sfu {
    commands: Mutex<mpsc::Sender<Command>>,
    /// Connected to the media socket: an empty datagram after each command ends the media
    /// thread's wait for packets, so commands never wait for its read timeout.
    waker: UdpSocket,
    capabilities: Value,
    /// The address clients are told to send to.
    pub announced: SocketAddr,
    pub stats: Arc<Stats>,
}

impl Sfu {
    /// Binds the socket and starts the media thread. Events the media plane raises on its
    /// own (a participant whose transport failed) arrive on the returned receiver.
    pub fn start(
        config: SfuConfig,
    ) -> Result<(Arc<Sfu>, tokio::sync::mpsc::UnboundedReceiver<MediaLoss>), String> {
        let socket = UdpSocket::bind(config.bind)
            .map_err(|e| format!("cannot bind the voice UDP port {}: {e}", config.bind))?;
        let bound = socket
            .local_addr()
            .map_err(|e| format!("voice socket: {e}"))?;
        let announced = SocketAddr::new(config.announced_ip, bound.port());
        let waker = waker_for(bound).map_err(|e| format!("voice waker socket: {e}"))?;
        let waker_from = waker
            .local_addr()
            .map_err(|e| format!("voice waker socket: {e}"))?;
        let identity = transport::Identity::generate()?;
        let tcp = start_tcp(bound);
        let stats = Arc::new(Stats::default());
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let engine = Engine::new(
            socket,
            waker_from,
            announced,
            identity,
            stats.clone(),
            events_tx,
            engine::EngineOptions {
                max_bitrate_kbps: config.max_bitrate_kbps,
                max_server_bitrate_kbps: config.max_server_bitrate_kbps,
                tcp,
            },
        )
        .map_err(|e| format!("voice socket: {e}"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("ecto-voice".into())
            .spawn(move || engine.run(rx))
            .map_err(|e| format!("cannot start the voice thread: {e}"))?;
        tracing::info!(%bound, %announced, tcp, "voice SFU listening");
        Ok((
            Arc::new(Sfu {
                commands: Mutex::new(tx),
                waker,
                capabilities: caps::router_capabilities(),
                announced,
                stats,
            }),
            events_rx,
        ))
    }

    /// Sends a command to the media thread and waits for its answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<CoreResult<T>>) -> Command,
    ) -> CoreResult<T> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(make(tx))
            .map_err(|_| CoreError::internal_msg("the voice thread is gone"))?;
        // Best effort: without it the command still runs within the thread's read timeout
        // (20 ms while media flows, a second when idle).
        let _ = self.waker.send(&[]);
        rx.await
            .map_err(|_| CoreError::internal_msg("the voice thread dropped a command"))?
    }

    /// Forwarded RTP packets so far.
    pub fn forwarded(&self) -> u64 {
        self.stats.forwarded.load(Ordering::Relaxed)
    }

    /// Packets sent again to consumers that asked for them (NACK) since start.
    pub fn retransmitted(&self) -> u64 {
        self.stats.retransmitted.load(Ordering::Relaxed)
    }

    /// NACKs sent to producers for packets the SFU missed since start.
    pub fn nacks_sent(&self) -> u64 {
        self.stats.nacks_sent.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl MediaPlane for Sfu {
    fn router_capabilities(&self) -> Value {
        self.capabilities.clone()
    }

    async fn join(&self, server: Uuid, channel: Uuid, user: Uuid) -> CoreResult<Transports> {
        self.ask(|r| Command::Join(server, channel, user, r)).await
    }

    async fn leave(&self, channel: Uuid, user: Uuid) -> CoreResult<Vec<ClosedProducer>> {
        self.ask(|r| Command::Leave(channel, user, r)).await
    }

    async fn set_capabilities(
        &self,
        channel: Uuid,
        user: Uuid,
        capabilities: Value,
    ) -> CoreResult<Vec<NewConsumer>> {
        self.ask(|r| Command::Capabilities(channel, user, capabilities, r))
            .await
    }

    async fn connect(
        &self,
        channel: Uuid,
        user: Uuid,
        transport_id: Uuid,
        dtls_parameters: Value,
    ) -> CoreResult<()> {
        self.ask(|r| Command::Connect(channel, user, transport_id, dtls_parameters, r))
            .await
    }

    async fn produce(
        &self,
        channel: Uuid,
        user: Uuid,
        request: ProduceRequest,
    ) -> CoreResult<Produced> {
        self.ask(|r| Command::Produce(channel, user, request, r))
            .await
    }

    async fn resume_consumer(&self, channel: Uuid, user: Uuid, consumer: Uuid) -> CoreResult<()> {
        self.ask(|r| Command::ResumeConsumer(channel, user, consumer, r))
            .await
    }

    async fn pause_producer(
        &self,
        channel: Uuid,
        user: Uuid,
        producer: Uuid,
        paused: bool,
    ) -> CoreResult<()> {
        self.ask(|r| Command::PauseProducer(channel, user, producer, paused, r))
            .await
    }

    async fn pause_audio(&self, channel: Uuid, user: Uuid, paused: bool) -> CoreResult<()> {
        self.ask(|r| Command::PauseAudio(channel, user, paused, r))
            .await
    }

    async fn close_producer(
        &self,
        channel: Uuid,
        user: Uuid,
        producer: Uuid,
    ) -> CoreResult<ClosedProducer> {
        self.ask(|r| Command::CloseProducer(channel, user, producer, r))
            .await
    }
}
