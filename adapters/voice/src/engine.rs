//! The media thread: it owns one UDP socket, every transport, router, producer and consumer,
//! and nothing else touches them. Datagrams are told apart by their first byte (STUN 0–3,
//! DTLS 20–63, RTP/RTCP 128–191); commands from the async side arrive on a channel and are
//! answered on a oneshot. Media never waits for the async runtime, and the async runtime
//! never waits for media beyond a command's answer.

mod commands;
mod feedback;

use crate::bwe;
use crate::caps::{self, Kind, ProducerMapping};
use crate::ice;
use crate::loss::{self, Budget, Gaps, History, Reception};
use crate::rtp;
use crate::transport::{Direction, Identity, Transport};
use crate::Stats;
use ecto_core::ports::{
    ClosedProducer, MediaLoss, NewConsumer, ProduceRequest, Produced, Transports,
};
use ecto_core::{CoreError, CoreResult};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Key frames asked of a producer after a video consumer resumes: one every second, this many
/// times (reference §6).
const KEY_FRAME_REQUESTS: u8 = 10;
const KEY_FRAME_INTERVAL: Duration = Duration::from_secs(1);
/// Key-frame requests a consumer's own PLI/FIR may cause: at most one per producer per this.
const KEY_FRAME_MIN_GAP: Duration = Duration::from_millis(500);
/// SRTP packets in a row that fail authentication before a transport is dropped: a peer
/// whose packets all fail is broken or hostile (a replayed or damaged packet now and then
/// never comes close).
const MAX_FAILURES_IN_A_ROW: u32 = 200;
/// How often each producer is told what the SFU received of it.
const RECEIVER_REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Our SSRC as the sender of RTCP feedback to producers.
const FEEDBACK_SSRC: u32 = 0x4543_544f;

/// An operation the async side asks of the media thread.
pub(crate) enum Command {
    Join(Uuid, Uuid, Uuid, oneshot::Sender<CoreResult<Transports>>),
    Leave(Uuid, Uuid, oneshot::Sender<CoreResult<Vec<ClosedProducer>>>),
    Capabilities(
        Uuid,
        Uuid,
        Value,
        oneshot::Sender<CoreResult<Vec<NewConsumer>>>,
    ),
    Connect(Uuid, Uuid, Uuid, Value, oneshot::Sender<CoreResult<()>>),
    Produce(
        Uuid,
        Uuid,
        ProduceRequest,
        oneshot::Sender<CoreResult<Produced>>,
    ),
    ResumeConsumer(Uuid, Uuid, Uuid, oneshot::Sender<CoreResult<()>>),
    PauseProducer(Uuid, Uuid, Uuid, bool, oneshot::Sender<CoreResult<()>>),
    PauseAudio(Uuid, Uuid, bool, oneshot::Sender<CoreResult<()>>),
    CloseProducer(
        Uuid,
        Uuid,
        Uuid,
        oneshot::Sender<CoreResult<ClosedProducer>>,
    ),
}

fn refused(what: impl Into<String>) -> CoreError {
    CoreError::bad_request(what)
}

/// One user in one channel.
struct Participant {
    server: Uuid,
    send: Uuid,
    recv: Uuid,
    capabilities: Option<Value>,
    /// The next consumer `mid` of the receive transport.
    next_mid: u32,
}

struct Producer {
    id: Uuid,
    channel: Uuid,
    user: Uuid,
    transport: Uuid,
    source: String,
    mapping: ProducerMapping,
    paused: bool,
    consumers: Vec<Uuid>,
    last_key_frame_request: Option<Instant>,
    /// Video only: the last packets in the router's form, for consumers' NACKs.
    history: Option<History>,
    /// Video only: what the SFU missed of the producer's stream, asked again by NACK.
    gaps: Gaps,
    /// What the SFU received, for its receiver reports to the producer.
    reception: Reception,
}

