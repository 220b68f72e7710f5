//! Diesel schema for SQLite, matching `migrations/sqlite/2026-11-26-000001_initial`.
//!
//! Kept column-for-column identical (names and order) to `schema_pg`; only the SQL types
//! differ: ids are UUID strings (`Text`), timestamps `TimestamptzSqlite`, JSON columns `Json`.
//! The FTS5 table `messages_fts` is deliberately not declared here: full-text search uses raw
//! SQL. SQL columns named `type` are declared as `type_`
//! (`#[sql_name = "type"]`), as `diesel print-schema` does.

diesel::table! {
    use diesel::sql_types::*;

    servers (id) {
        id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        icon_url -> Nullable<Text>,
        banner_url -> Nullable<Text>,
        address -> Nullable<Text>,
        admin_user_id -> Nullable<Text>,
        admin_identity_type -> Text,
        central_connected -> Bool,
        default_channel_id -> Nullable<Text>,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    server_config (server_id) {
        server_id -> Text,
        setup_completed -> Bool,
        allow_local_accounts -> Bool,
        require_invite -> Bool,
        allow_member_dms -> Bool,
        show_system_messages -> Bool,
        max_upload_size_bytes -> Integer,
        max_shared_storage_bytes -> BigInt,
        discoverable -> Bool,
        discovery_approved -> Bool,
        tags -> Json,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    custom_domains (server_id) {
        server_id -> Text,
        domain -> Text,
        status -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    local_users (id) {
        id -> Text,
        server_id -> Text,
        username -> Text,
        password_hash -> Text,
        display_name -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    cached_profiles (user_id) {
        user_id -> Text,
        username -> Text,
        discriminator -> Text,
        display_name -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        fetched_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    members (id) {
        id -> Text,
        server_id -> Text,
        user_id -> Text,
        identity_type -> Text,
        nickname -> Nullable<Text>,
        allow_dms -> Bool,
        token_version -> Integer,
        joined_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    roles (id) {
        id -> Text,
        server_id -> Text,
        name -> Text,
        color -> Nullable<Text>,
        permissions -> BigInt,
        position -> Integer,
        is_default -> Bool,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    member_roles (member_id, role_id) {
        member_id -> Text,
        role_id -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    categories (id) {
        id -> Text,
        server_id -> Text,
        name -> Text,
        position -> Integer,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    channels (id) {
        id -> Text,
        server_id -> Text,
        category_id -> Nullable<Text>,
        name -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        topic -> Nullable<Text>,
        position -> Integer,
        slowmode_seconds -> Integer,
        nsfw -> Bool,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    channel_permission_overrides (id) {
        id -> Text,
        channel_id -> Text,
        target_type -> Text,
        target_id -> Text,
        allow -> BigInt,
        deny -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    category_permission_overrides (id) {
        id -> Text,
        category_id -> Text,
        target_type -> Text,
        target_id -> Text,
        allow -> BigInt,
        deny -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    messages (id) {
        id -> Text,
        server_id -> Text,
        channel_id -> Text,
        author_id -> Text,
        content -> Nullable<Text>,
        #[sql_name = "type"]
        type_ -> SmallInt,
        reply_to -> Nullable<Text>,
        pinned -> Bool,
        deleted -> Bool,
        mention_everyone -> Bool,
        mention_roles -> Json,
        mention_users -> Json,
        webhook_id -> Nullable<Text>,
        webhook_name -> Nullable<Text>,
        webhook_avatar_url -> Nullable<Text>,
        edited_at -> Nullable<TimestamptzSqlite>,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    message_edits (id) {
        id -> Text,
        message_id -> Text,
        content -> Text,
        edited_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    attachments (id) {
        id -> Text,
        server_id -> Text,
        message_id -> Nullable<Text>,
        channel_id -> Nullable<Text>,
        uploader_id -> Text,
        filename -> Text,
        url -> Text,
        storage_key -> Text,
        content_type -> Text,
        size_bytes -> Integer,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    reactions (id) {
        id -> Text,
        message_id -> Text,
        user_id -> Text,
        emoji -> Text,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    read_states (user_id, channel_id) {
        user_id -> Text,
        channel_id -> Text,
        last_read_message_id -> Nullable<Text>,
        mention_count -> Integer,
        updated_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    invites (id) {
        id -> Text,
        server_id -> Text,
        code -> Text,
        created_by -> Text,
        max_uses -> Nullable<Integer>,
        use_count -> Integer,
        expires_at -> Nullable<TimestamptzSqlite>,
        revoked -> Bool,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    bans (id) {
        id -> Text,
        server_id -> Text,
        user_id -> Text,
        banned_by -> Text,
        reason -> Nullable<Text>,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    audit_log (id) {
        id -> Text,
        server_id -> Text,
        actor_id -> Text,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        details -> Nullable<Json>,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    dm_conversations (id) {
        id -> Text,
        server_id -> Text,
        user_a -> Text,
        user_b -> Text,
        last_message_at -> Nullable<TimestamptzSqlite>,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    dm_read_states (user_id, conversation_id) {
        user_id -> Text,
        conversation_id -> Text,
        last_read_message_id -> Nullable<Text>,
        updated_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    webhooks (id) {
        id -> Text,
        channel_id -> Text,
        name -> Text,
        avatar_url -> Nullable<Text>,
        token -> Text,
        created_by -> Text,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    page_contents (channel_id) {
        channel_id -> Text,
        content -> Text,
        banner_url -> Nullable<Text>,
        version -> Integer,
        edited_by -> Nullable<Text>,
        edited_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    page_revisions (id) {
        id -> Text,
        channel_id -> Text,
        content -> Text,
        version -> Integer,
        edited_by -> Text,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    shared_folders (id) {
        id -> Text,
        server_id -> Text,
        parent_id -> Nullable<Text>,
        name -> Text,
        created_by -> Text,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    shared_files (id) {
        id -> Text,
        server_id -> Text,
        folder_id -> Nullable<Text>,
        filename -> Text,
        url -> Text,
        storage_key -> Text,
        content_type -> Text,
        size_bytes -> Integer,
        uploaded_by -> Text,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    shared_item_permission_overrides (id) {
        id -> Text,
        server_id -> Text,
        item_type -> Text,
        item_id -> Text,
        target_type -> Text,
        target_id -> Text,
        allow -> BigInt,
        deny -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    activity_items (id) {
        id -> Text,
        user_id -> Text,
        server_id -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        actor_id -> Text,
        message_id -> Nullable<Text>,
        channel_id -> Nullable<Text>,
        conversation_id -> Nullable<Text>,
        content_preview -> Nullable<Text>,
        emoji -> Nullable<Text>,
        read -> Bool,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    news_posts (id) {
        id -> Text,
        channel_id -> Text,
        author_id -> Text,
        title -> Text,
        subtitle -> Nullable<Text>,
        hero_image_url -> Nullable<Text>,
        content -> Text,
        comment_count -> Integer,
        submitted_to_discovery -> Bool,
        discovery_validation_errors -> Nullable<Json>,
        published_at -> TimestamptzSqlite,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    news_comments (id) {
        id -> Text,
        post_id -> Text,
        author_id -> Text,
        content -> Text,
        edited_at -> Nullable<TimestamptzSqlite>,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    server_refresh_tokens (id) {
        id -> Text,
        member_id -> Text,
        jti -> Text,
        token_hash -> Text,
        expires_at -> TimestamptzSqlite,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    central_sync_state (server_id) {
        server_id -> Text,
        next_seq -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    central_outbox (server_id, seq) {
        server_id -> Text,
        seq -> BigInt,
        subject -> Text,
        path -> Text,
        body -> Text,
        attempts -> Integer,
        next_attempt_ms -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    relayed_events (id) {
        id -> BigInt,
        event -> Text,
    }
}

diesel::joinable!(server_config -> servers (server_id));
diesel::joinable!(custom_domains -> servers (server_id));
diesel::joinable!(local_users -> servers (server_id));
diesel::joinable!(members -> servers (server_id));
diesel::joinable!(roles -> servers (server_id));
diesel::joinable!(member_roles -> members (member_id));
diesel::joinable!(member_roles -> roles (role_id));
diesel::joinable!(categories -> servers (server_id));
diesel::joinable!(channels -> servers (server_id));
diesel::joinable!(channels -> categories (category_id));
diesel::joinable!(channel_permission_overrides -> channels (channel_id));
diesel::joinable!(category_permission_overrides -> categories (category_id));
diesel::joinable!(messages -> servers (server_id));
diesel::joinable!(message_edits -> messages (message_id));
diesel::joinable!(attachments -> servers (server_id));
diesel::joinable!(attachments -> messages (message_id));
diesel::joinable!(reactions -> messages (message_id));
diesel::joinable!(read_states -> channels (channel_id));
diesel::joinable!(invites -> servers (server_id));
diesel::joinable!(bans -> servers (server_id));
diesel::joinable!(audit_log -> servers (server_id));
diesel::joinable!(dm_conversations -> servers (server_id));
diesel::joinable!(dm_read_states -> dm_conversations (conversation_id));
diesel::joinable!(webhooks -> channels (channel_id));
diesel::joinable!(page_contents -> channels (channel_id));
diesel::joinable!(page_revisions -> channels (channel_id));
diesel::joinable!(shared_folders -> servers (server_id));
diesel::joinable!(shared_files -> servers (server_id));
diesel::joinable!(shared_files -> shared_folders (folder_id));
diesel::joinable!(shared_item_permission_overrides -> servers (server_id));
diesel::joinable!(activity_items -> servers (server_id));
diesel::joinable!(news_posts -> channels (channel_id));
diesel::joinable!(news_comments -> news_posts (post_id));
diesel::joinable!(server_refresh_tokens -> members (member_id));

diesel::allow_tables_to_appear_in_same_query!(
    servers,
    server_config,
    custom_domains,
    local_users,
    cached_profiles,
    members,
    roles,
    member_roles,
    categories,
    channels,
    channel_permission_overrides,
    category_permission_overrides,
    messages,
    message_edits,
    attachments,
    reactions,
    read_states,
    invites,
    bans,
    audit_log,
    dm_conversations,
    dm_read_states,
    webhooks,
    page_contents,
    page_revisions,
    shared_folders,
    shared_files,
    shared_item_permission_overrides,
    activity_items,
    news_posts,
    news_comments,
    server_refresh_tokens,
    central_sync_state,
    central_outbox,
);
