//! The `server` router: info, join, leave, refreshToken.

use crate::trpc::{Access, Registry};
use crate::validate::{invalid, length, opt_length, NoInput, Optional, Validate};
use crate::ApiError;
use ecto_core::usecases::join::{JoinAction, JoinInput};
use ecto_core::usecases::{account, info, join};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct InfoInput {
    #[serde(rename = "invite_code")]
    _invite_code: Option<String>,
}
impl Validate for InfoInput {}

#[derive(Deserialize, Default)]
struct JoinWire {
    invite_code: Option<String>,
    username: Option<String>,
    password: Option<String>,
    action: Option<String>,
    setup_token: Option<String>,
}

impl Validate for JoinWire {
    fn validate(&self) -> Result<(), ApiError> {
        opt_length("invite_code", self.invite_code.as_deref(), 0, 64)?;
        opt_length("setup_token", self.setup_token.as_deref(), 0, 128)?;
        opt_length("username", self.username.as_deref(), 1, 32)?;
        opt_length("password", self.password.as_deref(), 8, 128)?;
        match self.action.as_deref() {
            None | Some("register") | Some("login") => Ok(()),
            Some(_) => Err(invalid(
                "Invalid input: `action` must be 'register' or 'login'",
            )),
        }
    }
}

#[derive(Deserialize)]
struct RefreshWire {
    server_refresh_token: String,
}

impl Validate for RefreshWire {
    fn validate(&self) -> Result<(), ApiError> {
        length("server_refresh_token", &self.server_refresh_token, 1, 4096)
    }
}

pub fn register(r: &mut Registry) {
    r.query(
        "server.info",
        Access::Public,
        |ctx, _: Optional<InfoInput>| async move {
            info::info(&ctx.svc, &ctx.server, ctx.caller.as_ref()).await
        },
    );
    r.mutation(
        "server.join",
        Access::Public,
        |ctx, Optional(w): Optional<JoinWire>| async move {
            let input = JoinInput {
                invite_code: w.invite_code,
                username: w.username,
                password: w.password,
                action: if w.action.as_deref() == Some("login") {
                    JoinAction::Login
                } else {
                    JoinAction::Register
                },
                client: ctx.ip,
                setup_token: w.setup_token,
            };
            join::join(&ctx.svc, &ctx.server, ctx.bearer.as_deref(), input).await
        },
    );
    r.mutation(
        "server.leave",
        Access::Protected,
        |ctx, _: NoInput| async move { account::leave(&ctx.svc, &ctx.server, ctx.caller()).await },
    );
    r.mutation(
        "server.refreshToken",
        Access::Public,
        |ctx, w: RefreshWire| async move {
            account::refresh(&ctx.svc, ctx.server.id, &w.server_refresh_token).await
        },
    );
}
