//! ecto-core: the domain of ecto-server, the ports it needs from the outside world, and the
//! use cases that implement the protocol's procedures on top of those ports.
//!
//! Nothing in this crate performs IO. Adapters (SQL, Redis, HTTP, ...) implement the traits in
//! [`ports`]; the composition root wires them into [`Services`], which every use case takes.

pub mod error;
pub mod memo;
pub mod model;
pub mod permissions;
pub mod ports;
pub mod services;
#[cfg(feature = "testing")]
pub mod testing;
pub mod usecases;
pub mod username;

pub use error::{CoreError, CoreResult, EctoCode, ErrorKind};
pub use services::{HostingMode, Services, Settings};

/// A new time-ordered identifier (UUIDv7), as every id of the protocol is.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
