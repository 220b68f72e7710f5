//! Use cases: one module per procedure group. Each takes [`crate::Services`] and the caller, and
//! enforces the protocol's rules before touching a store.

pub mod account;
pub mod activity;
pub mod audit;
pub mod base;
pub mod categories;
pub mod central;
pub mod channels;
pub mod dms;
pub mod files;
pub mod gateway;
pub mod hub;
pub mod info;
pub mod invites;
pub mod join;
pub mod members_admin;
pub mod messages;
pub mod news;
pub mod og_image;
pub mod pages;
pub mod roles;
pub mod search;
pub mod server_admin;
pub mod server_config;
pub mod serving;
pub mod tenancy;
pub mod unfurl;
pub mod voice;
pub mod webhooks;

pub use base::identity::{authenticate, Caller};

#[cfg(test)]
mod layering;
