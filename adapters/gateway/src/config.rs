//! The gateway's limits, from the `ws_*` settings.

use std::time::Duration;

/// Gateway limits (config/default.toml, `ws_*` keys).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub identify_timeout: Duration,
    pub heartbeat_timeout: Duration,
    /// How often live sessions record a checkpoint when something changed.
    pub checkpoint_interval: Duration,
    /// Frames queued for one socket before it is closed for being too slow.
    pub outbound_queue: usize,
    /// After a worker thread writes dispatched frames, how long it waits before writing the
    /// next ones: frames dispatched meanwhile share one write per socket (see `body.rs`).
    pub write_delay: Duration,
    /// How long a user without sessions stays online before `presence.update` offline.
    pub presence_grace: Duration,
    /// Client events (and pings) one socket may send per 10 s before it is closed with 4008
    /// (0: no limit).
    pub events_per_10s: u32,
    /// `/ws` sessions one user may hold in one server, across the deployment (0: no cap).
    pub sockets_per_user: u32,
    /// Sockets one client address may hold open on this process (0: no cap).
    pub sockets_per_address: u32,
    /// How long the process keeps following a server's events after its last socket of that
    /// server closed (a client reconnecting soon finds it followed).
    pub stream_linger: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            identify_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(90),
            checkpoint_interval: Duration::from_secs(15),
            outbound_queue: 1024,
            write_delay: Duration::from_millis(20),
            presence_grace: Duration::from_secs(15),
            events_per_10s: 120,
            sockets_per_user: 32,
            sockets_per_address: 512,
            stream_linger: Duration::from_secs(30),
        }
    }
}