/// A consumer's numbering: offsets from the producer's sequence numbers and timestamps,
/// moved whenever the stream restarts (a pause or a producer pause) so that the receiver
/// sees one continuous stream.
#[derive(Default)]
struct Numbering {
    started: bool,
    resync: bool,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
    last_at: Option<Instant>,
    /// The first number sent with the current offsets: a NACK for anything before it names a
    /// packet of an earlier run of the stream.
    epoch_seq: u16,
}

impl Numbering {
    fn map(&mut self, seq: u16, ts: u32, clock_rate: u32, now: Instant) -> (u16, u32) {
        let restarted = !self.started || self.resync;
        if !self.started {
            self.started = true;
            self.seq_offset = rand::random();
            self.ts_offset = rand::random();
        } else if self.resync {
            let elapsed = self
                .last_at
                .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
            let ticks = (elapsed.as_secs_f64() * f64::from(clock_rate)).max(1.0) as u32;
            self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(seq);
            self.ts_offset = self.last_ts.wrapping_add(ticks).wrapping_sub(ts);
        }
        if restarted {
            self.epoch_seq = seq.wrapping_add(self.seq_offset);
        }
        self.resync = false;
        let out = (
            seq.wrapping_add(self.seq_offset),
            ts.wrapping_add(self.ts_offset),
        );
        // Only move forward: a late packet keeps its mapping but not the "last".
        if out.0.wrapping_sub(self.last_seq) < 0x8000 || self.last_at.is_none() {
            self.last_seq = out.0;
            self.last_ts = out.1;
            self.last_at = Some(now);
        }
        out
    }

    /// The producer's number of a packet this consumer was sent as `seq`, and the timestamp
    /// offset to apply to it; `None` for a number not sent in the current run of the stream.
    fn unmap(&self, seq: u16) -> Option<(u16, u32)> {
        let since_epoch = seq.wrapping_sub(self.epoch_seq);
        let behind_last = self.last_seq.wrapping_sub(seq);
        (self.started && since_epoch < 0x8000 && behind_last < 0x8000)
            .then(|| (seq.wrapping_sub(self.seq_offset), self.ts_offset))
    }
}

struct Consumer {
    id: Uuid,
    producer: Uuid,
    user: Uuid,
    transport: Uuid,
    ssrc: u32,
    paused: bool,
    numbering: Numbering,
    /// RTP packets and payload octets sent (for its sender reports).
    packets_sent: u32,
    octets_sent: u32,
    /// Its RTX stream, when the device negotiated one, and that stream's next number.
    rtx: Option<caps::Rtx>,
    rtx_seq: u16,
}

/// A pending series of key-frame requests.
struct KeyFrames {
    producer: Uuid,
    due: Instant,
    left: u8,
}

/// What the media thread is told at start.
pub(crate) struct EngineOptions {
    /// What one send transport may bring in, in kbit/s (0: no cap).
    pub max_bitrate_kbps: u32,
    /// What all send transports of one community server may bring in together (0: no cap).
    pub max_server_bitrate_kbps: u32,
    /// Whether ICE over TCP listens on the same port.
    pub tcp: bool,
}

/// Everything the media thread owns.
pub(crate) struct Engine {
    socket: UdpSocket,
    local: SocketAddr,
    /// Where the async side's wake-up datagrams come from (see [`crate::Sfu`]): they only
    /// end the wait for the socket, so a command is looked at at once.
    waker: SocketAddr,
    announced: SocketAddr,
    identity: Identity,
    stats: Arc<Stats>,
    events: tokio::sync::mpsc::UnboundedSender<MediaLoss>,
    transports: HashMap<Uuid, Transport>,
    by_ufrag: HashMap<String, Uuid>,
    by_addr: HashMap<SocketAddr, Uuid>,
    participants: HashMap<(Uuid, Uuid), Participant>,
    producers: HashMap<Uuid, Producer>,
    /// (send transport, SSRC) → producer.
    by_ssrc: HashMap<(Uuid, u32), Uuid>,
    consumers: HashMap<Uuid, Consumer>,
    /// (recv transport, SSRC) → consumer.
    consumer_by_ssrc: HashMap<(Uuid, u32), Uuid>,
    key_frames: Vec<KeyFrames>,
    last_sweep: Instant,
    last_reports: Instant,
    /// What one send transport may bring in (0: no cap).
    max_bitrate_kbps: u32,
    /// What one community server's send transports may bring in together (0: no cap).
    max_server_bitrate_kbps: u32,
    /// Each community server's byte budget under `max_server_bitrate_kbps`.
    server_budgets: HashMap<Uuid, Budget>,
    /// Whether ICE over TCP listens on the same port (then transports offer it too).
    tcp: bool,
}

