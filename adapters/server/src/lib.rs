//! The composition root: reads the configuration, picks the adapters of the hosting profile,
//! applies migrations, and starts the HTTP server. The `ecto-server` binary and the test
//! harness both start the server through [`start`].

pub mod cli;
mod command_events;
mod compose;
pub mod config;
mod metrics;
mod secret;

pub use compose::{build_services, open_blob_store, open_database, shutdown, start, Running};
pub use config::{AppConfig, ConfigError};
