//! Wiring: one function picks every adapter for the configured profile.

use crate::config::AppConfig;
use crate::secret;
use ecto_auth::{Argon2PasswordHasher, JwtTokenIssuer};
use ecto_central::HttpCentralVerifier;
use ecto_core::ports::{
    BlobStore, Cache, EventBus, HealthCheck, IdentityVerifier, MediaLoss, MediaPlane, NoMediaPlane,
    SystemClock, VoiceStateStore,
};
use ecto_core::services::Tenancy;
use ecto_core::usecases::tenancy::ensure_single_server;
use ecto_core::{CoreError, CoreResult, HostingMode, Services, Settings};
use ecto_memory::{MemoryCache, MemoryEventBus};
use ecto_redis::{RedisCache, RedisConn, RedisEventBus, RedisHealth};
use ecto_sql::{
    Db, SqlAccountStore, SqlHealth, SqlMemberStore, SqlRefreshTokenStore, SqlServerStore,
    SqlStructureStore,
};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// The database of the configuration: PostgreSQL when `database_url` says so, else the
/// SQLite file `<data_dir>/ecto.db`.
pub fn open_database(config: &AppConfig) -> CoreResult<Db> {
    let url = match &config.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                CoreError::internal_msg(format!(
                    "cannot create data directory {}: {e}",
                    config.data_dir.display()
                ))
            })?;
            config
                .data_dir
                .join("ecto.db")
                .to_string_lossy()
                .into_owned()
        }
    };
    Db::open_with(&url, config.db_pool_max, config.sqlite_synchronous_full)
}

/// `/ready`'s check of a remote upload store.
pub type StorageCheck = Option<Arc<dyn HealthCheck>>;

/// `/ready`'s check of this process's event feed ("events"): unavailable while the bus's
/// subscription is being made again.
struct FeedHealth(std::sync::Weak<ecto_gateway::Gateway>);

#[async_trait::async_trait]
impl HealthCheck for FeedHealth {
    fn name(&self) -> &'static str {
        "events"
    }
    async fn check(&self) -> CoreResult<()> {
        match self.0.upgrade() {
            Some(gateway) if gateway.feed_up() => Ok(()),
            _ => Err(CoreError::unavailable(
                "Event feed unavailable",
                "the event bus subscription is being made again",
            )),
        }
    }
}

/// The upload store of the configuration (S3 when configured, else the upload directory),
/// with the `/ready` check of a bucket.
pub fn open_blob_store(config: &AppConfig) -> CoreResult<(Arc<dyn BlobStore>, StorageCheck)> {
    Ok(match &config.s3 {
        Some(s3) => {
            let store = ecto_s3::S3BlobStore::new(ecto_s3::S3Settings {
                endpoint: &s3.endpoint,
                bucket: &s3.bucket,
                region: &s3.region,
                access_key: &s3.access_key,
                secret_key: &s3.secret_key,
            })?;
            let health = Arc::new(store.health());
            (Arc::new(store), Some(health))
        }
        None => (
            Arc::new(ecto_localfs::LocalFsBlobStore::new(&config.upload_dir)?),
            None,
        ),
    })
}

/// The HTTP workers to start: `http_workers`, or one per core when 0.
fn http_workers(config: &AppConfig) -> usize {
    match config.http_workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    }
}

/// Opens every adapter, applies migrations, and (self-hosted) makes sure the server exists.
pub async fn build_services(config: &AppConfig) -> CoreResult<Services> {
    Ok(build(config).await?.0)
}

