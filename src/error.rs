//! The core's error type: a kind (which the inbound adapters map to a status) plus, where the
//! protocol defines one, the ecto error code, and a message safe to show to the caller.

use std::fmt;

/// What went wrong, in the protocol's terms. Each maps to one tRPC error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooManyRequests,
    PayloadTooLarge,
    /// A backing service (the database, Redis, the blob store) cannot be reached or is full:
    /// the call failed and may succeed later. 503 with the service named in the message.
    Unavailable,
    Internal,
}

/// Ecto error codes (reference §2.3 and DECISIONS §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum EctoCode {
    AuthRequired = 1000,
    InvalidUsername = 1001,
    UsernameTaken = 1002,
    LocalAccountsDisabled = 1006,
    TokenRevoked = 1008,
    ServerNotFound = 2000,
    NotAMember = 2002,
    Banned = 2003,
    InviteInvalid = 2004,
    InviteExpired = 2005,
    InviteMaxUses = 2006,
    ChannelNotFound = 3000,
    MessageEmpty = 3001,
    ChannelTypeInvalid = 3002,
    PageVersionConflict = 3003,
    ChannelInvalidName = 3004,
    SlowmodeActive = 3005,
    NewsChannelRequired = 3006,
    MessageNotFound = 4000,
    AttachmentNotFound = 4002,
    NewsPostNotFound = 4005,
    NewsCommentNotFound = 4006,
    RoleNotFound = 5000,
    InsufficientPermissions = 5001,
    RoleHierarchy = 5004,
    DmsDisabled = 6001,
    ConversationNotFound = 6002,
    CannotDmSelf = 6003,
    RecipientNotMember = 6004,
    RecipientDmsDisabled = 6005,
    DiscoveryCentralAccountRequired = 6100,
    DiscoveryNotApproved = 6101,
    NotInVoice = 8000,
    RateLimited = 9000,
    PayloadTooLarge = 9001,
}

impl EctoCode {
    /// Every code, for documentation and tests.
    pub const ALL: &'static [EctoCode] = &[
        Self::AuthRequired,
        Self::InvalidUsername,
        Self::UsernameTaken,
        Self::LocalAccountsDisabled,
        Self::TokenRevoked,
        Self::ServerNotFound,
        Self::NotAMember,
        Self::Banned,
        Self::InviteInvalid,
        Self::InviteExpired,
        Self::InviteMaxUses,
        Self::ChannelNotFound,
        Self::MessageEmpty,
        Self::ChannelTypeInvalid,
        Self::PageVersionConflict,
        Self::ChannelInvalidName,
        Self::SlowmodeActive,
        Self::NewsChannelRequired,
        Self::MessageNotFound,
        Self::AttachmentNotFound,
        Self::NewsPostNotFound,
        Self::NewsCommentNotFound,
        Self::RoleNotFound,
        Self::InsufficientPermissions,
        Self::RoleHierarchy,
        Self::DmsDisabled,
        Self::ConversationNotFound,
        Self::CannotDmSelf,
        Self::RecipientNotMember,
        Self::RecipientDmsDisabled,
        Self::DiscoveryCentralAccountRequired,
        Self::DiscoveryNotApproved,
        Self::NotInVoice,
        Self::RateLimited,
        Self::PayloadTooLarge,
    ];

    /// The numeric code sent as `ecto_code`.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// The identifier sent as `ecto_error` (lower snake case of the code's name).
    pub fn identifier(self) -> &'static str {
        match self {
            Self::AuthRequired => "auth_required",
            Self::InvalidUsername => "invalid_username",
            Self::UsernameTaken => "username_taken",
            Self::LocalAccountsDisabled => "local_accounts_disabled",
            Self::TokenRevoked => "token_revoked",
            Self::ServerNotFound => "server_not_found",
            Self::NotAMember => "not_a_member",
            Self::Banned => "banned",
            Self::InviteInvalid => "invite_invalid",
            Self::InviteExpired => "invite_expired",
            Self::InviteMaxUses => "invite_max_uses",
            Self::ChannelNotFound => "channel_not_found",
            Self::MessageEmpty => "message_empty",
            Self::ChannelTypeInvalid => "channel_type_invalid",
            Self::PageVersionConflict => "page_version_conflict",
            Self::ChannelInvalidName => "channel_invalid_name",
            Self::SlowmodeActive => "slowmode_active",
            Self::NewsChannelRequired => "news_channel_required",
            Self::MessageNotFound => "message_not_found",
            Self::AttachmentNotFound => "attachment_not_found",
            Self::NewsPostNotFound => "news_post_not_found",
            Self::NewsCommentNotFound => "news_comment_not_found",
            Self::RoleNotFound => "role_not_found",
            Self::InsufficientPermissions => "insufficient_permissions",
            Self::RoleHierarchy => "role_hierarchy",
            Self::DmsDisabled => "dms_disabled",
            Self::ConversationNotFound => "conversation_not_found",
            Self::CannotDmSelf => "cannot_dm_self",
            Self::RecipientNotMember => "recipient_not_member",
            Self::RecipientDmsDisabled => "recipient_dms_disabled",
            Self::DiscoveryCentralAccountRequired => "discovery_central_account_required",
            Self::DiscoveryNotApproved => "discovery_not_approved",
            Self::NotInVoice => "not_in_voice",
            Self::RateLimited => "rate_limited",
            Self::PayloadTooLarge => "payload_too_large",
        }
    }
}

