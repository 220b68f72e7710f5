//! Diesel schema for PostgreSQL, matching `migrations/postgres/2026-11-26-000001_initial`.
//!
//! Kept column-for-column identical (names and order) to `schema_sqlite`; only the SQL types
//! differ. `messages.search_vector` (a generated `tsvector`) is deliberately not declared here:
//! full-text search uses raw SQL. SQL columns named `type` are declared as `type_`
//! (`#[sql_name = "type"]`), as `diesel print-schema` does.

diesel::table! {
    use diesel::sql_types::*;

    servers (id) {
        id -> Uuid,
        name -> Varchar,
        description -> Nullable<Text>,
        icon_url -> Nullable<Varchar>,
        banner_url -> Nullable<Varchar>,
        address -> Nullable<Varchar>,
        admin_user_id -> Nullable<Uuid>,
        admin_identity_type -> Varchar,
        central_connected -> Bool,
        default_channel_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    server_config (server_id) {
        server_id -> Uuid,
        setup_completed -> Bool,
        allow_local_accounts -> Bool,
        require_invite -> Bool,
        allow_member_dms -> Bool,
        show_system_messages -> Bool,
        max_upload_size_bytes -> Integer,
        max_shared_storage_bytes -> BigInt,
        discoverable -> Bool,
        discovery_approved -> Bool,
        tags -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    custom_domains (server_id) {
        server_id -> Uuid,
        domain -> Varchar,
        status -> Varchar,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    local_users (id) {
        id -> Uuid,
        server_id -> Uuid,
        username -> Varchar,
        password_hash -> Varchar,
        display_name -> Nullable<Varchar>,
        avatar_url -> Nullable<Varchar>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    cached_profiles (user_id) {
        user_id -> Uuid,
        username -> Varchar,
        discriminator -> Varchar,
        display_name -> Nullable<Varchar>,
        avatar_url -> Nullable<Varchar>,
        fetched_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    members (id) {
        id -> Uuid,
        server_id -> Uuid,
        user_id -> Uuid,
        identity_type -> Varchar,
        nickname -> Nullable<Varchar>,
        allow_dms -> Bool,
        token_version -> Integer,
        joined_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    roles (id) {
        id -> Uuid,
        server_id -> Uuid,
        name -> Varchar,
        color -> Nullable<Varchar>,
        permissions -> BigInt,
        position -> Integer,
        is_default -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    member_roles (member_id, role_id) {
        member_id -> Uuid,
        role_id -> Uuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    categories (id) {
        id -> Uuid,
        server_id -> Uuid,
        name -> Varchar,
        position -> Integer,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    channels (id) {
        id -> Uuid,
        server_id -> Uuid,
        category_id -> Nullable<Uuid>,
        name -> Varchar,
        #[sql_name = "type"]
        type_ -> Varchar,
        topic -> Nullable<Text>,
        position -> Integer,
        slowmode_seconds -> Integer,
        nsfw -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    channel_permission_overrides (id) {
        id -> Uuid,
        channel_id -> Uuid,
        target_type -> Varchar,
        target_id -> Uuid,
        allow -> BigInt,
        deny -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    category_permission_overrides (id) {
        id -> Uuid,
        category_id -> Uuid,
        target_type -> Varchar,
        target_id -> Uuid,
        allow -> BigInt,
        deny -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    messages (id) {
        id -> Uuid,
        server_id -> Uuid,
        channel_id -> Uuid,
        author_id -> Uuid,
        content -> Nullable<Text>,
        #[sql_name = "type"]
        type_ -> SmallInt,
        reply_to -> Nullable<Uuid>,
        pinned -> Bool,
        deleted -> Bool,
        mention_everyone -> Bool,
        mention_roles -> Jsonb,
        mention_users -> Jsonb,
        webhook_id -> Nullable<Uuid>,
        webhook_name -> Nullable<Varchar>,
        webhook_avatar_url -> Nullable<Varchar>,
        edited_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    message_edits (id) {
        id -> Uuid,
        message_id -> Uuid,
        content -> Text,
        edited_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    attachments (id) {
        id -> Uuid,
        server_id -> Uuid,
        message_id -> Nullable<Uuid>,
        channel_id -> Nullable<Uuid>,
        uploader_id -> Uuid,
        filename -> Varchar,
        url -> Varchar,
        storage_key -> Varchar,
        content_type -> Varchar,
        size_bytes -> Integer,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    reactions (id) {
        id -> Uuid,
        message_id -> Uuid,
        user_id -> Uuid,
        emoji -> Varchar,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    read_states (user_id, channel_id) {
        user_id -> Uuid,
        channel_id -> Uuid,
        last_read_message_id -> Nullable<Uuid>,
        mention_count -> Integer,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    invites (id) {
        id -> Uuid,
        server_id -> Uuid,
        code -> Varchar,
        created_by -> Uuid,
        max_uses -> Nullable<Integer>,
        use_count -> Integer,
        expires_at -> Nullable<Timestamptz>,
        revoked -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    bans (id) {
        id -> Uuid,
        server_id -> Uuid,
        user_id -> Uuid,
        banned_by -> Uuid,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    audit_log (id) {
        id -> Uuid,
        server_id -> Uuid,
        actor_id -> Uuid,
        action -> Varchar,
        target_type -> Nullable<Varchar>,
        target_id -> Nullable<Uuid>,
        details -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    dm_conversations (id) {
        id -> Uuid,
        server_id -> Uuid,
        user_a -> Uuid,
        user_b -> Uuid,
        last_message_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    dm_read_states (user_id, conversation_id) {
        user_id -> Uuid,
        conversation_id -> Uuid,
        last_read_message_id -> Nullable<Uuid>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    webhooks (id) {
        id -> Uuid,
        channel_id -> Uuid,
        name -> Text,
        avatar_url -> Nullable<Text>,
        token -> Text,
        created_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    page_contents (channel_id) {
        channel_id -> Uuid,
        content -> Text,
        banner_url -> Nullable<Varchar>,
        version -> Integer,
        edited_by -> Nullable<Uuid>,
        edited_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    page_revisions (id) {
        id -> Uuid,
        channel_id -> Uuid,
        content -> Text,
        version -> Integer,
        edited_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    shared_folders (id) {
        id -> Uuid,
        server_id -> Uuid,
        parent_id -> Nullable<Uuid>,
        name -> Varchar,
        created_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    shared_files (id) {
        id -> Uuid,
        server_id -> Uuid,
        folder_id -> Nullable<Uuid>,
        filename -> Varchar,
        url -> Varchar,
        storage_key -> Varchar,
        content_type -> Varchar,
        size_bytes -> Integer,
        uploaded_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    shared_item_permission_overrides (id) {
        id -> Uuid,
        server_id -> Uuid,
        item_type -> Varchar,
        item_id -> Uuid,
        target_type -> Varchar,
        target_id -> Uuid,
        allow -> BigInt,
        deny -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    activity_items (id) {
        id -> Uuid,
        user_id -> Uuid,
        server_id -> Uuid,
        #[sql_name = "type"]
        type_ -> Varchar,
        actor_id -> Uuid,
        message_id -> Nullable<Uuid>,
        channel_id -> Nullable<Uuid>,
        conversation_id -> Nullable<Uuid>,
        content_preview -> Nullable<Text>,
        emoji -> Nullable<Varchar>,
        read -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    news_posts (id) {
        id -> Uuid,
        channel_id -> Uuid,
        author_id -> Uuid,
        title -> Varchar,
        subtitle -> Nullable<Varchar>,
        hero_image_url -> Nullable<Varchar>,
        content -> Text,
        comment_count -> Integer,
        submitted_to_discovery -> Bool,
        discovery_validation_errors -> Nullable<Jsonb>,
        published_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    news_comments (id) {
        id -> Uuid,
        post_id -> Uuid,
        author_id -> Uuid,
        content -> Text,
        edited_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    server_refresh_tokens (id) {
        id -> Uuid,
        member_id -> Uuid,
        jti -> Varchar,
        token_hash -> Varchar,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    central_sync_state (server_id) {
        server_id -> Uuid,
        next_seq -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    central_outbox (server_id, seq) {
        server_id -> Uuid,
        seq -> BigInt,
        subject -> Text,
        path -> Text,
        body -> Text,
        attempts -> Integer,
        next_attempt_ms -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
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
