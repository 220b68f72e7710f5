//! In-process adapters for the self-hosted profile: nothing here survives a restart, and
//! nothing needs to (durable data lives in the database).

mod cache;
mod events;

pub use cache::MemoryCache;
pub use events::MemoryEventBus;
