//! Row types in table column order (they are `Queryable` by position on both backends) and
//! their conversion into domain records.

use crate::types::DbId;
use chrono::{DateTime, Utc};
use diesel::Queryable;
use ecto_core::model::{
    CachedProfile, IdentityType, Invite, LocalUser, Member, Profile, RefreshTokenRecord, Server,
    ServerConfig,
};

#[derive(Queryable)]
pub(crate) struct ServerRow {
    id: DbId,
    name: String,
    description: Option<String>,
    icon_url: Option<String>,
    banner_url: Option<String>,
    address: Option<String>,
    admin_user_id: Option<DbId>,
    admin_identity_type: String,
    central_connected: bool,
    default_channel_id: Option<DbId>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ServerRow> for Server {
    fn from(r: ServerRow) -> Self {
        Server {
            id: r.id.0,
            name: r.name,
            description: r.description,
            icon_url: r.icon_url,
            banner_url: r.banner_url,
            address: r.address,
            admin_user_id: r.admin_user_id.map(|i| i.0),
            admin_identity_type: r.admin_identity_type,
            central_connected: r.central_connected,
            default_channel_id: r.default_channel_id.map(|i| i.0),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Queryable)]
pub(crate) struct ConfigRow {
    server_id: DbId,
    setup_completed: bool,
    allow_local_accounts: bool,
    require_invite: bool,
    allow_member_dms: bool,
    show_system_messages: bool,
    max_upload_size_bytes: i32,
    max_shared_storage_bytes: i64,
    discoverable: bool,
    discovery_approved: bool,
    tags: serde_json::Value,
    _created_at: DateTime<Utc>,
    _updated_at: DateTime<Utc>,
}

impl From<ConfigRow> for ServerConfig {
    fn from(r: ConfigRow) -> Self {
        let tags = match r.tags {
            serde_json::Value::Array(items) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        ServerConfig {
            server_id: r.server_id.0,
            setup_completed: r.setup_completed,
            allow_local_accounts: r.allow_local_accounts,
            require_invite: r.require_invite,
            allow_member_dms: r.allow_member_dms,
            show_system_messages: r.show_system_messages,
            max_upload_size_bytes: i64::from(r.max_upload_size_bytes),
            max_shared_storage_bytes: r.max_shared_storage_bytes,
            discoverable: r.discoverable,
            discovery_approved: r.discovery_approved,
            tags,
        }
    }
}

#[derive(Queryable)]
pub(crate) struct LocalUserRow {
    id: DbId,
    server_id: DbId,
    username: String,
    password_hash: String,
    display_name: Option<String>,
    avatar_url: Option<String>,
    _created_at: DateTime<Utc>,
    _updated_at: DateTime<Utc>,
}

impl From<LocalUserRow> for LocalUser {
    fn from(r: LocalUserRow) -> Self {
        LocalUser {
            id: r.id.0,
            server_id: r.server_id.0,
            username: r.username,
            password_hash: r.password_hash,
            display_name: r.display_name,
            avatar_url: r.avatar_url,
        }
    }
}

impl From<LocalUserRow> for Profile {
    fn from(r: LocalUserRow) -> Self {
        Profile {
            username: r.username,
            display_name: r.display_name,
            avatar_url: r.avatar_url,
            discriminator: None,
        }
    }
}

#[derive(Queryable)]
pub(crate) struct CachedProfileRow {
    user_id: DbId,
    username: String,
    discriminator: String,
    display_name: Option<String>,
    avatar_url: Option<String>,
    fetched_at: DateTime<Utc>,
}

impl From<CachedProfileRow> for CachedProfile {
    fn from(r: CachedProfileRow) -> Self {
        CachedProfile {
            user_id: r.user_id.0,
            username: r.username,
            discriminator: r.discriminator,
            display_name: r.display_name,
            avatar_url: r.avatar_url,
            fetched_at: r.fetched_at,
        }
    }
}

impl From<CachedProfileRow> for Profile {
    fn from(r: CachedProfileRow) -> Self {
        Profile {
            username: r.username,
            display_name: r.display_name,
            avatar_url: r.avatar_url,
            discriminator: Some(r.discriminator),
        }
    }
}

#[derive(Queryable)]
pub(crate) struct MemberRow {
    id: DbId,
    server_id: DbId,
    user_id: DbId,
    identity_type: String,
    nickname: Option<String>,
    allow_dms: bool,
    token_version: i32,
    joined_at: DateTime<Utc>,
}

impl From<MemberRow> for Member {
    fn from(r: MemberRow) -> Self {
        Member {
            id: r.id.0,
            server_id: r.server_id.0,
            user_id: r.user_id.0,
            identity_type: IdentityType::parse(&r.identity_type).unwrap_or(IdentityType::Local),
            nickname: r.nickname,
            allow_dms: r.allow_dms,
            token_version: r.token_version,
            joined_at: r.joined_at,
        }
    }
}

#[derive(Queryable)]
pub(crate) struct InviteRow {
    id: DbId,
    server_id: DbId,
    code: String,
    created_by: DbId,
    max_uses: Option<i32>,
    use_count: i32,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
    created_at: DateTime<Utc>,
}

impl From<InviteRow> for Invite {
    fn from(r: InviteRow) -> Self {
        Invite {
            id: r.id.0,
            server_id: r.server_id.0,
            code: r.code,
            created_by: r.created_by.0,
            max_uses: r.max_uses,
            use_count: r.use_count,
            expires_at: r.expires_at,
            revoked: r.revoked,
            created_at: r.created_at,
        }
    }
}

#[derive(Queryable)]
pub(crate) struct RefreshRow {
    id: DbId,
    member_id: DbId,
    jti: String,
    token_hash: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl From<RefreshRow> for RefreshTokenRecord {
    fn from(r: RefreshRow) -> Self {
        RefreshTokenRecord {
            id: r.id.0,
            member_id: r.member_id.0,
            jti: r.jti,
            token_hash: r.token_hash,
            expires_at: r.expires_at,
            created_at: r.created_at,
        }
    }
}

#[derive(Queryable)]
pub(crate) struct ChannelRow {
    id: DbId,
    server_id: DbId,
    category_id: Option<DbId>,
    name: String,
    channel_type: String,
    topic: Option<String>,
    position: i32,
    slowmode_seconds: i32,
    nsfw: bool,
    _created_at: DateTime<Utc>,
    _updated_at: DateTime<Utc>,
}

impl From<ChannelRow> for ecto_core::model::Channel {
    fn from(r: ChannelRow) -> Self {
        ecto_core::model::Channel {
            id: r.id.0,
            server_id: r.server_id.0,
            category_id: r.category_id.map(|c| c.0),
            name: r.name,
            channel_type: ecto_core::model::ChannelType::parse(&r.channel_type)
                .unwrap_or(ecto_core::model::ChannelType::Text),
            topic: r.topic,
            position: r.position,
            slowmode_seconds: r.slowmode_seconds,
            nsfw: r.nsfw,
            my_permissions: None,
        }
    }
}

#[derive(Queryable)]
pub(crate) struct CategoryRow {
    id: DbId,
    server_id: DbId,
    name: String,
    position: i32,
    _created_at: DateTime<Utc>,
}

impl From<CategoryRow> for ecto_core::model::Category {
    fn from(r: CategoryRow) -> Self {
        ecto_core::model::Category {
            id: r.id.0,
            server_id: r.server_id.0,
            name: r.name,
            position: r.position,
        }
    }
}

#[derive(Queryable)]
pub(crate) struct RoleRow {
    id: DbId,
    server_id: DbId,
    name: String,
    color: Option<String>,
    permissions: i64,
    position: i32,
    is_default: bool,
    _created_at: DateTime<Utc>,
}

impl From<RoleRow> for ecto_core::model::Role {
    fn from(r: RoleRow) -> Self {
        ecto_core::model::Role {
            id: r.id.0,
            server_id: r.server_id.0,
            name: r.name,
            color: r.color,
            permissions: r.permissions as u64,
            position: r.position,
            is_default: r.is_default,
        }
    }
}

#[derive(Queryable)]
pub(crate) struct OverrideRow {
    id: DbId,
    container_id: DbId,
    target_type: String,
    target_id: DbId,
    allow: i64,
    deny: i64,
}

impl OverrideRow {
    pub(crate) fn into_stored(self) -> Option<ecto_core::model::StoredOverride> {
        Some(ecto_core::model::StoredOverride {
            id: self.id.0,
            container_id: self.container_id.0,
            rule: ecto_core::permissions::Override {
                target_type: ecto_core::permissions::TargetType::parse(&self.target_type)?,
                target_id: self.target_id.0,
                allow: self.allow as u64,
                deny: self.deny as u64,
            },
        })
    }
}

#[derive(Queryable)]
pub(crate) struct AuditRow {
    pub(crate) id: DbId,
    pub(crate) server_id: DbId,
    pub(crate) actor_id: DbId,
    pub(crate) action: String,
    pub(crate) target_type: Option<String>,
    pub(crate) target_id: Option<DbId>,
    pub(crate) details: Option<serde_json::Value>,
    pub(crate) created_at: DateTime<Utc>,
}

#[derive(Queryable)]
pub(crate) struct MessageRow {
    id: DbId,
    server_id: DbId,
    channel_id: DbId,
    author_id: DbId,
    content: Option<String>,
    kind: i16,
    reply_to: Option<DbId>,
    pinned: bool,
    deleted: bool,
    mention_everyone: bool,
    mention_roles: serde_json::Value,
    mention_users: serde_json::Value,
    webhook_id: Option<DbId>,
    webhook_name: Option<String>,
    webhook_avatar_url: Option<String>,
    edited_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// A JSON array of ids (how mention lists are stored) back into ids.
pub(crate) fn ids_from_json(v: serde_json::Value) -> Vec<uuid::Uuid> {
    match v {
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str()?.parse().ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Ids as the JSON array stored in mention columns.
pub(crate) fn ids_to_json(ids: &[uuid::Uuid]) -> serde_json::Value {
    serde_json::Value::Array(
        ids.iter()
            .map(|i| serde_json::Value::String(i.to_string()))
            .collect(),
    )
}

impl From<MessageRow> for ecto_core::model::MessageRecord {
    fn from(r: MessageRow) -> Self {
        ecto_core::model::MessageRecord {
            id: r.id.0,
            server_id: r.server_id.0,
            channel_id: r.channel_id.0,
            author_id: r.author_id.0,
            content: r.content,
            kind: r.kind,
            reply_to: r.reply_to.map(|i| i.0),
            pinned: r.pinned,
            deleted: r.deleted,
            mention_everyone: r.mention_everyone,
            mention_roles: ids_from_json(r.mention_roles),
            mention_users: ids_from_json(r.mention_users),
            webhook_id: r.webhook_id.map(|i| i.0),
            webhook_name: r.webhook_name,
            webhook_avatar_url: r.webhook_avatar_url,
            edited_at: r.edited_at,
            created_at: r.created_at,
        }
    }
}
