//! In-process adapters for the self-hosted profile: nothing here survives a restart, and
//! nothing needs to (durable data lives in the database).

mod cache;

pub use cache::MemoryCache;
