//! The `serverDms` router.

use crate::trpc::{Access, Registry};
use crate::validate::{ids, invalid, length, range, Id, Optional, Validate};
use crate::ApiError;
use ecto_core::usecases::dms::{self, SendDm};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize, Default)]
struct List {
    limit: Option<i64>,
}
impl Validate for List {
    fn validate(&self) -> Result<(), ApiError> {
        self.limit.map_or(Ok(()), |l| range("limit", l, 1, 100))
    }
}

#[derive(Deserialize)]
struct History {
    conversation_id: Id,
    before: Option<Id>,
    limit: Option<i64>,
}
impl Validate for History {
    fn validate(&self) -> Result<(), ApiError> {
        self.limit.map_or(Ok(()), |l| range("limit", l, 1, 100))
    }
}

#[derive(Deserialize)]
struct Send {
    recipient_id: Id,
    content: String,
    attachment_ids: Option<Vec<Id>>,
    reply_to: Option<Id>,
}
impl Validate for Send {
    fn validate(&self) -> Result<(), ApiError> {
        length("content", &self.content, 1, 4000)?;
        range(
            "attachment_ids.length",
            self.attachment_ids.as_ref().map_or(0, Vec::len),
            0,
            10,
        )
    }
}

#[derive(Deserialize)]
struct Edit {
    message_id: Id,
    content: String,
}
impl Validate for Edit {
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
struct MarkRead {
    conversation_id: Id,
    last_read_message_id: Id,
}
impl Validate for MarkRead {}

pub fn register(r: &mut Registry) {
    r.query(
        "serverDms.list",
        Access::Protected,
        |ctx, Optional(w): Optional<List>| async move {
            dms::list(&ctx.svc, &ctx.server, ctx.caller(), w.limit.unwrap_or(50)).await
        },
    );
    r.query(
        "serverDms.history",
        Access::Protected,
        |ctx, w: History| async move {
            dms::history(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.conversation_id.into(),
                w.before.map(Uuid::from),
                w.limit.unwrap_or(50),
            )
            .await
        },
    );
    r.mutation(
        "serverDms.send",
        Access::Protected,
        |ctx, w: Send| async move {
            let input = SendDm {
                recipient_id: w.recipient_id.into(),
                content: w.content,
                reply_to: w.reply_to.map(Uuid::from),
                attachment_ids: ids(w.attachment_ids.unwrap_or_default()),
            };
            dms::send(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
    r.mutation(
        "serverDms.edit",
        Access::Protected,
        |ctx, w: Edit| async move {
            dms::edit(
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
        "serverDms.delete",
        Access::Protected,
        |ctx, w: MessageId| async move {
            dms::delete(&ctx.svc, &ctx.server, ctx.caller(), w.message_id.into()).await
        },
    );
    r.mutation(
        "serverDms.react",
        Access::Protected,
        |ctx, w: React| async move {
            dms::react(
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
    r.mutation(
        "serverDms.markRead",
        Access::Protected,
        |ctx, w: MarkRead| async move {
            dms::mark_read(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                w.conversation_id.into(),
                w.last_read_message_id.into(),
            )
            .await
        },
    );
}
