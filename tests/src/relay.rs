//! A UDP relay that stands between WebRTC clients and the SFU and loses some of the clients'
//! media on purpose: the server announces the relay's address, every client datagram goes
//! through it, and RTP (not RTCP, STUN or DTLS) from clients is dropped with the probability
//! set at the moment, and what goes over the bitrate cap set at the moment (a narrow path).
//! Each client gets its own upstream socket, so the SFU sees one address per client as
//! without the relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// The running relay; it stops when dropped.
pub struct LossyRelay {
    /// Per mille of client RTP packets dropped now.
    loss: Arc<AtomicU32>,
    /// The client RTP let through, in kbit/s (0: no cap).
    cap_kbps: Arc<AtomicU32>,
    /// Client RTP packets dropped and passed so far.
    pub dropped: Arc<AtomicU64>,
    /// Of those dropped, the padding-only ones (the P bit, which SRTP leaves in the clear, on
    /// a packet without media: browsers' bandwidth probes). They carry nothing to recover and
    /// are never sent again, but a receiver counts them among its lost packets.
    pub dropped_padding: Arc<AtomicU64>,
    pub passed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LossyRelay {
    /// Listens on `listen` and relays to `upstream`.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> LossyRelay {
        let front = Arc::new(UdpSocket::bind(listen).await.expect("relay port"));
        let loss = Arc::new(AtomicU32::new(0));
        let cap_kbps = Arc::new(AtomicU32::new(0));
        let cap = cap_kbps.clone();
        let dropped = Arc::new(AtomicU64::new(0));
        let dropped_padding = Arc::new(AtomicU64::new(0));
        let passed = Arc::new(AtomicU64::new(0));
        let (l, d, p) = (loss.clone(), dropped.clone(), passed.clone());
        let dp = dropped_padding.clone();
        let task = tokio::spawn(async move {
            let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 2048];
            // xorshift: no need for a good generator, only an even one.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            // The cap's byte budget: refilled at the cap, a tenth of a second's worth at most.
            let (mut tokens, mut at) = (0.0f64, std::time::Instant::now());
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                let back = match backs.get(&from) {
                    Some(back) => back.clone(),
                    None => {
                        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("back"));
                        back.connect(upstream).await.expect("upstream");
                        let (front, back2) = (front.clone(), back.clone());
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 2048];
                            while let Ok(n) = back2.recv(&mut buf).await {
                                let _ = front.send_to(&buf[..n], from).await;
                            }
                        });
                        backs.insert(from, back.clone());
                        back
                    }
                };
                let rtp =
                    n >= 12 && (128..=191).contains(&buf[0]) && !(192..=223).contains(&buf[1]);
                if rtp {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if (x % 1000) < u64::from(l.load(Ordering::Relaxed)) {
                        d.fetch_add(1, Ordering::Relaxed);
                        if buf[0] & 0x20 != 0 {
                            dp.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    let kbps = cap.load(Ordering::Relaxed);
                    if kbps > 0 {
                        let rate = f64::from(kbps) * 125.0;
                        let now = std::time::Instant::now();
                        tokens =
                            (tokens + now.duration_since(at).as_secs_f64() * rate).min(rate / 10.0);
                        at = now;
                        if tokens < n as f64 {
                            d.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        tokens -= n as f64;
                    }
                    p.fetch_add(1, Ordering::Relaxed);
                }
                let _ = back.send(&buf[..n]).await;
            }
        });
        LossyRelay {
            loss,
            cap_kbps,
            dropped,
            dropped_padding,
            passed,
            task,
        }
    }

    /// Lets client RTP through at `kbps` at most from now on (0: no cap).
    pub fn set_cap(&self, kbps: u32) {
        self.cap_kbps.store(kbps, Ordering::Relaxed);
    }

    /// Drops `per_mille` of the client RTP packets from now on.
    pub fn set_loss(&self, per_mille: u32) {
        self.loss.store(per_mille, Ordering::Relaxed);
    }
}
