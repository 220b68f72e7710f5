//! ICE over TCP (RFC 6544 passive candidates, RFC 4571 framing) for clients whose UDP is
//! blocked, on the same port number as the UDP socket. Each accepted connection is bridged to
//! the media socket through a UDP socket of its own on loopback: the media thread sees one more
//! UDP client and does not know about TCP at all, so the UDP path keeps its single socket and
//! thread untouched. Connections are few (a fallback), capped, and closed when idle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

/// TCP connections bridged at once at most.
const MAX_CONNECTIONS: usize = 1024;
/// The largest frame taken from a client (a datagram is at most a few kilobytes).
const MAX_FRAME: usize = 4096;
/// A connection that brings nothing for this long is closed (ICE consent is every few seconds).
const IDLE: Duration = Duration::from_secs(30);

/// Accepts connections on `listener` and bridges each to the media socket at `media`.
pub(crate) async fn serve(listener: TcpListener, media: SocketAddr) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "voice over TCP: too many connections, refused");
            continue;
        };
        tokio::spawn(async move {
            if let Err(e) = bridge(stream, media).await {
                tracing::debug!(%peer, error = %e, "voice over TCP connection ended");
            }
            drop(slot);
        });
    }
}

/// Frames from the client become datagrams to the media socket, and its datagrams back
/// become frames, until either side stops or the client is idle.
async fn bridge(stream: TcpStream, media: SocketAddr) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let any: SocketAddr = if media.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let udp = UdpSocket::bind(any).await?;
    udp.connect(media).await?;
    let (mut rx, mut tx) = stream.into_split();
    let inbound = async {
        let mut frame = vec![0u8; MAX_FRAME];
        loop {
            let mut len = [0u8; 2];
            tokio::time::timeout(IDLE, rx.read_exact(&mut len))
                .await
                .map_err(|_| std::io::Error::other("idle"))??;
            let len = usize::from(u16::from_be_bytes(len));
            if len == 0 || len > MAX_FRAME {
                return Err::<(), _>(std::io::Error::other("frame size"));
            }
            rx.read_exact(&mut frame[..len]).await?;
            udp.send(&frame[..len]).await?;
        }
    };
    let outbound = async {
        let mut datagram = vec![0u8; 2 + 65_535];
        loop {
            let n = udp.recv(&mut datagram[2..]).await?;
            let len = u16::try_from(n).map_err(std::io::Error::other)?;
            datagram[..2].copy_from_slice(&len.to_be_bytes());
            tx.write_all(&datagram[..2 + n]).await?;
        }
    };
    tokio::select! {
        r = inbound => r,
        r = outbound => r,
    }
}
