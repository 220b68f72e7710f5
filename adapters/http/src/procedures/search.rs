//! The `search` router.

use crate::trpc::{Access, Registry};
use crate::validate::{invalid, length, range, Validate};
use crate::ApiError;
use ecto_core::usecases::search::{self, Search};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
struct SearchWire {
    query: String,
    channel_id: Option<Uuid>,
    author_id: Option<Uuid>,
    before: Option<Uuid>,
    after: Option<Uuid>,
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
                channel_id: w.channel_id,
                author_id: w.author_id,
                before: w.before,
                after: w.after,
                limit: w.limit.unwrap_or(25),
                has_attachment: has.iter().any(|h| h == "attachment"),
                has_link: has.iter().any(|h| h == "link"),
            };
            search::search(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
}
