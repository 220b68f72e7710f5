//! What the features build on, in layers: a module here imports only modules of a lower
//! layer, and never a feature (`usecases/layering.rs` checks it).
//!
//! 0. [`lookup`]: shared store lookups; [`names`]: names as they are stored;
//!    [`file_names`]: file names, types and storage keys; [`signing`]: signed file URLs.
//! 1. [`loaders`]: the memo loaders; [`views`]: the protocol's views of messages and activity.
//! 2. [`tokens`]: the server's token pairs.
//! 3. [`identity`]: who is calling.
//! 4. [`access`]: effective permissions, the only place they are computed;
//!    [`rate_limit`]: the limits of inbound calls.
//! 5. [`publish`]: audit entries, events and closing sessions.
//! 6. [`central`]: the calls to ecto-central, their delivery and what central answers.

pub mod access;
pub mod central;
pub mod file_names;
pub mod identity;
pub mod loaders;
pub mod lookup;
pub mod names;
pub mod publish;
pub mod rate_limit;
pub mod signing;
pub mod tokens;
pub mod views;
