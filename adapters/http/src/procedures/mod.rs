//! Procedure registrations, one module per router.

mod admin;
mod members;
mod messages;
mod roles;
mod server;
mod structure;

use crate::trpc::Registry;

/// Every procedure this server speaks.
pub fn registry() -> Registry {
    let mut r = Registry::default();
    server::register(&mut r);
    members::register(&mut r);
    messages::register(&mut r);
    roles::register(&mut r);
    structure::register(&mut r);
    admin::register(&mut r);
    r
}
