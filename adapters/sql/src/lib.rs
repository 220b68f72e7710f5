//! Durable stores on diesel + diesel-async: PostgreSQL, or an embedded SQLite file.
//!
//! One code path serves both backends: [`db_run!`] expands each query once per backend, with
//! that backend's schema module in scope, so every arm is type-checked against its own SQL
//! types. Per-backend arms are written only where the SQL really differs.

#[macro_use]
mod db;
mod accounts;
mod activity;
mod admin;
mod attachments;
mod central;
mod content;
mod dms;
mod hub;
mod invites;
mod members;
mod messages;
mod metrics;
mod names;
mod relay;
mod roles;
mod rows;
#[cfg(test)]
mod schema_drift;
mod schema_pg;
mod schema_sqlite;
mod search;
mod servers;
mod structure;
mod tokens;
mod transfer;
mod types;
mod webhooks;

diesel::define_sql_function! {
    /// SQL `lower()`; usernames are ASCII, where both backends agree.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

pub use accounts::SqlAccountStore;
pub use activity::SqlActivityStore;
pub use attachments::SqlAttachmentStore;
pub use central::SqlCentralOutbox;
pub use content::SqlContentStore;
pub use db::{Db, DbKind, SqlHealth};
pub use dms::SqlDmStore;
pub use hub::SqlHubStore;
pub use invites::SqlInviteStore;
pub use members::SqlMemberStore;
pub use messages::SqlMessageStore;
pub use metrics::{PoolUse, WeakDb};
pub use roles::{SqlModerationStore, SqlRoleStore};
pub use search::SqlSearchStore;
pub use servers::SqlServerStore;
pub use structure::SqlStructureStore;
pub use tokens::SqlRefreshTokenStore;
pub use transfer::{ColumnInfo, ColumnKind, Import, Layout, RowSink, TableInfo, TableMapping};
pub use webhooks::SqlWebhookStore;
