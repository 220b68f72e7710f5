-- Complete initial schema (SQLite): all 31 tables of the reference (protocol §8, migration 0022)
-- plus message_edits, with this project's changes (everything that belongs to a server cascades
-- from servers, per-server local users, token versions, refresh token ids, edit history), and
-- the FTS5 index messages_fts kept in sync by triggers.
-- Ids are UUIDv7 strings and timestamps RFC 3339 text, both always supplied by the application;
-- JSON columns hold JSON text. Foreign keys need PRAGMA foreign_keys = ON on every connection.

CREATE TABLE servers (
    id                  TEXT NOT NULL PRIMARY KEY,
    name                VARCHAR(100) NOT NULL,
    description         TEXT,
    icon_url            VARCHAR(512),
    banner_url          VARCHAR(512),
    address             VARCHAR(255),
    admin_user_id       TEXT,
    admin_identity_type VARCHAR(10) NOT NULL DEFAULT 'global',
    central_connected   BOOLEAN NOT NULL DEFAULT 0,
    -- no FK: channels reference servers; the application clears it when the channel goes away
    default_channel_id  TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
-- requests are routed to a server by its address (managed profile)
CREATE UNIQUE INDEX idx_servers_address ON servers (address);

CREATE TABLE server_config (
    server_id                TEXT NOT NULL PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    setup_completed          BOOLEAN NOT NULL DEFAULT 0,
    allow_local_accounts     BOOLEAN NOT NULL DEFAULT 1,
    require_invite           BOOLEAN NOT NULL DEFAULT 0,
    allow_member_dms         BOOLEAN NOT NULL DEFAULT 0,
    show_system_messages     BOOLEAN NOT NULL DEFAULT 1,
    max_upload_size_bytes    INTEGER NOT NULL DEFAULT 5242880,
    max_shared_storage_bytes BIGINT NOT NULL DEFAULT 104857600,
    discoverable             BOOLEAN NOT NULL DEFAULT 0,
    discovery_approved       BOOLEAN NOT NULL DEFAULT 0,
    tags                     TEXT NOT NULL DEFAULT '[]',
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL
);

CREATE TABLE custom_domains (
    server_id TEXT NOT NULL PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    domain    VARCHAR(255) NOT NULL UNIQUE,
    status    VARCHAR(20) NOT NULL DEFAULT 'pending'
);

CREATE TABLE local_users (
    id            TEXT NOT NULL PRIMARY KEY,
    server_id     TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    username      VARCHAR(32) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    display_name  VARCHAR(64),
    avatar_url    VARCHAR(512),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX idx_local_users_server_username ON local_users (server_id, lower(username));
CREATE INDEX idx_local_users_server ON local_users (server_id);

-- profiles of central (global) users; not owned by any server
CREATE TABLE cached_profiles (
    user_id       TEXT NOT NULL PRIMARY KEY,
    username      VARCHAR(32) NOT NULL,
    discriminator VARCHAR(4) NOT NULL,
    display_name  VARCHAR(64),
    avatar_url    VARCHAR(512),
    fetched_at    TEXT NOT NULL
);

CREATE TABLE members (
    id            TEXT NOT NULL PRIMARY KEY,
    server_id     TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    identity_type VARCHAR(10) NOT NULL,
    nickname      VARCHAR(64),
    allow_dms     BOOLEAN NOT NULL DEFAULT 1,
    token_version INTEGER NOT NULL DEFAULT 0,
    joined_at     TEXT NOT NULL,
    UNIQUE (server_id, user_id)
);
CREATE INDEX idx_members_server ON members (server_id);
CREATE INDEX idx_members_user ON members (user_id);
CREATE INDEX idx_members_server_id_id ON members (server_id, id);

CREATE TABLE roles (
    id          TEXT NOT NULL PRIMARY KEY,
    server_id   TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name        VARCHAR(100) NOT NULL,
    color       VARCHAR(7),
    permissions BIGINT NOT NULL DEFAULT 0,
    position    INTEGER NOT NULL DEFAULT 0,
    is_default  BOOLEAN NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE INDEX idx_roles_server_position ON roles (server_id, position);

CREATE TABLE member_roles (
    member_id TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    role_id   TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (member_id, role_id)
);
CREATE INDEX idx_member_roles_role ON member_roles (role_id);

CREATE TABLE categories (
    id         TEXT NOT NULL PRIMARY KEY,
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name       VARCHAR(100) NOT NULL,
    position   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_categories_server_position ON categories (server_id, position);

CREATE TABLE channels (
    id               TEXT NOT NULL PRIMARY KEY,
    server_id        TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    category_id      TEXT REFERENCES categories (id) ON DELETE SET NULL,
    name             VARCHAR(100) NOT NULL,
    type             VARCHAR(10) NOT NULL,
    topic            TEXT,
    position         INTEGER NOT NULL DEFAULT 0,
    slowmode_seconds INTEGER NOT NULL DEFAULT 0,
    nsfw             BOOLEAN NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX idx_channels_server_position ON channels (server_id, position);
CREATE INDEX idx_channels_category ON channels (category_id);

CREATE TABLE channel_permission_overrides (
    id          TEXT NOT NULL PRIMARY KEY,
    channel_id  TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    target_type VARCHAR(10) NOT NULL,
    target_id   TEXT NOT NULL,
    allow       BIGINT NOT NULL DEFAULT 0,
    deny        BIGINT NOT NULL DEFAULT 0,
    UNIQUE (channel_id, target_type, target_id)
);
CREATE INDEX idx_channel_overrides_channel ON channel_permission_overrides (channel_id);

CREATE TABLE category_permission_overrides (
    id          TEXT NOT NULL PRIMARY KEY,
    category_id TEXT NOT NULL REFERENCES categories (id) ON DELETE CASCADE,
    target_type VARCHAR(10) NOT NULL,
    target_id   TEXT NOT NULL,
    allow       BIGINT NOT NULL DEFAULT 0,
    deny        BIGINT NOT NULL DEFAULT 0,
    UNIQUE (category_id, target_type, target_id)
);
CREATE INDEX idx_category_overrides_category ON category_permission_overrides (category_id);

CREATE TABLE messages (
    id                 TEXT NOT NULL PRIMARY KEY,
    server_id          TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    -- no FK: also holds DM conversation ids
    channel_id         TEXT NOT NULL,
    author_id          TEXT NOT NULL,
    content            TEXT,
    type               SMALLINT NOT NULL DEFAULT 0,
    reply_to           TEXT,
    pinned             BOOLEAN NOT NULL DEFAULT 0,
    deleted            BOOLEAN NOT NULL DEFAULT 0,
    mention_everyone   BOOLEAN NOT NULL DEFAULT 0,
    mention_roles      TEXT NOT NULL DEFAULT '[]',
    mention_users      TEXT NOT NULL DEFAULT '[]',
    webhook_id         TEXT,
    webhook_name       VARCHAR(80),
    webhook_avatar_url VARCHAR(512),
    edited_at          TEXT,
    created_at         TEXT NOT NULL
);
CREATE INDEX idx_messages_channel_id ON messages (channel_id, id);
CREATE INDEX idx_messages_channel_pinned ON messages (channel_id, pinned);
CREATE INDEX idx_messages_reply_to ON messages (reply_to);
CREATE INDEX idx_messages_server ON messages (server_id);
CREATE INDEX idx_messages_author ON messages (author_id);

-- Full-text search over messages.content: an FTS5 external-content table keyed by the implicit
-- rowid of messages, kept in sync by the triggers below (the standard FTS5 external content
-- pattern). Cascaded deletes fire the delete trigger too. messages has no INTEGER PRIMARY KEY, so
-- a VACUUM may renumber its rowids: after a VACUUM run
--   INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    content = 'messages',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61'
);

CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;

CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;

CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;

CREATE TABLE message_edits (
    id         TEXT NOT NULL PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    content    TEXT NOT NULL,
    edited_at  TEXT NOT NULL
);
CREATE INDEX idx_message_edits_message_edited ON message_edits (message_id, edited_at);

CREATE TABLE attachments (
    id           TEXT NOT NULL PRIMARY KEY,
    server_id    TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    -- NULL until the upload is linked to a message
    message_id   TEXT REFERENCES messages (id) ON DELETE CASCADE,
    channel_id   TEXT,
    uploader_id  TEXT NOT NULL,
    filename     VARCHAR(255) NOT NULL,
    url          VARCHAR(512) NOT NULL,
    storage_key  VARCHAR(1024) NOT NULL,
    content_type VARCHAR(100) NOT NULL,
    size_bytes   INTEGER NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX idx_attachments_server ON attachments (server_id);
CREATE INDEX idx_attachments_message ON attachments (message_id);

CREATE TABLE reactions (
    id         TEXT NOT NULL PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    emoji      VARCHAR(64) NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (message_id, user_id, emoji)
);
CREATE INDEX idx_reactions_message ON reactions (message_id);

CREATE TABLE read_states (
    user_id              TEXT NOT NULL,
    channel_id           TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    last_read_message_id TEXT,
    mention_count        INTEGER NOT NULL DEFAULT 0,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);
CREATE INDEX idx_read_states_channel ON read_states (channel_id);

CREATE TABLE invites (
    id         TEXT NOT NULL PRIMARY KEY,
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    code       VARCHAR(8) NOT NULL UNIQUE, -- the unique index serves lookups by code
    created_by TEXT NOT NULL,
    max_uses   INTEGER,
    use_count  INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT,
    revoked    BOOLEAN NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_invites_server ON invites (server_id);
CREATE INDEX idx_invites_server_created ON invites (server_id, created_at);

CREATE TABLE bans (
    id         TEXT NOT NULL PRIMARY KEY,
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    banned_by  TEXT NOT NULL,
    reason     TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (server_id, user_id)
);
CREATE INDEX idx_bans_server ON bans (server_id);

CREATE TABLE audit_log (
    id          TEXT NOT NULL PRIMARY KEY,
    server_id   TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    actor_id    TEXT NOT NULL,
    action      VARCHAR(50) NOT NULL,
    target_type VARCHAR(20),
    target_id   TEXT,
    details     TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX idx_audit_log_server_created ON audit_log (server_id, created_at);
CREATE INDEX idx_audit_log_actor ON audit_log (actor_id);
CREATE INDEX idx_audit_log_server_id_id ON audit_log (server_id, id);

-- user_a < user_b (ordering enforced by the application)
CREATE TABLE dm_conversations (
    id              TEXT NOT NULL PRIMARY KEY,
    server_id       TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_a          TEXT NOT NULL,
    user_b          TEXT NOT NULL,
    last_message_at TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (server_id, user_a, user_b)
);
CREATE INDEX idx_dm_conversations_user_a ON dm_conversations (server_id, user_a, last_message_at);
CREATE INDEX idx_dm_conversations_user_b ON dm_conversations (server_id, user_b, last_message_at);

CREATE TABLE dm_read_states (
    user_id              TEXT NOT NULL,
    conversation_id      TEXT NOT NULL REFERENCES dm_conversations (id) ON DELETE CASCADE,
    last_read_message_id TEXT,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
CREATE INDEX idx_dm_read_states_conversation ON dm_read_states (conversation_id);

CREATE TABLE webhooks (
    id         TEXT NOT NULL PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    avatar_url TEXT,
    token      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_webhooks_channel ON webhooks (channel_id);
CREATE INDEX idx_webhooks_id_token ON webhooks (id, token);

CREATE TABLE page_contents (
    channel_id TEXT NOT NULL PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    content    TEXT NOT NULL DEFAULT '',
    banner_url VARCHAR(512),
    version    INTEGER NOT NULL DEFAULT 1,
    edited_by  TEXT,
    edited_at  TEXT NOT NULL
);

CREATE TABLE page_revisions (
    id         TEXT NOT NULL PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    content    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    edited_by  TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_page_revisions_channel_version ON page_revisions (channel_id, version);

CREATE TABLE shared_folders (
    id         TEXT NOT NULL PRIMARY KEY,
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    -- no FK (as the reference); NULL = root
    parent_id  TEXT,
    name       VARCHAR(255) NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_shared_folders_server ON shared_folders (server_id);
CREATE INDEX idx_shared_folders_parent ON shared_folders (parent_id);

CREATE TABLE shared_files (
    id           TEXT NOT NULL PRIMARY KEY,
    server_id    TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    -- NULL = root folder
    folder_id    TEXT REFERENCES shared_folders (id) ON DELETE CASCADE,
    filename     VARCHAR(255) NOT NULL,
    url          VARCHAR(512) NOT NULL,
    storage_key  VARCHAR(1024) NOT NULL,
    content_type VARCHAR(100) NOT NULL,
    size_bytes   INTEGER NOT NULL,
    uploaded_by  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX idx_shared_files_server ON shared_files (server_id);
CREATE INDEX idx_shared_files_folder ON shared_files (folder_id);

CREATE TABLE shared_item_permission_overrides (
    id          TEXT NOT NULL PRIMARY KEY,
    server_id   TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    item_type   VARCHAR(10) NOT NULL,
    item_id     TEXT NOT NULL,
    target_type VARCHAR(10) NOT NULL,
    target_id   TEXT NOT NULL,
    allow       BIGINT NOT NULL DEFAULT 0,
    deny        BIGINT NOT NULL DEFAULT 0,
    UNIQUE (item_type, item_id, target_type, target_id)
);
CREATE INDEX idx_shared_item_overrides_item ON shared_item_permission_overrides (item_type, item_id);
CREATE INDEX idx_shared_item_overrides_server ON shared_item_permission_overrides (server_id);

CREATE TABLE activity_items (
    id              TEXT NOT NULL PRIMARY KEY,
    user_id         TEXT NOT NULL,
    server_id       TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    type            VARCHAR(20) NOT NULL,
    actor_id        TEXT NOT NULL,
    message_id      TEXT,
    channel_id      TEXT,
    conversation_id TEXT,
    content_preview TEXT,
    emoji           VARCHAR(64),
    read            BOOLEAN NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);
CREATE INDEX idx_activity_items_user_created ON activity_items (user_id, created_at);
CREATE INDEX idx_activity_items_user_read ON activity_items (user_id, read);
CREATE INDEX idx_activity_items_server_user_created ON activity_items (server_id, user_id, created_at);

CREATE TABLE news_posts (
    id                          TEXT NOT NULL PRIMARY KEY,
    channel_id                  TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    author_id                   TEXT NOT NULL,
    title                       VARCHAR(200) NOT NULL,
    subtitle                    VARCHAR(500),
    hero_image_url              VARCHAR(512),
    content                     TEXT NOT NULL,
    comment_count               INTEGER NOT NULL DEFAULT 0,
    submitted_to_discovery      BOOLEAN NOT NULL DEFAULT 0,
    discovery_validation_errors TEXT,
    published_at                TEXT NOT NULL,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL
);
CREATE INDEX idx_news_posts_channel_published ON news_posts (channel_id, published_at);
CREATE INDEX idx_news_posts_published ON news_posts (published_at);

CREATE TABLE news_comments (
    id         TEXT NOT NULL PRIMARY KEY,
    post_id    TEXT NOT NULL REFERENCES news_posts (id) ON DELETE CASCADE,
    author_id  TEXT NOT NULL,
    content    TEXT NOT NULL,
    edited_at  TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_news_comments_post_id ON news_comments (post_id, id);

CREATE TABLE server_refresh_tokens (
    id         TEXT NOT NULL PRIMARY KEY,
    member_id  TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    jti        VARCHAR(64) NOT NULL UNIQUE,
    token_hash VARCHAR(64) NOT NULL UNIQUE, -- the unique index serves lookups by hash
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_server_refresh_tokens_member ON server_refresh_tokens (member_id);
CREATE INDEX idx_server_refresh_tokens_expires ON server_refresh_tokens (expires_at);
