//! Domain records and the read models ("views") that the protocol sends.
//!
//! Views derive `Serialize` in the exact shape of the protocol's objects (reference §2.5): the
//! protocol *is* the domain's public language here, so the inbound adapters send them as they
//! are instead of copying every field into a second set of structs.

mod account;
mod activity;
mod central;
mod content;
mod dm;
mod hub;
mod invite;
mod member;
mod message;
mod server;
mod structure;
pub mod time;
mod token;

pub use account::{CachedProfile, LocalUser, NewLocalUser, Profile};
pub use activity::{
    preview, ActivityItem, ActivityRecord, ActivitySource, ActivityType, PREVIEW_CHARS,
};
pub use central::{NewSync, QueuedSync, SyncWith};
pub use content::{
    NewsCommentRecord, NewsCommentView, NewsPostPatch, NewsPostRecord, NewsPostView, PageContent,
    PageRevision,
};
pub use dm::{Conversation, ConversationSummary, ConversationView, DmPeer, ServerDmMessage};
pub use hub::{
    check_item_name, shared_file_key, shared_prefix, ChannelFileDeletion, ChannelFileRecord,
    ChannelFileStat, ChannelFileView, ChannelUploads, Contributor, DeletedTree, FolderStats,
    ItemOverride, ItemOverrideView, ItemType, SharedFileRecord, SharedFileView, SharedFolder,
    SharedFolderView,
};
pub use invite::{new_invite_code, Invite, InviteProblem, InviteView, INVITE_CODE_LEN};
pub use member::{IdentityType, JoinOutcome, JoinPlan, Member, MemberView};
pub use message::{
    group_reactions, kind, parse_mentions, Attachment, Mentions, MessageAuthor, MessageEdit,
    MessageRecord, MessageView, Reaction, ReactionGroup, ReadState,
};
pub use server::{ConfigPatch, NewServer, Server, ServerConfig, ServerPatch, ServerView};
pub use structure::{
    role_override, AuditEntry, BanView, Category, Channel, ChannelType, NewAudit, OverrideView,
    PermissionData, Role, StoredOverride, Webhook,
};
pub use token::{AccessClaims, RefreshClaims, RefreshTokenRecord};

/// Timestamps are UTC everywhere.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
