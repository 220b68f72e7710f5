//! The HTTP inbound adapter (actix-web): the tRPC-style procedure endpoint, health and
//! readiness, browser landing pages and the managed provisioning route.
//!
//! It knows JSON and HTTP; every rule lives in the core's use cases, which it calls through
//! [`ecto_core::Services`].

mod content_uploads;
mod discovery;
mod error;
mod files;
mod hub_uploads;
mod landing;
mod observe;
mod og_image;
mod pace;
mod procedures;
mod routes;
mod server;
mod trpc;
mod unfurl;
mod upgrade;
pub mod uploads;
mod validate;

pub use error::{ApiError, TrpcCode};
pub use pace::BodyPace;
pub use server::{serve, ExtraRoutes, HttpState, RequestLimits};
pub use upgrade::{RunSocket, Socket, UpgradeAnswer, UpgradeHook};
