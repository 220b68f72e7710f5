//! Procedure registrations, one module per router.

mod activity;
mod admin;
mod content;
mod dms;
mod files;
mod hub;
mod members;
mod messages;
mod roles;
mod search;
mod server;
mod structure;
mod webhooks;

use crate::trpc::Registry;

/// Every procedure this server speaks.
pub fn registry() -> Registry {
    let mut r = Registry::default();
    server::register(&mut r);
    search::register(&mut r);
    members::register(&mut r);
    messages::register(&mut r);
    dms::register(&mut r);
    activity::register(&mut r);
    roles::register(&mut r);
    structure::register(&mut r);
    webhooks::register(&mut r);
    hub::register(&mut r);
    admin::register(&mut r);
    content::register(&mut r);
    files::register(&mut r);
    r
}