/// An error of the core. `message` is shown to the caller; for `Internal` errors it is a generic
/// text and the cause is kept in `source` for the logs only.
#[derive(Debug)]
pub struct CoreError {
    pub kind: ErrorKind,
    pub ecto: Option<EctoCode>,
    pub message: String,
    /// Seconds the caller should wait (TOO_MANY_REQUESTS).
    pub retry_after: Option<u64>,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Result alias used across the core and its ports.
pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// An error of `kind`, with an ecto code when the protocol defines one.
    pub fn new(kind: ErrorKind, ecto: Option<EctoCode>, message: impl Into<String>) -> Self {
        Self {
            kind,
            ecto,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }
    /// An error of `kind` with ecto code `code`.
    pub fn ecto(kind: ErrorKind, code: EctoCode, message: impl Into<String>) -> Self {
        Self::new(kind, Some(code), message)
    }
    /// BAD_REQUEST without an ecto code.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, None, message)
    }
    /// UNAUTHORIZED without an ecto code.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, None, message)
    }
    /// UNAUTHORIZED with ecto code 1000: the one answer for every failed credential.
    pub fn auth_failed(message: impl Into<String>) -> Self {
        Self::ecto(ErrorKind::Unauthorized, EctoCode::AuthRequired, message)
    }
    /// FORBIDDEN with ecto code `code`.
    pub fn forbidden(code: EctoCode, message: impl Into<String>) -> Self {
        Self::ecto(ErrorKind::Forbidden, code, message)
    }
    /// NOT_FOUND with ecto code `code`.
    pub fn not_found(code: EctoCode, message: impl Into<String>) -> Self {
        Self::ecto(ErrorKind::NotFound, code, message)
    }
    /// A fault of the server or of a backing service; the cause goes to the logs, not the wire.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: ErrorKind::Internal,
            ecto: None,
            message: "Internal server error".into(),
            retry_after: None,
            source: Some(source.into()),
        }
    }
    /// A backing service that cannot be reached (or, for storage, is full): `message` names
    /// it for the caller ("Database unavailable"); the cause goes to the logs. The caller is
    /// asked to retry after two seconds.
    pub fn unavailable(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind: ErrorKind::Unavailable,
            ecto: None,
            message: message.into(),
            retry_after: Some(2),
            source: Some(source.into()),
        }
    }
    /// Whether this error is a fault of the server or of a backing service (not of the
    /// caller's input or rights).
    pub fn is_fault(&self) -> bool {
        matches!(self.kind, ErrorKind::Internal | ErrorKind::Unavailable)
    }
    /// Same as [`CoreError::internal`] from a plain description.
    pub fn internal_msg(what: impl Into<String>) -> Self {
        Self::internal(what.into())
    }
}