/// [`build_services`], with the database they use.
pub(crate) async fn build(config: &AppConfig) -> CoreResult<(Services, Db)> {
    let db = open_database(config)?;
    let applied = db.migrate().await?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    db.spawn_upkeep();
    // PostgreSQL: a pool for each HTTP worker and the dispatcher, whose connections their own
    // thread drives (no cross-thread wake per query).
    db.spread_over(http_workers(config) + 1);
    crate::metrics::add_db(db.downgrade());
    let secret = match &config.jwt_secret {
        Some(s) => s.clone(),
        None => secret::load_or_create(&config.data_dir).map_err(|e| {
            CoreError::internal_msg(format!(
                "cannot keep the JWT secret in {}: {e}",
                config.data_dir.display()
            ))
        })?,
    };
    let mut health: Vec<Arc<dyn HealthCheck>> = vec![Arc::new(SqlHealth(db.clone()))];
    // Rate-limit buckets: in this process, or in Redis (below) so every process shares them.
    let mut rate_limiter: Arc<dyn ecto_core::ports::RateLimiter> =
        Arc::new(ecto_memory::MemoryRateLimiter::default());
    // Redis when configured (always in managed mode): state every process must share.
    type Shared = (
        Arc<dyn Cache>,
        Arc<dyn EventBus>,
        Arc<dyn ecto_core::ports::PresenceStore>,
        Arc<dyn ecto_core::ports::SessionBuffer>,
    );
    let resume_window = Duration::from_secs(config.ws_resume_buffer_seconds);
    let redis = match &config.redis_url {
        Some(url) => Some(
            RedisConn::connect(url, &config.redis_key_prefix, config.redis_cluster)
                .await
                .map_err(|e| {
                    CoreError::internal_msg(format!("cannot connect to Redis at REDIS_URL: {e}"))
                })?,
        ),
        None => None,
    };
    let (cache, events, presence, sessions): Shared = match (&config.redis_url, redis.clone()) {
        (Some(_), Some(redis)) => {
            // As the database's pools: a connection for each HTTP worker and the dispatcher.
            redis.spread(http_workers(config) + 1);
            health.push(Arc::new(RedisHealth(redis.clone())));
            rate_limiter = Arc::new(ecto_redis::RedisRateLimiter(redis.clone()));
            (
                Arc::new(RedisCache::new(redis.clone())),
                Arc::new(RedisEventBus::new(
                    redis.clone(),
                    config.ws_resume_log_events,
                    resume_window,
                )),
                Arc::new(ecto_redis::RedisPresenceStore::new(redis.clone())),
                Arc::new(ecto_redis::RedisSessionBuffer::new(redis, resume_window)),
            )
        }
        _ => (
            Arc::new(MemoryCache::default()),
            Arc::new(MemoryEventBus::new(4_096, config.ws_resume_log_events)),
            Arc::new(ecto_memory::MemoryPresenceStore::default()),
            Arc::new(ecto_memory::MemorySessionBuffer::new(resume_window)),
        ),
    };
    let central: Option<Arc<dyn IdentityVerifier>> = match &config.central_url {
        Some(url) => Some(Arc::new(HttpCentralVerifier::new(url)?)),
        None => None,
    };
    let central_client: Option<Arc<dyn ecto_core::ports::CentralClient>> =
        match (&config.central_url, &config.central_sync_key) {
            (Some(url), Some(key)) => Some(Arc::new(ecto_central::HttpCentralClient::new(
                url,
                ecto_core::usecases::base::signing::SyncKey::new(key),
            )?)),
            _ => None,
        };
    let (blobs, storage_health) = open_blob_store(config)?;
    health.extend(storage_health);
    let voice = start_voice(config, redis.as_ref()).await?;
    let mut services = Services {
        settings: Settings {
            hosting_mode: config.hosting_mode,
            allow_local_accounts: config.allow_local_accounts,
            client_url: config.client_url.clone(),
            server_address: config.server_address.clone(),
            rate_limits: config.rate_limits,
            files: ecto_core::usecases::files::FileSettings {
                max_upload_size_bytes: config.max_upload_size_bytes,
                storage_quota_bytes: config.storage_quota_bytes,
                url_key: ecto_core::usecases::base::signing::UrlKey::derive(secret.as_bytes()),
            },
            central_sync_key: config
                .central_sync_key
                .as_deref()
                .map(ecto_core::usecases::base::signing::SyncKey::new),
            central_retry_max: std::time::Duration::from_secs(
                config.central_sync_retry_max_secs.max(1),
            ),
            setup_token: None,
        },
        tenancy: Tenancy::Multi,
        servers: Arc::new(SqlServerStore(db.clone())),
        accounts: Arc::new(SqlAccountStore(db.clone())),
        members: Arc::new(SqlMemberStore(db.clone())),
        refresh_tokens: Arc::new(SqlRefreshTokenStore(db.clone())),
        structure: Arc::new(SqlStructureStore(db.clone())),
        messages: Arc::new(ecto_sql::SqlMessageStore(db.clone())),
        dms: Arc::new(ecto_sql::SqlDmStore(db.clone())),
        activity: Arc::new(ecto_sql::SqlActivityStore(db.clone())),
        search: Arc::new(ecto_sql::SqlSearchStore(db.clone())),
        webhooks: Arc::new(ecto_sql::SqlWebhookStore(db.clone())),
        hub: Arc::new(ecto_sql::SqlHubStore(db.clone())),
        content: Arc::new(ecto_sql::SqlContentStore(db.clone())),
        invites: Arc::new(ecto_sql::SqlInviteStore(db.clone())),
        roles: Arc::new(ecto_sql::SqlRoleStore(db.clone())),
        moderation: Arc::new(ecto_sql::SqlModerationStore(db.clone())),
        hasher: Arc::new(Argon2PasswordHasher),
        tokens: Arc::new(JwtTokenIssuer::new(secret.as_bytes())?),
        central,
        central_client,
        outbox: Arc::new(ecto_sql::SqlCentralOutbox::new(db.clone())),
        cache,
        rate_limiter,
        presence,
        sessions,
        events,
        blobs,
        unfurler: Arc::new(ecto_unfurl::HttpUnfurler::new(&config.unfurl_allow_hosts)?),
        attachments: Arc::new(ecto_sql::SqlAttachmentStore(db.clone())),
        clock: Arc::new(SystemClock),
        media: voice.media,
        voice_states: voice.states,
        health,
        memo: Arc::default(),
    };
    if config.hosting_mode == HostingMode::SelfHosted {
        let (server, created) = ensure_single_server(&services).await?;
        if created {
            tracing::info!(server_id = %server.id, name = %server.name, "created this community server");
        }
        services.tenancy = Tenancy::Single(server.id);
        services.settings.setup_token = first_owner_token(config, &server)?;
    }
    spawn_media_losses(services.clone(), voice.losses, voice.relay);
    Ok((services, db))
}

