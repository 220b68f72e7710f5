//! Front-door API tests: each runs against a spawned server, once per hosting profile.

mod activity;
mod admin;
mod discovery_status;
mod dms;
mod fidelity;
mod files;
mod gateway;
mod hub;
mod join;
mod managed;
mod members;
mod messages;
mod pages_news;
mod rate_limits;
mod ready;
mod resume;
mod search;
mod security;
mod self_hosted_restart;
mod structure;
mod tokens;
mod unfurl;
mod voice;
mod voice_browser;
mod webhooks;
mod wire;
