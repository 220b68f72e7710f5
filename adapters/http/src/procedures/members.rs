//! The `members` router (identity part: changePassword, revokeSessions).

use crate::trpc::{Access, Registry};
use crate::validate::{length, Optional, Validate};
use crate::ApiError;
use ecto_core::usecases::account;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

impl Validate for ChangePassword {
    fn validate(&self) -> Result<(), ApiError> {
        length("current_password", &self.current_password, 1, 128)?;
        length("new_password", &self.new_password, 8, 128)
    }
}

#[derive(Deserialize, Default)]
struct RevokeSessions {
    user_id: Option<Uuid>,
}
impl Validate for RevokeSessions {}

pub fn register(r: &mut Registry) {
    r.mutation(
        "members.changePassword",
        Access::Protected,
        |ctx, w: ChangePassword| async move {
            account::change_password(
                &ctx.svc,
                &ctx.server,
                ctx.caller(),
                &w.current_password,
                &w.new_password,
            )
            .await
        },
    );
    r.mutation(
        "members.revokeSessions",
        Access::Protected,
        |ctx, Optional(w): Optional<RevokeSessions>| async move {
            account::revoke_sessions(&ctx.svc, &ctx.server, ctx.caller(), w.user_id).await
        },
    );
}