/// The voice side of the services.
struct Voice {
    media: Arc<dyn MediaPlane>,
    states: Arc<dyn VoiceStateStore>,
    /// Participations the SFU ended on its own.
    losses: tokio::sync::mpsc::UnboundedReceiver<MediaLoss>,
    /// Managed: the relay that knows which channels this instance hosts.
    relay: Option<Arc<ecto_redis::RoutedMediaPlane>>,
}

/// Starts this process's SFU on `mediasoup_min_port` (UDP, every transport on that one port);
/// with Redis, voice states live there and each channel is hosted by one instance. With
/// `voice_enabled` off no SFU starts and no port is bound: every `voice.join` answers 8002.
async fn start_voice(config: &AppConfig, redis: Option<&RedisConn>) -> CoreResult<Voice> {
    if !config.voice_enabled {
        tracing::info!("voice is turned off (VOICE_ENABLED=false)");
        let (_, losses) = tokio::sync::mpsc::unbounded_channel();
        let states: Arc<dyn VoiceStateStore> = match (redis, &config.redis_url) {
            (Some(redis), Some(_)) => Arc::new(ecto_redis::RedisVoiceStateStore(redis.clone())),
            _ => Arc::new(ecto_memory::MemoryVoiceStateStore::default()),
        };
        return Ok(Voice {
            media: Arc::new(NoMediaPlane),
            states,
            losses,
            relay: None,
        });
    }
    let bind_ip = resolve(&config.voice_bind_address).ok_or_else(|| {
        CoreError::internal_msg(format!(
            "VOICE_BIND_ADDRESS '{}' does not resolve",
            config.voice_bind_address
        ))
    })?;
    let (sfu, mut sfu_losses) = ecto_voice::Sfu::start(ecto_voice::SfuConfig {
        bind: SocketAddr::new(bind_ip, config.mediasoup_min_port),
        announced_ip: announced_ip(config, bind_ip),
        max_bitrate_kbps: config.voice_max_bitrate_kbps,
        max_server_bitrate_kbps: config.voice_max_server_bitrate_kbps,
    })
    .map_err(CoreError::internal_msg)?;
    crate::metrics::add_voice(Arc::downgrade(&sfu.stats));
    // The SFU's losses and (managed) the relay's, on one channel.
    let (loss_tx, losses) = tokio::sync::mpsc::unbounded_channel();
    let forward = loss_tx.clone();
    tokio::spawn(async move {
        while let Some(loss) = sfu_losses.recv().await {
            if forward.send(loss).is_err() {
                break;
            }
        }
    });
    let local: Arc<dyn MediaPlane> = sfu;
    Ok(match (redis, &config.redis_url) {
        (Some(redis), Some(_)) => {
            let relay = ecto_redis::RoutedMediaPlane::start(local, redis.clone(), loss_tx).await?;
            Voice {
                media: relay.clone(),
                states: Arc::new(ecto_redis::RedisVoiceStateStore(redis.clone())),
                losses,
                relay: Some(relay),
            }
        }
        _ => Voice {
            media: local,
            states: Arc::new(ecto_memory::MemoryVoiceStateStore::default()),
            losses,
            relay: None,
        },
    })
}

