//! `voice --loss`: a UDP relay between the load tool's peers and the SFU that loses a share of
//! the RTP both ways (never RTCP, STUN or DTLS), so the run shows what loss recovery gets back
//! and what it costs in delay. The peers are given the relay's address instead of the SFU's;
//! each peer gets its own upstream socket, so the SFU still sees one address per peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// The load tool's audio payloads are 160 bytes and its camera's 1,000: the size of the
/// (encrypted) packet tells them apart without decrypting it.
const VIDEO_ABOVE: usize = 600;

/// RTP packets the relay dropped, by direction and kind.
#[derive(Default)]
pub struct Dropped {
    pub audio_up: AtomicU64,
    pub video_up: AtomicU64,
    pub audio_down: AtomicU64,
    pub video_down: AtomicU64,
}

/// The running relay; it stops when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    pub dropped: Arc<Dropped>,
    /// Whether it loses packets now (off while the call is set up and after it).
    pub losing: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Decides, evenly and reproducibly, which packets are lost.
struct Dice {
    x: u64,
    per_mille: u64,
}

impl Dice {
    fn lose(&mut self) -> bool {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x % 1000 < self.per_mille
    }
}

fn is_rtp(buf: &[u8]) -> bool {
    buf.len() >= 12 && (128..=191).contains(&buf[0]) && !(192..=223).contains(&buf[1])
}

/// Counts a lost packet; whether it is lost.
fn lost(
    buf: &[u8],
    dice: &mut Dice,
    losing: &AtomicBool,
    audio: &AtomicU64,
    video: &AtomicU64,
) -> bool {
    if !is_rtp(buf) || !losing.load(Ordering::Relaxed) || !dice.lose() {
        return false;
    }
    let counter = if buf.len() > VIDEO_ABOVE {
        video
    } else {
        audio
    };
    counter.fetch_add(1, Ordering::Relaxed);
    true
}

/// A relay on loopback to `upstream` that loses `percent` of the RTP each way while `losing`.
pub async fn start(upstream: SocketAddr, percent: f64) -> Result<Relay, String> {
    let front = Arc::new(
        UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("relay socket: {e}"))?,
    );
    let addr = front
        .local_addr()
        .map_err(|e| format!("relay socket: {e}"))?;
    let per_mille = (percent * 10.0).round().clamp(0.0, 1000.0) as u64;
    let dropped = Arc::new(Dropped::default());
    let losing = Arc::new(AtomicBool::new(false));
    let (d, l) = (dropped.clone(), losing.clone());
    let task = tokio::spawn(async move {
        let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; 2048];
        let mut dice = Dice {
            x: 0x9E37_79B9_7F4A_7C15,
            per_mille,
        };
        while let Ok((n, from)) = front.recv_from(&mut buf).await {
            let back = match backs.get(&from) {
                Some(back) => back.clone(),
                None => {
                    let Ok(back) = UdpSocket::bind("127.0.0.1:0").await else {
                        continue;
                    };
                    if back.connect(upstream).await.is_err() {
                        continue;
                    }
                    let back = Arc::new(back);
                    let (front, back2, d, l) = (front.clone(), back.clone(), d.clone(), l.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        let mut dice = Dice {
                            x: 0xD1B5_4A32_D192_ED03 ^ u64::from(from.port()),
                            per_mille,
                        };
                        while let Ok(n) = back2.recv(&mut buf).await {
                            let packet = &buf[..n];
                            if !lost(packet, &mut dice, &l, &d.audio_down, &d.video_down) {
                                let _ = front.send_to(packet, from).await;
                            }
                        }
                    });
                    backs.insert(from, back.clone());
                    back
                }
            };
            let packet = &buf[..n];
            if !lost(packet, &mut dice, &l, &d.audio_up, &d.video_up) {
                let _ = back.send(packet).await;
            }
        }
    });
    Ok(Relay {
        addr,
        dropped,
        losing,
        task,
    })
}
