//! The `messages` and `read_state` routers.

use crate::trpc::{Access, Registry};
use crate::validate::{ids, invalid, length, opt_length, range, Id, NoInput, Validate};
use crate::ApiError;
use ecto_core::ports::Cursor;
use ecto_core::usecases::messages::{self, SendMessage};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
struct List {
    channel_id: Id,
    before: Option<Id>,
    after: Option<Id>,
    limit: Option<i64>,
    pinned_only: Option<bool>,
}
impl Validate for List {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(l) = self.limit {
            range("limit", l, 1, 100)?;
        }
        if self.before.is_some() && self.after.is_some() {
            return Err(invalid("Invalid input: give `before` or `after`, not both"));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Send {
    channel_id: Id,
    content: Option<String>,
    reply_to: Option<Id>,
    attachment_ids: Option<Vec<Id>>,
    nonce: Option<String>,
}
impl Validate for Send {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length("content", self.content.as_deref(), 1, 4000)?;
        opt_length("nonce", self.nonce.as_deref(), 0, 100)?;
        range(
            "attachment_ids.length",
            self.attachment_ids.as_ref().map_or(0, Vec::len),
            0,
            10,
        )
    }
}

#[derive(Deserialize)]
struct Update {
    message_id: Id,
    content: String,
}
impl Validate for Update {
    fn validate(&self) -> Result<(), ApiError> {
        length("content", &self.content, 1, 4000)
    }
}

#[derive(Deserialize)]
struct MessageId {
    message_id: Id,
}
impl Validate for MessageId {}

#[derive(Deserialize)]
struct Pin {
    message_id: Id,
    pinned: bool,
}
impl Validate for Pin {}

#[derive(Deserialize)]
struct React {
    message_id: Id,
    emoji: String,
    action: String,
}
impl Validate for React {
    fn validate(&self) -> Result<(), ApiError> {
        length("emoji", &self.emoji, 1, 64)?;
        match self.action.as_str() {
            "add" | "remove" => Ok(()),
            _ => Err(invalid("Invalid input: `action` must be 'add' or 'remove'")),
        }
    }
}

#[derive(Deserialize)]
struct ReadUpdate {
    channel_id: Id,
    last_read_message_id: Id,
}
impl Validate for ReadUpdate {}

pub fn register(r: &mut Registry) {
    r.query(
        "messages.list",
        Access::Protected,
        |ctx, w: List| async move {
            let cursor = match (w.before, w.after) {
                (Some(b), _) => Cursor::Before(b.into()),
                (None, Some(a)) => Cursor::After(a.into()),
                (None, None) => Cursor::Latest,
            };
            let limit = w.limit.unwrap_or(50);
            messages::list(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.channel_id.into(),
                cursor,
                limit,
                w.pinned_only.unwrap_or(false),
            )
            .await
        },
    );
    r.mutation(
        "messages.send",
        Access::Protected,
        |ctx, w: Send| async move {
            let input = SendMessage {
                channel_id: w.channel_id.into(),
                content: w.content,
                reply_to: w.reply_to.map(Uuid::from),
                attachment_ids: ids(w.attachment_ids.unwrap_or_default()),
                nonce: w.nonce,
            };
            messages::send(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
    r.mutation(
        "messages.update",
        Access::Protected,
        |ctx, w: Update| async move {
            messages::update(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.message_id.into(),
                w.content,
            )
            .await
        },
    );
    r.mutation(
        "messages.delete",
        Access::Protected,
        |ctx, w: MessageId| async move {
            messages::delete(&ctx.svc, &ctx.server, ctx.caller(), w.message_id.into()).await
        },
    );
    r.mutation(
        "messages.pin",
        Access::Protected,
        |ctx, w: Pin| async move {
            messages::pin(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.message_id.into(),
                w.pinned,
            )
            .await
        },
    );
    r.mutation(
        "messages.react",
        Access::Protected,
        |ctx, w: React| async move {
            messages::react(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.message_id.into(),
                &w.emoji,
                w.action == "add",
            )
            .await
        },
    );
    r.query(
        "messages.history",
        Access::Protected,
        |ctx, w: MessageId| async move {
            messages::history(&ctx.svc, &ctx.server, ctx.caller(), w.message_id.into()).await
        },
    );
    r.mutation(
        "read_state.update",
        Access::Protected,
        |ctx, w: ReadUpdate| async move {
            messages::mark_read(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.channel_id.into(),
                w.last_read_message_id.into(),
            )
            .await
        },
    );
    r.mutation(
        "read_state.markAllRead",
        Access::Protected,
        |ctx, _: NoInput| async move {
            messages::mark_all_read(&ctx.svc, &ctx.server, ctx.caller()).await
        },
    );
    r.query(
        "read_state.list",
        Access::Protected,
        |ctx, _: NoInput| async move {
            messages::read_states(&ctx.svc, &ctx.server, ctx.caller()).await
        },
    );
}
