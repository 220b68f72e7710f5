//! The `activity` router.

use crate::trpc::{Access, Registry};
use crate::validate::{ids, invalid, range, Id, NoInput, Validate};
use crate::ApiError;
use ecto_core::model::ActivityType;
use ecto_core::usecases::activity;
use serde::Deserialize;
use uuid::Uuid;

/// `activity.list` takes an object (which may be empty), not nothing.
#[derive(Deserialize)]
struct List {
    before: Option<Id>,
    limit: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
}
impl List {
    fn kind(&self) -> Option<ActivityType> {
        self.kind.as_deref().and_then(ActivityType::parse)
    }
}
impl Validate for List {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(l) = self.limit {
            range("limit", l, 1, 50)?;
        }
        match (&self.kind, self.kind()) {
            (Some(_), None) => Err(invalid(
                "Invalid input: `type` must be 'mention', 'reaction', 'reply' or 'server_dm'",
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct MarkRead {
    activity_ids: Vec<Id>,
}
impl Validate for MarkRead {
    fn validate(&self) -> Result<(), ApiError> {
        range("activity_ids.length", self.activity_ids.len(), 1, 100)
    }
}

pub fn register(r: &mut Registry) {
    r.query(
        "activity.list",
        Access::Protected,
        |ctx, w: List| async move {
            let kind = w.kind();
            activity::list(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.before.map(Uuid::from),
                w.limit.unwrap_or(30),
                kind,
            )
            .await
        },
    );
    r.mutation(
        "activity.markRead",
        Access::Protected,
        |ctx, w: MarkRead| async move {
            activity::mark_read(&ctx.svc, &ctx.server, ctx.caller(), &ids(w.activity_ids)).await
        },
    );
    r.mutation(
        "activity.markAllRead",
        Access::Protected,
        |ctx, _: NoInput| async move {
            activity::mark_all_read(&ctx.svc, &ctx.server, ctx.caller()).await
        },
    );
    r.query(
        "activity.unreadCount",
        Access::Protected,
        |ctx, _: NoInput| async move {
            activity::unread_count(&ctx.svc, &ctx.server, ctx.caller()).await
        },
    );
}