/// The address browsers are told to send media to: `voice_announced_address`, else
/// `server_address`, when either is an IP or a name that resolves; else the voice port's own
/// address when it binds one; else the address this machine would use to reach the internet
/// (no packet is sent); else loopback.
fn announced_ip(config: &AppConfig, bound: IpAddr) -> IpAddr {
    for (name, value) in [
        ("VOICE_ANNOUNCED_ADDRESS", &config.voice_announced_address),
        ("SERVER_ADDRESS", &config.server_address),
    ] {
        let Some(value) = value else { continue };
        match resolve(value) {
            Some(ip) => return ip,
            None => {
                tracing::warn!(%name, %value, "cannot resolve the voice address; trying the next")
            }
        }
    }
    if !bound.is_unspecified() {
        return bound;
    }
    let outward = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr());
    match outward {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

/// An IP, or a host name (an optional `:port` is ignored) resolved to its first address.
fn resolve(value: &str) -> Option<IpAddr> {
    if let Ok(ip) = value.parse() {
        return Some(ip);
    }
    let host = value.rsplit_once(':').map_or(value, |(h, _)| h);
    use std::net::ToSocketAddrs;
    (host, 0).to_socket_addrs().ok()?.map(|a| a.ip()).next()
}

/// The setup token the first owner's registration must present (self-hosted, until the server
/// has an owner, unless `REQUIRE_SETUP_TOKEN=false`): kept in the data directory and printed
/// at every start until then; forgotten once the server has its owner.
fn first_owner_token(
    config: &AppConfig,
    server: &ecto_core::model::Server,
) -> CoreResult<Option<String>> {
    let kept = |e: std::io::Error| {
        CoreError::internal_msg(format!(
            "cannot keep the setup token in {}: {e}",
            config.data_dir.display()
        ))
    };
    if server.admin_user_id.is_some() || !config.require_setup_token {
        secret::forget_setup_token(&config.data_dir).map_err(kept)?;
        return Ok(None);
    }
    let token = secret::setup_token(&config.data_dir).map_err(kept)?;
    tracing::warn!(
        setup_token = %token,
        file = %config.data_dir.join("setup_token").display(),
        "this server has no owner yet: the first account to register becomes its owner and must \
         give this setup token (the client's setup token field), or a valid invite code"
    );
    Ok(Some(token))
}

/// Delivers the queued calls to ecto-central (when it is configured): a pass whenever a change
/// queues one and at least every second (retries come due), under a name unique to this
/// process so that, across instances, one delivers each server's calls at a time. `None`
/// when central sync is not configured.
fn spawn_central_sync(services: Services) -> Option<tokio::task::AbortHandle> {
    services.central_client.as_ref()?;
    let owner = format!("{}:{}", std::process::id(), ecto_core::new_id());
    let task = tokio::spawn(async move {
        loop {
            if let Err(e) = ecto_core::usecases::base::central::deliver_due(&services, &owner).await
            {
                tracing::warn!(error = %e, "delivering calls to ecto-central failed");
            }
            services
                .outbox
                .idle(std::time::Duration::from_secs(1))
                .await;
        }
    });
    Some(task.abort_handle())
}

/// Ends the voice state of every participation the SFU dropped (a dead transport).
fn spawn_media_losses(
    services: Services,
    mut losses: tokio::sync::mpsc::UnboundedReceiver<MediaLoss>,
    relay: Option<Arc<ecto_redis::RoutedMediaPlane>>,
) {
    tokio::spawn(async move {
        while let Some(loss) = losses.recv().await {
            if let Some(relay) = &relay {
                relay.forget(loss.channel_id, loss.user_id).await;
            }
            ecto_core::usecases::voice::lost(&services, loss).await;
        }
    });
}

/// A started server.
pub struct Running {
    /// The address the listener is bound to (useful with port 0).
    pub addr: SocketAddr,
    /// Stops the server gracefully.
    pub handle: actix_web::dev::ServerHandle,
    /// Completes when the server has stopped.
    pub server: actix_web::dev::Server,
    pub services: Services,
    /// The WebSocket gateway of this process.
    pub gateway: Arc<ecto_gateway::Gateway>,
    /// The loop delivering calls to ecto-central, when it is configured (an embedding that
    /// stops the server without ending the process aborts it).
    pub central_sync: Option<tokio::task::AbortHandle>,
    /// Without Redis: the loop publishing the events an operator's command left (see
    /// `command_events.rs`; aborted likewise).
    pub command_events: Option<tokio::task::AbortHandle>,
    /// The address `GET /metrics` is served on (`METRICS_ADDRESS`), when it is set.
    pub metrics_addr: Option<SocketAddr>,
}

/// Graceful shutdown: closes every socket with 4011, hands the voice channels hosted here
/// over, stops accepting connections, and lets requests in flight finish (up to 10 s).
pub async fn shutdown(gateway: &ecto_gateway::Gateway, handle: &actix_web::dev::ServerHandle) {
    gateway
        .close_all(
            ecto_core::usecases::base::publish::close::SERVER_SHUTTING_DOWN,
            "Server shutting down",
        )
        .await;
    gateway.services().media.shutdown().await;
    handle.stop(true).await;
}

/// Builds the services and starts listening; the returned server must be awaited (or
/// spawned) to run.
pub async fn start(config: &AppConfig) -> CoreResult<Running> {
    // The recorder goes in before anything records (it is the process's, shared by every
    // server the process starts).
    if config.metrics_address.is_some() {
        crate::metrics::install().map_err(CoreError::internal_msg)?;
    }
    let (services, db) = build(config).await?;
    let listener = TcpListener::bind((config.bind_address.as_str(), config.port)).map_err(|e| {
        CoreError::internal_msg(format!(
            "cannot listen on {}:{}: {e}",
            config.bind_address, config.port
        ))
    })?;
    let addr = listener.local_addr().map_err(CoreError::internal)?;
    let workers = http_workers(config);
    let gateway = ecto_gateway::Gateway::start(
        services.clone(),
        services.sessions.clone(),
        ecto_gateway::GatewayConfig {
            identify_timeout: Duration::from_millis(config.ws_identify_timeout_ms),
            heartbeat_timeout: Duration::from_millis(config.ws_heartbeat_timeout_ms),
            checkpoint_interval: Duration::from_secs(15),
            outbound_queue: config.ws_outbound_queue,
            write_delay: Duration::from_millis(config.ws_write_delay_ms),
            presence_grace: Duration::from_millis(config.ws_presence_grace_ms),
            events_per_10s: config.ws_events_per_10s,
            sockets_per_user: config.ws_sockets_per_user,
            sockets_per_address: config.ws_sockets_per_address,
            stream_linger: Duration::from_millis(config.ws_stream_linger_ms),
        },
    )
    .await?;
    // `/ready` also says whether this process hears the event bus (a Redis subscription can
    // end; the memory bus cannot).
    let mut http_services = services.clone();
    if config.redis_url.is_some() {
        http_services
            .health
            .push(Arc::new(FeedHealth(Arc::downgrade(&gateway))));
    }
    let mut state = ecto_http::HttpState::new(
        http_services,
        config.max_json_body_bytes,
        ecto_http::RequestLimits {
            max_batch_calls: config.max_batch_calls,
            max_response_bytes: config.max_response_bytes,
        },
        config.managed_api_key.clone(),
    );
    state.body_pace = ecto_http::BodyPace {
        idle: Duration::from_millis(config.request_body_idle_ms),
        min_rate: config.request_body_min_rate,
    };
    let routes: ecto_http::ExtraRoutes = Arc::new(ecto_gateway::configure(gateway.clone()));
    let sockets = gateway.clone();
    let upgrade: ecto_http::UpgradeHook = Arc::new(move |req| {
        ecto_gateway::upgrade(&sockets, req).map(|u| ecto_http::UpgradeAnswer {
            route: u.route,
            response: u.response,
            run: u.accept,
        })
    });
    let server = ecto_http::serve(state, listener, workers, Some(routes), Some(upgrade))
        .map_err(CoreError::internal)?;
    spawn_token_cleanup(services.clone());
    let central_sync = spawn_central_sync(services.clone());
    // Without Redis an operator's command cannot reach this process's bus: it leaves its
    // events in the database.
    let command_events = config
        .redis_url
        .is_none()
        .then(|| crate::command_events::spawn_taker(db, services.events.clone()));
    let metrics_addr = match &config.metrics_address {
        Some(address) => {
            crate::metrics::add_gateway(Arc::downgrade(&gateway));
            let (bound, metrics) = crate::metrics::serve(address, config.metrics_token.clone())
                .map_err(|e| {
                    CoreError::internal_msg(format!(
                        "cannot listen on METRICS_ADDRESS {address}: {e}"
                    ))
                })?;
            tokio::spawn(metrics);
            tracing::info!(addr = %bound, "metrics served on /metrics");
            Some(bound)
        }
        None => None,
    };
    Ok(Running {
        addr,
        handle: server.handle(),
        server,
        services,
        gateway,
        central_sync,
        command_events,
        metrics_addr,
    })
}

/// Deletes expired refresh tokens at start and then hourly.
fn spawn_token_cleanup(services: Services) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match services
                .refresh_tokens
                .delete_expired(services.clock.now())
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired refresh tokens removed"),
                Err(e) => tracing::warn!(error = %e, "refresh token cleanup failed"),
            }
        }
    });
}
