//! The `roles` router and `bans.list`.

use crate::trpc::{Access, Registry};
use crate::validate::{double_option, invalid, length, range, Id, NoInput, Validate};
use crate::ApiError;
use ecto_core::ports::RolePatch;
use ecto_core::usecases::{members_admin, roles};
use serde::Deserialize;

fn color_ok(color: Option<&str>) -> Result<(), ApiError> {
    match color {
        Some(c) if c.chars().count() > 7 => Err(invalid(
            "Invalid input: `color` must be at most 7 characters",
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
struct CreateRole {
    name: String,
    color: Option<String>,
    permissions: Option<u64>,
    position: Option<i32>,
}
impl Validate for CreateRole {
    fn validate(&self) -> Result<(), ApiError> {
        length("name", &self.name, 1, 100)?;
        color_ok(self.color.as_deref())
    }
}

#[derive(Deserialize)]
struct UpdateRole {
    role_id: Id,
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    color: Option<Option<String>>,
    permissions: Option<u64>,
    position: Option<i32>,
}
impl Validate for UpdateRole {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(name) = &self.name {
            length("name", name, 1, 100)?;
        }
        color_ok(self.color.clone().flatten().as_deref())
    }
}

#[derive(Deserialize)]
struct RoleId {
    role_id: Id,
}
impl Validate for RoleId {}

#[derive(Deserialize)]
struct RoleMove {
    role_id: Id,
    position: i32,
}

#[derive(Deserialize)]
struct ReorderRoles {
    roles: Vec<RoleMove>,
}
impl Validate for ReorderRoles {
    fn validate(&self) -> Result<(), ApiError> {
        range("roles.length", self.roles.len(), 1, 250)?;
        self.roles
            .iter()
            .try_for_each(|r| range("roles.position", r.position, 0, i32::MAX))
    }
}

pub fn register(r: &mut Registry) {
    r.query(
        "roles.list",
        Access::Protected,
        |ctx, _: NoInput| async move { roles::list(&ctx.svc, &ctx.server, ctx.caller()).await },
    );
    r.mutation(
        "roles.create",
        Access::Protected,
        |ctx, w: CreateRole| async move {
            let input = roles::CreateRole {
                name: w.name,
                color: w.color,
                permissions: w.permissions.unwrap_or(0),
                position: w.position,
            };
            roles::create(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
    r.mutation(
        "roles.update",
        Access::Protected,
        |ctx, w: UpdateRole| async move {
            let patch = RolePatch {
                name: w.name,
                color: w.color,
                permissions: w.permissions,
                position: w.position,
            };
            roles::update(&ctx.svc, &ctx.server, ctx.caller(), w.role_id.into(), patch).await
        },
    );
    r.mutation(
        "roles.delete",
        Access::Protected,
        |ctx, w: RoleId| async move {
            roles::delete(&ctx.svc, &ctx.server, ctx.caller(), w.role_id.into()).await
        },
    );
    r.mutation(
        "roles.reorder",
        Access::Protected,
        |ctx, w: ReorderRoles| async move {
            let moves = w
                .roles
                .into_iter()
                .map(|m| (m.role_id.into(), m.position))
                .collect();
            roles::reorder(&ctx.svc, &ctx.server, ctx.caller(), moves).await
        },
    );
    r.query("bans.list", Access::Protected, |ctx, _: NoInput| async move {
        members_admin::bans(&ctx.svc, &ctx.server, ctx.caller()).await
    });
}
