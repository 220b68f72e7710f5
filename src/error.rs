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
    pub fn new(kind: ErrorKind, ecto: Option<EctoCode>, message: impl Into<String>) -> Self {
        Self {
            kind,
            ecto,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }
    pub fn ecto(kind: ErrorKind, code: EctoCode, message: impl Into<String>) -> Self {
        Self::new(kind, Some(code), message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, None, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, None, message)
    }
    /// UNAUTHORIZED with ecto code 1000: the one answer for every failed credential.
    pub fn auth_failed(message: impl Into<String>) -> Self {
        Self::ecto(ErrorKind::Unauthorized, EctoCode::AuthRequired, message)
    }
    pub fn forbidden(code: EctoCode, message: impl Into<String>) -> Self {
        Self::ecto(ErrorKind::Forbidden, code, message)
    }
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
    /// Same as [`CoreError::internal`] from a plain description.
    pub fn internal_msg(what: impl Into<String>) -> Self {
        Self::internal(what.into())
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