impl Engine {
    pub fn new(
        socket: UdpSocket,
        waker: SocketAddr,
        announced: SocketAddr,
        identity: Identity,
        stats: Arc<Stats>,
        events: tokio::sync::mpsc::UnboundedSender<MediaLoss>,
        options: EngineOptions,
    ) -> std::io::Result<Engine> {
        let local = socket.local_addr()?;
        Ok(Engine {
            socket,
            local,
            waker,
            announced,
            identity,
            stats,
            events,
            transports: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            participants: HashMap::new(),
            producers: HashMap::new(),
            by_ssrc: HashMap::new(),
            consumers: HashMap::new(),
            consumer_by_ssrc: HashMap::new(),
            key_frames: Vec::new(),
            last_sweep: Instant::now(),
            last_reports: Instant::now(),
            max_bitrate_kbps: options.max_bitrate_kbps,
            max_server_bitrate_kbps: options.max_server_bitrate_kbps,
            server_budgets: HashMap::new(),
            tcp: options.tcp,
        })
    }

    /// Runs until every command sender is gone.
    pub fn run(mut self, commands: Receiver<Command>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            // Media is timed to 20 ms at most. With no transport only the sweep is due, and a
            // command wakes the thread (its datagram): an idle server wakes once a second,
            // not 50 times.
            let longest = if self.transports.is_empty() {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(20)
            };
            let wait = self
                .next_deadline(now)
                .map_or(longest, |d| d.saturating_duration_since(now))
                .clamp(Duration::from_millis(1), longest);
            let _ = self.socket.set_read_timeout(Some(wait));
            // Read everything that is there, then look at commands and timers.
            let mut first = true;
            loop {
                if !first {
                    let _ = self.socket.set_nonblocking(true);
                }
                match self.socket.recv_from(&mut buf) {
                    Ok((_, from)) if from == self.waker => {}
                    Ok((n, from)) => {
                        let now = Instant::now();
                        self.on_datagram(&buf[..n], from, now);
                    }
                    Err(_) => break,
                }
                first = false;
            }
            let _ = self.socket.set_nonblocking(false);
            loop {
                match commands.try_recv() {
                    Ok(command) => self.on_command(command),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            self.on_timers(Instant::now());
        }
    }

    /// Sends `packets` as one compound RTCP packet to a transport's browser, once media can
    /// flow on it.
    fn send_rtcp(&mut self, transport: Uuid, packets: &[Box<dyn rtcp::packet::Packet>]) {
        let Ok(raw) = rtcp::packet::marshal(packets) else {
            return;
        };
        let Some(t) = self.transports.get_mut(&transport) else {
            return;
        };
        let (Some(to), Some(srtp)) = (t.destination(), t.srtp.as_mut()) else {
            return;
        };
        if let Ok(encrypted) = srtp.tx.encrypt_rtcp(&raw) {
            self.send_to(&encrypted, to);
        }
    }

    fn send_to(&self, data: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.send_to(data, to) {
            tracing::debug!(error = %e, %to, "voice datagram not sent");
        } else {
            self.stats.packets_out.fetch_add(1, Ordering::Relaxed);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Datagrams

    fn on_datagram(&mut self, buf: &[u8], from: SocketAddr, now: Instant) {
        self.stats.packets_in.fetch_add(1, Ordering::Relaxed);
        match buf.first() {
            Some(0..=3) => self.on_stun(buf, from, now),
            Some(20..=63) => self.on_dtls(buf, from, now),
            Some(128..=191) => self.on_srtp(buf, from, now),
            _ => {}
        }
    }

    fn on_stun(&mut self, buf: &[u8], from: SocketAddr, now: Instant) {
        if !ice::is_stun(buf) {
            return;
        }
        let Some(request) = ice::parse(buf) else {
            return;
        };
        let Some(id) = self.by_ufrag.get(&request.server_ufrag).copied() else {
            return;
        };
        let Some(transport) = self.transports.get_mut(&id) else {
            return;
        };
        let crypto = self.identity.provider.crypto();
        let Some(answer) = ice::answer(request, &transport.password, from, crypto) else {
            return;
        };
        if transport.floods(answer.transaction, now) {
            tracing::warn!(
                transport = %id,
                user = %transport.user,
                %from,
                "voice transport dropped: more than {} binding requests in a second",
                crate::transport::MAX_CHECKS_PER_SECOND
            );
            self.lose(id);
            return;
        }
        if let Some(evicted) = transport.checked(from, answer.nominated, now) {
            self.by_addr.remove(&evicted);
        }
        self.by_addr.insert(from, id);
        self.send_to(&answer.response, from);
    }

    fn on_dtls(&mut self, buf: &[u8], from: SocketAddr, now: Instant) {
        let Some(id) = self.by_addr.get(&from).copied() else {
            return;
        };
        let Some(transport) = self.transports.get_mut(&id) else {
            return;
        };
        let result = transport.on_dtls(buf, from, now, &self.identity);
        for (data, to) in transport.dtls_transmits() {
            self.send_to(&data, to);
        }
        if let Err(e) = result {
            tracing::info!(transport = %id, error = %e, "voice transport failed");
            self.lose(id);
        }
    }

    fn on_srtp(&mut self, buf: &[u8], from: SocketAddr, now: Instant) {
        let Some(id) = self.by_addr.get(&from).copied() else {
            return;
        };
        let Some(transport) = self.transports.get_mut(&id) else {
            return;
        };
        let Some(srtp) = transport.srtp.as_mut() else {
            return;
        };
        let plain = if rtp::is_rtcp(buf) {
            srtp.rx.decrypt_rtcp(buf)
        } else {
            srtp.rx.decrypt_rtp(buf)
        };
        let Ok(plain) = plain else {
            self.stats.decrypt_failures.fetch_add(1, Ordering::Relaxed);
            transport.failures_in_a_row += 1;
            if transport.failures_in_a_row >= MAX_FAILURES_IN_A_ROW {
                tracing::warn!(
                    transport = %id,
                    user = %transport.user,
                    %from,
                    "voice transport dropped: {MAX_FAILURES_IN_A_ROW} packets in a row failed SRTP authentication"
                );
                self.lose(id);
            }
            return;
        };
        transport.failures_in_a_row = 0;
        let direction = transport.direction;
        if direction == Direction::Send && !rtp::is_rtcp(buf) {
            if !self.admit(id, buf.len(), now) {
                return;
            }
            if let Some(feedback) = self
                .transports
                .get_mut(&id)
                .and_then(|t| t.feedback.as_mut())
            {
                feedback.on_packet(&plain, now);
            }
        }
        if rtp::is_rtcp(buf) {
            self.on_rtcp(id, direction, &plain, now);
        } else if direction == Direction::Send {
            self.forward(id, &plain, now);
        }
    }

    /// Whether a producer's packet of `bytes` fits its transport's cap and its server's; what
    /// does not is dropped before anyone gets it, with one log line per episode.
    fn admit(&mut self, id: Uuid, bytes: usize, now: Instant) -> bool {
        let Some(t) = self.transports.get_mut(&id) else {
            return false;
        };
        let (server, user) = (t.server, t.user);
        if let Some(budget) = &mut t.budget {
            let (fits, begins) = budget.admit(bytes, now);
            if begins {
                tracing::warn!(
                    transport = %id,
                    %user,
                    "voice media over VOICE_MAX_BITRATE_KBPS ({} kbit/s): dropping what goes over",
                    self.max_bitrate_kbps
                );
            }
            if !fits {
                self.stats.over_cap.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        let cap = self.max_server_bitrate_kbps;
        if cap == 0 {
            return true;
        }
        let budget = self
            .server_budgets
            .entry(server)
            .or_insert_with(|| Budget::new(cap, now));
        let (fits, begins) = budget.admit(bytes, now);
        if !fits {
            // The sender's own budget did not pay for a packet its server's cap dropped.
            if let Some(own) = self.transports.get_mut(&id).and_then(|t| t.budget.as_mut()) {
                own.give_back(bytes);
            }
        }
        if begins {
            tracing::warn!(
                %server,
                "voice media of one server over VOICE_MAX_SERVER_BITRATE_KBPS ({cap} kbit/s): dropping what goes over"
            );
        }
        if !fits {
            self.stats.over_cap.fetch_add(1, Ordering::Relaxed);
        }
        fits
    }

    /// A producer's packet to each of its consumers.
    fn forward(&mut self, transport: Uuid, plain: &[u8], now: Instant) {
        let Some(header) = rtp::header(plain) else {
            return;
        };
        let Some(producer_id) = self.by_ssrc.get(&(transport, header.ssrc)).copied() else {
            return;
        };
        let Some(producer) = self.producers.get_mut(&producer_id) else {
            return;
        };
        if header.ssrc != producer.mapping.ssrc {
            // The producer's RTX stream: a retransmission goes on as the packet it carries;
            // a padding-only bandwidth probe ends here (it was counted for the feedback).
            // Chromium also probes with copies of packets it sent a moment ago ("payload
            // padding"): a packet the SFU already holds goes no further.
            let original = producer
                .mapping
                .rtx
                .filter(|rtx| rtx.payload_type == header.payload_type)
                .and_then(|_| {
                    rtp::from_rtx(plain, producer.mapping.payload_type, producer.mapping.ssrc)
                })
                .filter(|original| {
                    rtp::header(original).is_some_and(|h| {
                        producer
                            .history
                            .as_ref()
                            .is_some_and(|history| history.get(h.sequence).is_none())
                    })
                });
            if let Some(original) = original {
                self.forward(transport, &original, now);
            }
            return;
        }
        if header.payload_type != producer.mapping.payload_type {
            return;
        }
        producer
            .reception
            .on_packet(header.sequence, header.timestamp, now);
        if producer.paused {
            return;
        }
        let Some(routed) = rtp::to_router(
            plain,
            producer.mapping.codec.payload_type,
            &producer.mapping.extensions,
        ) else {
            return;
        };
        let clock_rate = producer.mapping.codec.clock_rate;
        let consumer_ids = producer.consumers.clone();
        let keeps = producer.history.is_some();
        let missed = if keeps {
            producer.gaps.on_packet(header.sequence)
        } else {
            Vec::new()
        };
        if !missed.is_empty() {
            self.ask_again(producer_id, &missed);
        }
        for consumer_id in consumer_ids {
            let Some(consumer) = self.consumers.get_mut(&consumer_id) else {
                continue;
            };
            if consumer.paused {
                continue;
            }
            let Some(out_transport) = self.transports.get_mut(&consumer.transport) else {
                continue;
            };
            let (Some(to), Some(srtp)) = (out_transport.destination(), out_transport.srtp.as_mut())
            else {
                continue;
            };
            let (seq, ts) =
                consumer
                    .numbering
                    .map(header.sequence, header.timestamp, clock_rate, now);
            let mut packet = routed.clone();
            rtp::stamp(&mut packet, consumer.ssrc, seq, ts);
            match srtp.tx.encrypt_rtp(&packet) {
                Ok(encrypted) => {
                    if self.socket.send_to(&encrypted, to).is_ok() {
                        self.stats.packets_out.fetch_add(1, Ordering::Relaxed);
                        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                        consumer.packets_sent = consumer.packets_sent.wrapping_add(1);
                        let payload = packet.len().saturating_sub(12) as u32;
                        consumer.octets_sent = consumer.octets_sent.wrapping_add(payload);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "voice packet not encrypted"),
            }
        }
        // Kept last, so the copy each consumer stamps is the only one made.
        if keeps {
            if let Some(history) = self
                .producers
                .get_mut(&producer_id)
                .and_then(|p| p.history.as_mut())
            {
                history.keep(header.sequence, routed);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Timers

    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let dtls = self
            .transports
            .values()
            .filter_map(|t| t.dtls_peer.and_then(|peer| t.dtls.poll_timeout(&peer)));
        let frames = self.key_frames.iter().map(|k| k.due);
        let feedback = self
            .transports
            .values()
            .filter_map(|t| t.feedback.as_ref().and_then(|f| f.next_due()));
        dtls.chain(frames)
            .chain(feedback)
            .chain(std::iter::once(self.last_sweep + Duration::from_secs(1)))
            .min()
            .map(|d| d.max(now))
    }

    fn on_timers(&mut self, now: Instant) {
        // DTLS retransmissions.
        let mut failed = Vec::new();
        let mut out = Vec::new();
        for (id, t) in &mut self.transports {
            let Some(peer) = t.dtls_peer else { continue };
            if t.dtls.poll_timeout(&peer).is_some_and(|at| at <= now) {
                if let Err(e) = t.dtls.handle_timeout(peer, now) {
                    tracing::info!(transport = %id, error = %e, "voice DTLS handshake timed out");
                    failed.push(*id);
                }
                out.extend(t.dtls_transmits());
            }
        }
        for (data, to) in out {
            self.send_to(&data, to);
        }
        // Key frames after a resume.
        let due: Vec<Uuid> = self
            .key_frames
            .iter()
            .filter(|k| k.due <= now)
            .map(|k| k.producer)
            .collect();
        for producer in due {
            self.request_key_frame(producer, now, true);
        }
        for k in &mut self.key_frames {
            if k.due <= now {
                k.left = k.left.saturating_sub(1);
                k.due = now + KEY_FRAME_INTERVAL;
            }
        }
        self.key_frames
            .retain(|k| k.left > 0 && self.producers.contains_key(&k.producer));
        // Transport-wide congestion feedback, every 100 ms while packets come.
        let mut feedback = Vec::new();
        for t in self.transports.values_mut() {
            if let Some(f) = t.feedback.as_mut() {
                for packet in f.due(now) {
                    feedback.push((t.id, packet));
                }
            }
        }
        for (transport, packet) in feedback {
            self.stats
                .congestion_feedback
                .fetch_add(1, Ordering::Relaxed);
            self.send_rtcp(transport, &[packet]);
        }
        // Receiver reports (and the caps) to every producer, once a second.
        if now.duration_since(self.last_reports) >= RECEIVER_REPORT_INTERVAL {
            self.last_reports = now;
            self.send_receiver_reports(now);
        }
        // Consent, once a second.
        if now.duration_since(self.last_sweep) >= Duration::from_secs(1) {
            self.last_sweep = now;
            let live: std::collections::HashSet<Uuid> =
                self.transports.values().map(|t| t.server).collect();
            self.server_budgets
                .retain(|server, _| live.contains(server));
            failed.extend(
                self.transports
                    .values()
                    .filter(|t| t.consent_expired(now))
                    .map(|t| t.id),
            );
        }
        for id in failed {
            self.lose(id);
        }
    }

    /// A transport failed: its participation ends, and the async side hears of it.
    fn lose(&mut self, transport: Uuid) {
        let Some((channel, user)) = self.transports.get(&transport).map(|t| (t.channel, t.user))
        else {
            return;
        };
        let server = self.participants.get(&(channel, user)).map(|p| p.server);
        let closed = self.end_participation(channel, user);
        if let Some(server_id) = server {
            let _ = self.events.send(MediaLoss {
                server_id,
                channel_id: channel,
                user_id: user,
                session_id: None,
                closed,
            });
        }
    }
}
