//! In-process adapters for the self-hosted profile: nothing here survives a restart, and
//! nothing needs to (durable data lives in the database).

mod cache;
mod events;
mod presence;
mod rate_limit;
mod sessions;
mod voice;

pub use cache::MemoryCache;
pub use events::MemoryEventBus;
pub use presence::MemoryPresenceStore;
pub use rate_limit::MemoryRateLimiter;
pub use sessions::MemorySessionBuffer;
pub use voice::MemoryVoiceStateStore;