/// An error several waiters share (one coalesced fetch): each gets a copy with the same kind,
/// code and message, the cause kept as text.
impl From<std::sync::Arc<CoreError>> for CoreError {
    fn from(shared: std::sync::Arc<CoreError>) -> Self {
        Self {
            kind: shared.kind,
            ecto: shared.ecto,
            message: shared.message.clone(),
            retry_after: shared.retry_after,
            source: shared.source.as_ref().map(|s| s.to_string().into()),
        }
    }
}

/// The named errors of the use cases, each defined once. Their kind, code and message are
/// protocol: the `frozen` test below pins every one of them (some codes look odd, such as 2000
/// for hub items or 4000 for webhooks; they are what clients already see).
impl CoreError {
    /// NOT_FOUND 3000: a channel id that is not a channel of this server.
    pub fn channel_not_found() -> Self {
        Self::not_found(EctoCode::ChannelNotFound, "Channel not found")
    }
    /// NOT_FOUND 3000: a category id that is not a category of this server.
    pub fn category_not_found() -> Self {
        Self::not_found(EctoCode::ChannelNotFound, "Category not found")
    }
    /// NOT_FOUND 3000: a page channel's content that is not there.
    pub fn page_content_not_found() -> Self {
        Self::not_found(EctoCode::ChannelNotFound, "Page content not found")
    }
    /// NOT_FOUND 4000: a message that is not there (or not shown to exist).
    pub fn message_not_found() -> Self {
        Self::not_found(EctoCode::MessageNotFound, "Message not found")
    }
    /// NOT_FOUND 4002: an attachment of this server that is not there (or not the caller's).
    pub fn attachment_not_found() -> Self {
        Self::not_found(EctoCode::AttachmentNotFound, "Attachment not found")
    }
    /// NOT_FOUND 2000: a channel file of the hub (`hubFiles.deleteChannelFile`); the hub
    /// answers 2000 for its items, unlike the 4002 of other attachment lookups.
    pub fn channel_file_not_found() -> Self {
        Self::not_found(EctoCode::ServerNotFound, "Attachment not found")
    }
    /// NOT_FOUND 2000: a shared folder that is not in this server.
    pub fn folder_not_found() -> Self {
        Self::not_found(EctoCode::ServerNotFound, "Folder not found")
    }
    /// NOT_FOUND 2000: the parent of a new shared folder that is not in this server.
    pub fn parent_folder_not_found() -> Self {
        Self::not_found(EctoCode::ServerNotFound, "Parent folder not found")
    }
    /// NOT_FOUND 2000: a shared file that is not in this server.
    pub fn shared_file_not_found() -> Self {
        Self::not_found(EctoCode::ServerNotFound, "File not found")
    }
    /// NOT_FOUND 4000: a webhook id that is not in this server.
    pub fn webhook_not_found() -> Self {
        Self::not_found(EctoCode::MessageNotFound, "Webhook not found")
    }
    /// NOT_FOUND 4000: a webhook call with an unknown id or a wrong token.
    pub fn webhook_not_found_or_bad_token() -> Self {
        Self::not_found(
            EctoCode::MessageNotFound,
            "Webhook not found or invalid token",
        )
    }
    /// NOT_FOUND 2004: an invite that is not in this server.
    pub fn invite_not_found() -> Self {
        Self::not_found(EctoCode::InviteInvalid, "Invite not found")
    }
    /// NOT_FOUND 4005.
    pub fn post_not_found() -> Self {
        Self::not_found(EctoCode::NewsPostNotFound, "News post not found")
    }
    /// NOT_FOUND 4006.
    pub fn comment_not_found() -> Self {
        Self::not_found(EctoCode::NewsCommentNotFound, "News comment not found")
    }
    /// NOT_FOUND 6002: a conversation of this server the caller does not take part in.
    pub fn conversation_not_found() -> Self {
        Self::not_found(EctoCode::ConversationNotFound, "Conversation not found")
    }
    /// NOT_FOUND 2000.
    pub fn server_not_found() -> Self {
        Self::not_found(EctoCode::ServerNotFound, "Server not found")
    }
    /// NOT_FOUND 5000: a role id that is not a role of this server.
    pub fn role_not_found() -> Self {
        Self::not_found(EctoCode::RoleNotFound, "Role not found")
    }
    /// NOT_FOUND 2000: a member (an override target, a new owner, whose sessions to revoke)
    /// who is not a member of this server.
    pub fn member_not_found() -> Self {
        Self::not_found(EctoCode::ServerNotFound, "Member not found")
    }
    /// NOT_FOUND 2000: a user who is not banned here.
    pub fn ban_not_found() -> Self {
        Self::not_found(EctoCode::ServerNotFound, "Ban not found")
    }
    /// FORBIDDEN 2002: the target of a moderation call who is not a member of this server
    /// (the reference's `requireMember` on the target).
    pub fn target_not_a_member() -> Self {
        Self::forbidden(EctoCode::NotAMember, "User is not a member of this server")
    }
    /// FORBIDDEN 2002: a caller who is not a member of this server.
    pub fn not_a_member() -> Self {
        Self::forbidden(EctoCode::NotAMember, "Not a member of this server")
    }
    /// FORBIDDEN 5004.
    pub fn role_hierarchy() -> Self {
        Self::forbidden(
            EctoCode::RoleHierarchy,
            "Role hierarchy does not allow this",
        )
    }
    /// FORBIDDEN 5004: granting bits the granter does not hold.
    pub fn grant_not_held() -> Self {
        Self::forbidden(
            EctoCode::RoleHierarchy,
            "You cannot grant permissions you do not have",
        )
    }
    /// FORBIDDEN 5001 naming the missing permission.
    pub fn missing_permission(name: &str) -> Self {
        Self::forbidden(
            EctoCode::InsufficientPermissions,
            format!("Missing permission {name}"),
        )
    }
    /// BAD_REQUEST: permission bits outside the defined ones.
    pub fn invalid_permission_bits() -> Self {
        Self::bad_request("Permission bits name no permission")
    }
    /// CONFLICT 1002: a username already used on this server.
    pub fn username_taken() -> Self {
        Self::ecto(
            ErrorKind::Conflict,
            EctoCode::UsernameTaken,
            "Username is already taken",
        )
    }
    /// PAYLOAD_TOO_LARGE 9001: the server-wide quota of non-image files (`limit_mb`) is full.
    pub fn storage_quota_exceeded(limit_mb: u64) -> Self {
        Self::ecto(
            ErrorKind::PayloadTooLarge,
            EctoCode::PayloadTooLarge,
            format!("Storage quota exceeded ({limit_mb}MB limit)"),
        )
    }
    /// PAYLOAD_TOO_LARGE 9001: the shared storage of the hub is full.
    pub fn shared_quota_exceeded() -> Self {
        Self::ecto(
            ErrorKind::PayloadTooLarge,
            EctoCode::PayloadTooLarge,
            "Shared storage quota exceeded",
        )
    }
    /// TOO_MANY_REQUESTS 9000 with `retry_after`: whole seconds to wait, at least 1.
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_millis().div_ceil(1000).max(1);
        let secs = u64::try_from(secs).unwrap_or(u64::MAX);
        let mut err = Self::ecto(
            ErrorKind::TooManyRequests,
            EctoCode::RateLimited,
            format!("Too many requests. Try again in {secs}s"),
        );
        err.retry_after = Some(secs);
        err
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::{CoreError, EctoCode, ErrorKind};
    use std::time::Duration;

