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
