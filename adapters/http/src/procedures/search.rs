//! The `search` router.

use crate::trpc::{Access, Registry};
use crate::validate::{invalid, length, range, Id, Validate};
use crate::ApiError;
use ecto_core::usecases::search::{self, Search};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
struct SearchWire {
    query: String,
    channel_id: Option<Id>,
    author_id: Option<Id>,
    before: Option<Id>,
    after: Option<Id>,
    limit: Option<i64>,
    has: Option<Vec<String>>,
}

impl Validate for SearchWire {
    fn validate(&self) -> Result<(), ApiError> {
        length("query", &self.query, 1, 200)?;
        if let Some(l) = self.limit {
            range("limit", l, 1, 50)?;
        }
        for h in self.has.iter().flatten() {
            if h != "attachment" && h != "link" {
                return Err(invalid(
                    "Invalid input: `has` entries must be 'attachment' or 'link'",
                ));
            }
        }
        Ok(())
    }
}

pub fn register(r: &mut Registry) {
    r.query(
        "search.search",
        Access::Protected,
        |ctx, w: SearchWire| async move {
            let has = w.has.unwrap_or_default();
            let input = Search {
                query: w.query,
                channel_id: w.channel_id.map(Uuid::from),
                author_id: w.author_id.map(Uuid::from),
                before: w.before.map(Uuid::from),
                after: w.after.map(Uuid::from),
                limit: w.limit.unwrap_or(25),
                has_attachment: has.iter().any(|h| h == "attachment"),
                has_link: has.iter().any(|h| h == "link"),
            };
            search::search(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
}
