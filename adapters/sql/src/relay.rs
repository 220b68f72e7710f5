//! `relayed_events` (see its migration): the events an operator's command published, written by
//! the command's process and taken by the running server's, when the two share no event bus.

use crate::db::{db_error, Db};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecto_core::ports::Event;
use ecto_core::{CoreError, CoreResult};

impl Db {
    /// Leaves `event` for the running server to take ([`Db::take_relayed_events`]).
    pub async fn relay_event(&self, event: &Event) -> CoreResult<()> {
        let text = serde_json::to_string(event).map_err(CoreError::internal)?;
        db_run!(self, write, |conn| {
            diesel::insert_into(relayed_events::table)
                .values(relayed_events::event.eq(&text))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(db_error)
        })
    }

    /// Removes the events left since the last call and returns them, in the order they were
    /// left. Only what was read is removed: a row committed meanwhile waits for the next call.
    /// A row that is not an event is logged and dropped.
    pub async fn take_relayed_events(&self) -> CoreResult<Vec<Event>> {
        let rows: Vec<(i64, String)> = db_run!(self, read, |conn| {
            relayed_events::table
                .order(relayed_events::id.asc())
                .select((relayed_events::id, relayed_events::event))
                .load(conn)
                .await
                .map_err(db_error)
        })?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        db_run!(self, write, |conn| {
            diesel::delete(relayed_events::table.filter(relayed_events::id.eq_any(&ids)))
                .execute(conn)
                .await
                .map_err(db_error)
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, text)| match serde_json::from_str(&text) {
                Ok(event) => Some(event),
                Err(e) => {
                    tracing::warn!(id, error = %e, "a relayed event that is not one was dropped");
                    None
                }
            })
            .collect())
    }
}
