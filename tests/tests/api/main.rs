//! Front-door API tests: each runs against a spawned server, once per hosting profile.

mod admin;
mod join;
mod managed;
mod members;
mod messages;
mod ready;
mod self_hosted_restart;
mod structure;
mod tokens;
mod wire;
