//! The ports: what the core needs from the outside world, one trait per role.
//!
//! Every port is object-safe and held as `Arc<dyn Port>` in [`crate::Services`]. The `///` docs
//! on each method are the contract every adapter keeps (and the contract tests check).

mod activity;
mod auth;
mod blob;
mod cache;
mod central;
mod clock;
mod content;
mod dms;
mod events;
mod files;
mod health;
mod hub;
mod invites;
mod messages;
mod presence;
mod rate_limit;
mod roles;
mod search;
mod sessions;
mod stores;
mod structure;
mod unfurl;
mod voice;
mod webhooks;

pub use activity::{ActivityQuery, ActivityStore};
pub use auth::{CentralIdentity, IdentityVerifier, PasswordHasher, TokenIssuer};
pub use blob::{
    limited, resolve_range, too_large, Blob, BlobKey, BlobStore, ByteRange, ByteStream,
};
pub use cache::{Cache, Fetch};
pub use central::{CentralClient, CentralOutbox, SyncOutcome};
pub use clock::{Clock, SystemClock};
pub use content::{ContentStore, PageEdit, PageUpdate};
pub use dms::{DmStore, NewDm, SentDm};
pub use events::{publish_time_ms, Event, EventBus, EventStream, InlineSink, Scope, RESYNC_EVENT};
pub use files::{AttachmentRecord, AttachmentStore};
pub use health::HealthCheck;
pub use hub::{HubStore, SharedFileRefusal};
pub use invites::{InviteStore, NewInvite};
pub use messages::{Cursor, MessageStore, SendRefusal};
pub use presence::{Presence, PresenceSnapshot, PresenceStore};
pub use rate_limit::{Limit, RateDecision, RateLimiter, RateLimits};
pub use roles::{ModerationStore, NewBan, NewRole, RolePatch, RoleStore};
pub use search::{SearchQuery, SearchStore};
pub use sessions::{Checkpoint, SessionBuffer, CHECKPOINTS_KEPT, PER_SERVER_LOG};
pub use stores::{AccountStore, MemberStore, RefreshTokenStore, ServerStore};
pub use structure::{AuditQuery, ChannelMove, ChannelPatch, NewChannel, StructureStore};
pub use unfurl::{LinkPreview, LinkPreviewer};
pub use voice::{
    ClosedProducer, MediaLoss, MediaPlane, NewConsumer, NoMediaPlane, ProduceRequest, Produced,
    Transports, VoiceState, VoiceStateStore,
};
pub use webhooks::WebhookStore;
