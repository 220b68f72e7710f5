//! `ecto-server health [--ready]`: asks the server of this configuration, on its own port,
//! whether it is alive (`/health`) or ready (`/ready`: database, Redis and S3 answer). It is the
//! health check of the container image and the compose files, which have no HTTP client of
//! their own; exit status 0 when the answer is 200.

use super::{CliError, CliResult};
use crate::config::AppConfig;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the whole probe may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Where a local client reaches the server: its bind address, or loopback when it listens on
/// every address.
fn target(config: &AppConfig) -> CliResult<SocketAddr> {
    let ip: IpAddr = config.bind_address.parse().map_err(|_| {
        CliError::new(format!(
            "BIND_ADDRESS {:?} is not an IP address",
            config.bind_address
        ))
    })?;
    let ip = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    Ok(SocketAddr::new(ip, config.port))
}

/// The server's answer to `GET /health` (or `/ready`), when it is 200: its body. Any other
/// answer, or none within 3 s, is an error saying what came back.
pub fn probe(config: &AppConfig, ready: bool) -> CliResult<String> {
    let path = if ready { "/ready" } else { "/health" };
    let addr = target(config)?;
    let failed = |e: std::io::Error| CliError::new(format!("no answer from {addr}{path}: {e}"));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(failed)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(failed)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(failed)?;
    // One write: `write!` on an unbuffered stream sends each piece of the format on its own,
    // and a peer that answers after the first piece and closes resets the connection.
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(failed)?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(failed)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(body.trim().to_owned())
    } else {
        Err(CliError::new(format!(
            "{addr}{path} answered {status:?}: {}",
            body.trim()
        )))
    }
}
