//! [`Services`]: every port the use cases need, chosen once at start-up by the composition root.

use crate::ports::{
    AccountStore, BlobStore, Cache, Clock, EventBus, HealthCheck, IdentityVerifier, MemberStore,
    PasswordHasher, RefreshTokenStore, ServerStore, StructureStore, TokenIssuer,
};
use std::sync::Arc;
use uuid::Uuid;

/// The two hosting profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostingMode {
    /// One community server on its own machine (the default).
    SelfHosted,
    /// Many servers behind ecto-gateway, sharing PostgreSQL, Redis and S3.
    Managed,
}

impl HostingMode {
    /// The protocol's spelling (`hosting_mode`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfHosted => "self-hosted",
            Self::Managed => "managed",
        }
    }
}

/// Settings the use cases read (the rest of the configuration stays in the composition root).
#[derive(Debug, Clone)]
pub struct Settings {
    pub hosting_mode: HostingMode,
    /// `ALLOW_LOCAL_ACCOUNTS`: in managed mode, `false` accepts only ecto-central identities.
    pub allow_local_accounts: bool,
    /// `CLIENT_URL`: where browsers are sent to join.
    pub client_url: String,
    /// `SERVER_ADDRESS`: the public address of the (self-hosted) server.
    pub server_address: Option<String>,
    /// The `rate_limit_*` settings and `trust_forwarded_for`.
    pub rate_limits: crate::ports::RateLimits,
    /// Uploads: `MAX_UPLOAD_SIZE_BYTES`, `STORAGE_QUOTA_BYTES` and the file URL signing key.
    pub files: crate::usecases::files::FileSettings,
    /// `CENTRAL_SYNC_KEY`: signs synchronisation with ecto-central; `None` refuses it.
    pub central_sync_key: Option<crate::usecases::base::signing::SyncKey>,
    /// `CENTRAL_SYNC_RETRY_MAX_SECS`: the longest pause between attempts of a failed call to
    /// ecto-central.
    pub central_retry_max: std::time::Duration,
    /// Self-hosted, while the server has no owner: the token the first registration must
    /// give as `setup_token` (or a valid invite code instead). `None`: nothing is asked.
    pub setup_token: Option<String>,
}

/// Which community servers this process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenancy {
    /// Self-hosted: exactly this server, whatever the request's host.
    Single(Uuid),
    /// Managed: the server named by each request's `X-Server-Address` or `Host`.
    Multi,
}

/// The ports, as trait objects, plus the settings. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub settings: Settings,
    pub tenancy: Tenancy,
    pub servers: Arc<dyn ServerStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub members: Arc<dyn MemberStore>,
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    pub structure: Arc<dyn StructureStore>,
    pub messages: Arc<dyn crate::ports::MessageStore>,
    pub dms: Arc<dyn crate::ports::DmStore>,
    pub activity: Arc<dyn crate::ports::ActivityStore>,
    pub search: Arc<dyn crate::ports::SearchStore>,
    pub webhooks: Arc<dyn crate::ports::WebhookStore>,
    /// The shared file hub.
    pub hub: Arc<dyn crate::ports::HubStore>,
    /// Page contents and news.
    pub content: Arc<dyn crate::ports::ContentStore>,
    pub invites: Arc<dyn crate::ports::InviteStore>,
    pub roles: Arc<dyn crate::ports::RoleStore>,
    pub moderation: Arc<dyn crate::ports::ModerationStore>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn TokenIssuer>,
    /// `None` when no `CENTRAL_URL` is configured.
    pub central: Option<Arc<dyn IdentityVerifier>>,
    /// Signed calls to ecto-central: `None` unless both `CENTRAL_URL` and `CENTRAL_SYNC_KEY`
    /// are configured (then nothing is queued for central either).
    pub central_client: Option<Arc<dyn crate::ports::CentralClient>>,
    /// The durable queue of calls to ecto-central.
    pub outbox: Arc<dyn crate::ports::CentralOutbox>,
    pub cache: Arc<dyn Cache>,
    /// Token buckets for the rate limits (memory, or Redis when configured).
    pub rate_limiter: Arc<dyn crate::ports::RateLimiter>,
    pub presence: Arc<dyn crate::ports::PresenceStore>,
    /// Gateway sessions' resume checkpoints (memory, or Redis when configured).
    pub sessions: Arc<dyn crate::ports::SessionBuffer>,
    /// Where use cases publish what changed.
    pub events: Arc<dyn EventBus>,
    /// Uploaded files: local disk (self-hosted) or S3 (managed).
    pub blobs: Arc<dyn BlobStore>,
    /// Link previews (`/api/unfurl`), fetched only from public addresses.
    pub unfurler: Arc<dyn crate::ports::LinkPreviewer>,
    /// Rows of uploaded attachments.
    pub attachments: Arc<dyn crate::ports::AttachmentStore>,
    pub clock: Arc<dyn Clock>,
    pub health: Vec<Arc<dyn HealthCheck>>,
    /// The SFU (this process's, or a relay to the instance hosting a channel).
    pub media: Arc<dyn crate::ports::MediaPlane>,
    /// Who is in which voice channel (memory, or Redis when configured).
    pub voice_states: Arc<dyn crate::ports::VoiceStateStore>,
    /// This process's memo of servers, permission data and channels (see [`crate::memo`]).
    pub memo: Arc<crate::memo::Memo>,
}