    /// Every named error keeps its kind, ecto code and message: they are what clients see.
    #[test]
    fn frozen() {
        use EctoCode as C;
        use ErrorKind as K;
        #[rustfmt::skip]
        let cases: Vec<(CoreError, K, Option<C>, &str)> = vec![
            (CoreError::channel_not_found(), K::NotFound, Some(C::ChannelNotFound), "Channel not found"),
            (CoreError::category_not_found(), K::NotFound, Some(C::ChannelNotFound), "Category not found"),
            (CoreError::page_content_not_found(), K::NotFound, Some(C::ChannelNotFound), "Page content not found"),
            (CoreError::message_not_found(), K::NotFound, Some(C::MessageNotFound), "Message not found"),
            (CoreError::attachment_not_found(), K::NotFound, Some(C::AttachmentNotFound), "Attachment not found"),
            (CoreError::channel_file_not_found(), K::NotFound, Some(C::ServerNotFound), "Attachment not found"),
            (CoreError::folder_not_found(), K::NotFound, Some(C::ServerNotFound), "Folder not found"),
            (CoreError::parent_folder_not_found(), K::NotFound, Some(C::ServerNotFound), "Parent folder not found"),
            (CoreError::shared_file_not_found(), K::NotFound, Some(C::ServerNotFound), "File not found"),
            (CoreError::webhook_not_found(), K::NotFound, Some(C::MessageNotFound), "Webhook not found"),
            (CoreError::webhook_not_found_or_bad_token(), K::NotFound, Some(C::MessageNotFound), "Webhook not found or invalid token"),
            (CoreError::invite_not_found(), K::NotFound, Some(C::InviteInvalid), "Invite not found"),
            (CoreError::post_not_found(), K::NotFound, Some(C::NewsPostNotFound), "News post not found"),
            (CoreError::comment_not_found(), K::NotFound, Some(C::NewsCommentNotFound), "News comment not found"),
            (CoreError::conversation_not_found(), K::NotFound, Some(C::ConversationNotFound), "Conversation not found"),
            (CoreError::server_not_found(), K::NotFound, Some(C::ServerNotFound), "Server not found"),
            (CoreError::role_not_found(), K::NotFound, Some(C::RoleNotFound), "Role not found"),
            (CoreError::member_not_found(), K::NotFound, Some(C::ServerNotFound), "Member not found"),
            (CoreError::ban_not_found(), K::NotFound, Some(C::ServerNotFound), "Ban not found"),
            (CoreError::target_not_a_member(), K::Forbidden, Some(C::NotAMember), "User is not a member of this server"),
            (CoreError::not_a_member(), K::Forbidden, Some(C::NotAMember), "Not a member of this server"),
            (CoreError::role_hierarchy(), K::Forbidden, Some(C::RoleHierarchy), "Role hierarchy does not allow this"),
            (CoreError::grant_not_held(), K::Forbidden, Some(C::RoleHierarchy), "You cannot grant permissions you do not have"),
            (CoreError::missing_permission("MANAGE_SERVER"), K::Forbidden, Some(C::InsufficientPermissions), "Missing permission MANAGE_SERVER"),
            (CoreError::invalid_permission_bits(), K::BadRequest, None, "Permission bits name no permission"),
            (CoreError::username_taken(), K::Conflict, Some(C::UsernameTaken), "Username is already taken"),
            (CoreError::storage_quota_exceeded(5), K::PayloadTooLarge, Some(C::PayloadTooLarge), "Storage quota exceeded (5MB limit)"),
            (CoreError::shared_quota_exceeded(), K::PayloadTooLarge, Some(C::PayloadTooLarge), "Shared storage quota exceeded"),
            (CoreError::rate_limited(Duration::from_millis(1500)), K::TooManyRequests, Some(C::RateLimited), "Too many requests. Try again in 2s"),
            (CoreError::bad_request("m"), K::BadRequest, None, "m"),
            (CoreError::unauthorized("m"), K::Unauthorized, None, "m"),
            (CoreError::auth_failed("m"), K::Unauthorized, Some(C::AuthRequired), "m"),
            (CoreError::forbidden(C::Banned, "m"), K::Forbidden, Some(C::Banned), "m"),
            (CoreError::not_found(C::RoleNotFound, "m"), K::NotFound, Some(C::RoleNotFound), "m"),
            (CoreError::internal_msg("cause"), K::Internal, None, "Internal server error"),
        ];
        for (error, kind, code, message) in cases {
            assert_eq!(
                (error.kind, error.ecto, error.message.as_str()),
                (kind, code, message),
                "{error}"
            );
        }
        assert_eq!(
            CoreError::rate_limited(Duration::from_millis(1500)).retry_after,
            Some(2)
        );
    }
}
