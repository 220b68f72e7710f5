-- The hot read queries of ecto-server on PostgreSQL, as diesel generates them (its $n binds are
-- psql variables here; diesel binds `false`, limits and ids as parameters too), against a
-- database filled by fill.sql.
--
--   psql -h 127.0.0.1 -U postgres -d ecto_size -v target=big -f scripts/pgsize/queries.sql
--   psql ... -v target=small -v explain='EXPLAIN (ANALYZE, BUFFERS)' -f scripts/pgsize/queries.sql
--
-- target: big (c1.size.test, the biggest community), medium (c50) or small (c5000), or set
-- -v address=... ; every other parameter is derived from it and can be set with -v too.
-- Each query is preceded by `\echo @Qnn` (explain.sh uses it) and a comment naming the
-- procedure and where the code is (adapters/sql/src unless said otherwise).
\set ON_ERROR_STOP on
\pset pager off

\if :{?explain}
\else
\set explain ''
\endif
\if :{?target}
\else
\set target big
\endif
\if :{?address}
\else
SELECT CASE :'target' WHEN 'big' THEN 'c1' WHEN 'medium' THEN 'c50' ELSE 'c5000' END || '.size.test' AS address \gset
\endif

-- The server, its general channel (its busiest), a member who is not the owner, and the owner.
SELECT id AS server_id, default_channel_id AS default_channel, admin_user_id AS owner_id
FROM servers WHERE address = :'address' \gset
\if :{?channel_id}
\else
\set channel_id :default_channel
\endif
\if :{?user_id}
\else
SELECT user_id, id AS member_id FROM members WHERE server_id = :'server_id'
ORDER BY id OFFSET (SELECT count(*) / 3 FROM members WHERE server_id = :'server_id') LIMIT 1 \gset
\endif
\if :{?member_id}
\else
SELECT id AS member_id FROM members WHERE server_id = :'server_id' AND user_id = :'user_id' \gset
\endif
-- Cursors: ~10 pages back, and a deep page (10% from the channel's start); in a small
-- channel, its middle. (The nil uuid where there is nothing: the query finds nothing.)
SELECT count(*) AS channel_count FROM messages WHERE channel_id = :'channel_id' \gset
SELECT coalesce((SELECT id FROM messages WHERE channel_id = :'channel_id' ORDER BY id DESC
                 OFFSET least(500, :channel_count / 2) LIMIT 1), '00000000-0000-0000-0000-000000000000') AS cursor_recent,
       coalesce((SELECT id FROM messages WHERE channel_id = :'channel_id' ORDER BY id ASC
                 OFFSET :channel_count / 10 LIMIT 1), '00000000-0000-0000-0000-000000000000') AS cursor_deep \gset
-- What the page's follow-up lookups get: the newest page's message ids and authors.
SELECT coalesce('{' || string_agg(id::text, ',') || '}', '{}') AS page_ids,
       coalesce('{' || string_agg(DISTINCT author_id::text, ',') || '}', '{}') AS page_authors
FROM (SELECT id, author_id FROM messages WHERE channel_id = :'channel_id' AND NOT deleted
      ORDER BY id DESC LIMIT 51) p \gset
-- search.search is given the channels the caller can read, as a JSON array.
SELECT coalesce(jsonb_agg(c.id), '[]')::text AS readable
FROM channels c WHERE c.server_id = :'server_id' AND c.type = 'text' \gset
SELECT coalesce('{' || string_agg(DISTINCT actor_id::text, ',') || '}', '{}') AS audit_actors
FROM (SELECT actor_id FROM audit_log WHERE server_id = :'server_id' ORDER BY id DESC LIMIT 51) a \gset
SELECT coalesce((SELECT id FROM audit_log WHERE server_id = :'server_id' ORDER BY id DESC
                 OFFSET least(1000, (SELECT count(*) / 2 FROM audit_log WHERE server_id = :'server_id')) LIMIT 1),
                '00000000-0000-0000-0000-000000000000') AS audit_cursor \gset
\if :{?q_common}
\else
\set q_common 'game'
\endif
\if :{?q_two}
\else
\set q_two 'deploy server'
\endif
\if :{?q_rare}
\else
\set q_rare 'zusarumel'
\endif
\echo target=:target server=:server_id channel=:channel_id user=:user_id

-------------------------------------------------------------------------------------------
-- messages.list: src/usecases/messages.rs:23 -> usecases/base/views.rs:150 (page) ->
-- MessageStore::page, messages.rs:100 (query at :108). Limit is limit + 1 (51).
-------------------------------------------------------------------------------------------
\echo @Q01 messages.list latest page
-- messages.list (Cursor::Latest) / system.ready initial_messages: messages.rs:108-126
:explain SELECT "messages"."id", "messages"."server_id", "messages"."channel_id", "messages"."author_id", "messages"."content", "messages"."type", "messages"."reply_to", "messages"."pinned", "messages"."deleted", "messages"."mention_everyone", "messages"."mention_roles", "messages"."mention_users", "messages"."webhook_id", "messages"."webhook_name", "messages"."webhook_avatar_url", "messages"."edited_at", "messages"."created_at"
FROM "messages" WHERE "messages"."channel_id" = :'channel_id' AND "messages"."deleted" = false
ORDER BY "messages"."id" DESC LIMIT 51;

\echo @Q02 messages.list before (10 pages back)
-- messages.list (Cursor::Before): messages.rs:108-126
:explain SELECT "messages"."id", "messages"."server_id", "messages"."channel_id", "messages"."author_id", "messages"."content", "messages"."type", "messages"."reply_to", "messages"."pinned", "messages"."deleted", "messages"."mention_everyone", "messages"."mention_roles", "messages"."mention_users", "messages"."webhook_id", "messages"."webhook_name", "messages"."webhook_avatar_url", "messages"."edited_at", "messages"."created_at"
FROM "messages" WHERE "messages"."channel_id" = :'channel_id' AND "messages"."deleted" = false
  AND "messages"."id" < :'cursor_recent'
ORDER BY "messages"."id" DESC LIMIT 51;

\echo @Q03 messages.list before (deep page)
-- messages.list (Cursor::Before), 90% of the channel back: messages.rs:108-126
:explain SELECT "messages"."id", "messages"."server_id", "messages"."channel_id", "messages"."author_id", "messages"."content", "messages"."type", "messages"."reply_to", "messages"."pinned", "messages"."deleted", "messages"."mention_everyone", "messages"."mention_roles", "messages"."mention_users", "messages"."webhook_id", "messages"."webhook_name", "messages"."webhook_avatar_url", "messages"."edited_at", "messages"."created_at"
FROM "messages" WHERE "messages"."channel_id" = :'channel_id' AND "messages"."deleted" = false
  AND "messages"."id" < :'cursor_deep'
ORDER BY "messages"."id" DESC LIMIT 51;

\echo @Q04 messages.list after (deep page, forward)
-- messages.list (Cursor::After): messages.rs:108-126
:explain SELECT "messages"."id", "messages"."server_id", "messages"."channel_id", "messages"."author_id", "messages"."content", "messages"."type", "messages"."reply_to", "messages"."pinned", "messages"."deleted", "messages"."mention_everyone", "messages"."mention_roles", "messages"."mention_users", "messages"."webhook_id", "messages"."webhook_name", "messages"."webhook_avatar_url", "messages"."edited_at", "messages"."created_at"
FROM "messages" WHERE "messages"."channel_id" = :'channel_id' AND "messages"."deleted" = false
  AND "messages"."id" > :'cursor_deep'
ORDER BY "messages"."id" ASC LIMIT 51;

\echo @Q05 messages.list pinned_only
-- messages.list (pinned_only): messages.rs:108-116 (bare `pinned`, for idx_messages_pinned)
:explain SELECT "messages"."id", "messages"."server_id", "messages"."channel_id", "messages"."author_id", "messages"."content", "messages"."type", "messages"."reply_to", "messages"."pinned", "messages"."deleted", "messages"."mention_everyone", "messages"."mention_roles", "messages"."mention_users", "messages"."webhook_id", "messages"."webhook_name", "messages"."webhook_avatar_url", "messages"."edited_at", "messages"."created_at"
FROM "messages" WHERE "messages"."channel_id" = :'channel_id' AND "messages"."deleted" = false
  AND "messages"."pinned"
ORDER BY "messages"."id" DESC LIMIT 51;

\echo @Q06 page view: attachments of the page
-- views::build (usecases/base/views.rs:62) -> MessageStore::attachments, messages.rs:418
:explain SELECT "attachments"."id", "attachments"."message_id", "attachments"."filename", "attachments"."url", "attachments"."content_type", "attachments"."size_bytes"
FROM "attachments" WHERE "attachments"."message_id" = ANY(:'page_ids'::uuid[])
ORDER BY "attachments"."id" ASC;

\echo @Q07 page view: reactions of the page
-- views::build (views.rs:69) -> MessageStore::reactions, messages.rs:393
:explain SELECT "reactions"."message_id", "reactions"."user_id", "reactions"."emoji"
FROM "reactions" WHERE "reactions"."message_id" = ANY(:'page_ids'::uuid[])
ORDER BY "reactions"."created_at" ASC, "reactions"."id" ASC;

\echo @Q08 page view: authors (local accounts)
-- views::build (views.rs:54) -> MessageStore::authors, messages.rs:479 (also names.rs:23)
:explain SELECT "local_users"."id", "local_users"."username", "local_users"."display_name", "local_users"."avatar_url"
FROM "local_users" WHERE "local_users"."server_id" = :'server_id' AND "local_users"."id" = ANY(:'page_authors'::uuid[]);

\echo @Q09 page view: authors (central profiles)
-- MessageStore::authors, messages.rs:491 (also names.rs:34, roles.rs:287)
:explain SELECT "cached_profiles"."user_id", "cached_profiles"."username", "cached_profiles"."display_name", "cached_profiles"."avatar_url"
FROM "cached_profiles" WHERE "cached_profiles"."user_id" = ANY(:'page_authors'::uuid[]);

\echo @Q10 page view: authors (nicknames)
-- MessageStore::authors, messages.rs:502
:explain SELECT "members"."user_id", "members"."nickname"
FROM "members" WHERE "members"."server_id" = :'server_id' AND "members"."user_id" = ANY(:'page_authors'::uuid[]);

-------------------------------------------------------------------------------------------
-- search.search: src/usecases/search.rs:27 -> SearchStore::search, search.rs:64 (PG_SEARCH,
-- search.rs:21); then MessageStore::get (messages.rs:141) for each id, then the page view.
-------------------------------------------------------------------------------------------
\echo @Q11 search.search common word
-- search.search, common word ($1), no filters, limit 25 + 1: search.rs:21
:explain SELECT m.id::text AS id FROM messages m
WHERE m.server_id = :'server_id'::uuid AND m.deleted = false
  AND m.search_vector @@ plainto_tsquery('english', :'q_common')
  AND (m.channel_id IN (SELECT value::uuid FROM jsonb_array_elements_text(:'readable'::jsonb))
       OR m.channel_id IN (SELECT d.id FROM dm_conversations d
                           WHERE d.server_id = :'server_id'::uuid AND (d.user_a = :'user_id'::uuid OR d.user_b = :'user_id'::uuid)))
  AND (NULL::uuid IS NULL OR m.channel_id = NULL::uuid)
  AND (NULL::uuid IS NULL OR m.author_id = NULL::uuid)
  AND (NULL::uuid IS NULL OR m.id < NULL::uuid)
  AND (NULL::uuid IS NULL OR m.id > NULL::uuid)
  AND (NOT false OR EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id))
  AND (NOT false OR m.content LIKE '%http://%' OR m.content LIKE '%https://%')
ORDER BY ts_rank(m.search_vector, plainto_tsquery('english', :'q_common')) DESC, m.id DESC
LIMIT 26;

\echo @Q12 search.search two words
-- search.search, two words: search.rs:21
:explain SELECT m.id::text AS id FROM messages m
WHERE m.server_id = :'server_id'::uuid AND m.deleted = false
  AND m.search_vector @@ plainto_tsquery('english', :'q_two')
  AND (m.channel_id IN (SELECT value::uuid FROM jsonb_array_elements_text(:'readable'::jsonb))
       OR m.channel_id IN (SELECT d.id FROM dm_conversations d
                           WHERE d.server_id = :'server_id'::uuid AND (d.user_a = :'user_id'::uuid OR d.user_b = :'user_id'::uuid)))
  AND (NULL::uuid IS NULL OR m.channel_id = NULL::uuid)
  AND (NULL::uuid IS NULL OR m.author_id = NULL::uuid)
  AND (NULL::uuid IS NULL OR m.id < NULL::uuid)
  AND (NULL::uuid IS NULL OR m.id > NULL::uuid)
  AND (NOT false OR EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id))
  AND (NOT false OR m.content LIKE '%http://%' OR m.content LIKE '%https://%')
ORDER BY ts_rank(m.search_vector, plainto_tsquery('english', :'q_two')) DESC, m.id DESC
LIMIT 26;

\echo @Q13 search.search rare word
-- search.search, rare word: search.rs:21
:explain SELECT m.id::text AS id FROM messages m
WHERE m.server_id = :'server_id'::uuid AND m.deleted = false
  AND m.search_vector @@ plainto_tsquery('english', :'q_rare')
  AND (m.channel_id IN (SELECT value::uuid FROM jsonb_array_elements_text(:'readable'::jsonb))
       OR m.channel_id IN (SELECT d.id FROM dm_conversations d
                           WHERE d.server_id = :'server_id'::uuid AND (d.user_a = :'user_id'::uuid OR d.user_b = :'user_id'::uuid)))
  AND (NULL::uuid IS NULL OR m.channel_id = NULL::uuid)
  AND (NULL::uuid IS NULL OR m.author_id = NULL::uuid)
  AND (NULL::uuid IS NULL OR m.id < NULL::uuid)
  AND (NULL::uuid IS NULL OR m.id > NULL::uuid)
  AND (NOT false OR EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id))
  AND (NOT false OR m.content LIKE '%http://%' OR m.content LIKE '%https://%')
ORDER BY ts_rank(m.search_vector, plainto_tsquery('english', :'q_rare')) DESC, m.id DESC
LIMIT 26;

\echo @Q14 search.search common word in one channel
-- search.search with channel_id ($5): search.rs:21
:explain SELECT m.id::text AS id FROM messages m
WHERE m.server_id = :'server_id'::uuid AND m.deleted = false
  AND m.search_vector @@ plainto_tsquery('english', :'q_common')
  AND (m.channel_id IN (SELECT value::uuid FROM jsonb_array_elements_text(:'readable'::jsonb))
       OR m.channel_id IN (SELECT d.id FROM dm_conversations d
                           WHERE d.server_id = :'server_id'::uuid AND (d.user_a = :'user_id'::uuid OR d.user_b = :'user_id'::uuid)))
  AND (:'channel_id'::uuid IS NULL OR m.channel_id = :'channel_id'::uuid)
  AND (NULL::uuid IS NULL OR m.author_id = NULL::uuid)
  AND (NULL::uuid IS NULL OR m.id < NULL::uuid)
  AND (NULL::uuid IS NULL OR m.id > NULL::uuid)
  AND (NOT false OR EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id))
  AND (NOT false OR m.content LIKE '%http://%' OR m.content LIKE '%https://%')
ORDER BY ts_rank(m.search_vector, plainto_tsquery('english', :'q_common')) DESC, m.id DESC
LIMIT 26;

\echo @Q15 search hit: MessageStore::get
-- search.search, per hit: MessageStore::get, messages.rs:141 (diesel .first() = LIMIT $3)
:explain SELECT "messages"."id", "messages"."server_id", "messages"."channel_id", "messages"."author_id", "messages"."content", "messages"."type", "messages"."reply_to", "messages"."pinned", "messages"."deleted", "messages"."mention_everyone", "messages"."mention_roles", "messages"."mention_users", "messages"."webhook_id", "messages"."webhook_name", "messages"."webhook_avatar_url", "messages"."edited_at", "messages"."created_at"
FROM "messages" WHERE "messages"."server_id" = :'server_id' AND "messages"."id" = :'cursor_recent'
LIMIT 1;

-------------------------------------------------------------------------------------------
-- system.ready: src/usecases/gateway.rs:126 (what identify loads; each memoized per process
-- except the member's own reads). Routing first: ServerStore::find_by_address, servers.rs:94.
-------------------------------------------------------------------------------------------
\echo @Q16 ready: server by address
-- every request: ServerStore::find_by_address, servers.rs:93-97
:explain SELECT "servers"."id", "servers"."name", "servers"."description", "servers"."icon_url", "servers"."banner_url", "servers"."address", "servers"."admin_user_id", "servers"."admin_identity_type", "servers"."central_connected", "servers"."default_channel_id", "servers"."created_at", "servers"."updated_at"
FROM "servers" WHERE "servers"."address" = :'address' LIMIT 1;

\echo @Q17 ready: membership
-- identify/Perms::load -> loaders::membership (usecases/base/loaders.rs:14) -> MemberStore::get, members.rs:184
:explain SELECT "members"."id", "members"."server_id", "members"."user_id", "members"."identity_type", "members"."nickname", "members"."allow_dms", "members"."token_version", "members"."joined_at"
FROM "members" WHERE "members"."server_id" = :'server_id' AND "members"."user_id" = :'user_id' LIMIT 1;

\echo @Q18 ready: member role ids
-- loaders::membership -> MemberStore::role_ids, members.rs:197
:explain SELECT "roles"."id" FROM ("member_roles" INNER JOIN "roles" ON "member_roles"."role_id" = "roles"."id")
WHERE "member_roles"."member_id" = :'member_id'
ORDER BY "roles"."is_default" DESC, "roles"."position" DESC, "roles"."id" ASC;

\echo @Q19 ready: roles
-- Perms::load (usecases/base/access.rs:84) -> StructureStore::permission_data, structure.rs:49
:explain SELECT "roles"."id", "roles"."server_id", "roles"."name", "roles"."color", "roles"."permissions", "roles"."position", "roles"."is_default", "roles"."created_at"
FROM "roles" WHERE "roles"."server_id" = :'server_id'
ORDER BY "roles"."position" DESC, "roles"."id" ASC;

\echo @Q20 ready: channel overrides
-- StructureStore::permission_data, structure.rs:55-62
:explain SELECT "channel_permission_overrides"."id", "channel_permission_overrides"."channel_id", "channel_permission_overrides"."target_type", "channel_permission_overrides"."target_id", "channel_permission_overrides"."allow", "channel_permission_overrides"."deny"
FROM "channel_permission_overrides"
WHERE "channel_permission_overrides"."channel_id" IN (SELECT "channels"."id" FROM "channels" WHERE "channels"."server_id" = :'server_id');

\echo @Q21 ready: category overrides
-- StructureStore::permission_data, structure.rs:63-71
:explain SELECT "category_permission_overrides"."id", "category_permission_overrides"."category_id", "category_permission_overrides"."target_type", "category_permission_overrides"."target_id", "category_permission_overrides"."allow", "category_permission_overrides"."deny"
FROM "category_permission_overrides"
WHERE "category_permission_overrides"."category_id" IN (SELECT "categories"."id" FROM "categories" WHERE "categories"."server_id" = :'server_id');

\echo @Q22 ready: channels
-- readable_channels (access.rs:318) -> loaders::channels -> StructureStore::channels, structure.rs:83
:explain SELECT "channels"."id", "channels"."server_id", "channels"."category_id", "channels"."name", "channels"."type", "channels"."topic", "channels"."position", "channels"."slowmode_seconds", "channels"."nsfw", "channels"."created_at", "channels"."updated_at"
FROM "channels" WHERE "channels"."server_id" = :'server_id'
ORDER BY "channels"."position" ASC, "channels"."id" ASC;

\echo @Q23 ready: categories
-- loaders::categories -> StructureStore::categories, structure.rs:108
:explain SELECT "categories"."id", "categories"."server_id", "categories"."name", "categories"."position", "categories"."created_at"
FROM "categories" WHERE "categories"."server_id" = :'server_id'
ORDER BY "categories"."position" ASC, "categories"."id" ASC;

\echo @Q24 ready: server config
-- loaders::config -> ServerStore::config, servers.rs:126
:explain SELECT "server_config"."server_id", "server_config"."setup_completed", "server_config"."allow_local_accounts", "server_config"."require_invite", "server_config"."allow_member_dms", "server_config"."show_system_messages", "server_config"."max_upload_size_bytes", "server_config"."max_shared_storage_bytes", "server_config"."discoverable", "server_config"."discovery_approved", "server_config"."tags", "server_config"."created_at", "server_config"."updated_at"
FROM "server_config" WHERE "server_config"."server_id" = :'server_id' LIMIT 1;

\echo @Q25 ready: self member view roles
-- loaders::member_view -> ModerationStore::member_views, roles.rs:275
:explain SELECT "member_roles"."member_id", "roles"."id" FROM ("member_roles" INNER JOIN "roles" ON "member_roles"."role_id" = "roles"."id")
WHERE "member_roles"."member_id" = ANY(ARRAY[:'member_id']::uuid[])
ORDER BY "roles"."is_default" DESC, "roles"."position" DESC, "roles"."id" ASC;

\echo @Q26 ready: unread activity by type
-- gateway.rs:149 -> ActivityStore::unread_by_type, activity.rs:132
:explain SELECT "activity_items"."type", COUNT(*) FROM "activity_items"
WHERE "activity_items"."server_id" = :'server_id' AND "activity_items"."user_id" = :'user_id' AND NOT "activity_items"."read"
GROUP BY "activity_items"."type";

\echo @Q27 ready: read states
-- gateway.rs:208 (also read_state.list) -> MessageStore::read_states, messages.rs:603
:explain SELECT "read_states"."user_id", "read_states"."channel_id", "read_states"."last_read_message_id", "read_states"."mention_count"
FROM ("read_states" INNER JOIN "channels" ON "read_states"."channel_id" = "channels"."id")
WHERE "channels"."server_id" = :'server_id' AND "read_states"."user_id" = :'user_id';

-------------------------------------------------------------------------------------------
-- Unread counts: activity.unreadCount (src/usecases/activity.rs:84) and serverDms.list
-- (src/usecases/dms.rs:123 -> DmStore::conversations, dms.rs:166: per conversation, the last
-- message, the read marker and the unread count).
-------------------------------------------------------------------------------------------
\echo @Q28 activity.unreadCount
-- ActivityStore::unread_count, activity.rs:119
:explain SELECT COUNT(*) FROM "activity_items"
WHERE "activity_items"."server_id" = :'server_id' AND "activity_items"."user_id" = :'user_id' AND NOT "activity_items"."read";

\echo @Q29 activity.list (newest 30)
-- activity.list (src/usecases/activity.rs:23) -> ActivityStore::list, activity.rs:59
:explain SELECT "activity_items"."id", "activity_items"."user_id", "activity_items"."server_id", "activity_items"."type", "activity_items"."actor_id", "activity_items"."message_id", "activity_items"."channel_id", "activity_items"."conversation_id", "activity_items"."content_preview", "activity_items"."emoji", "activity_items"."read", "activity_items"."created_at"
FROM "activity_items" WHERE "activity_items"."server_id" = :'server_id' AND "activity_items"."user_id" = :'user_id'
ORDER BY "activity_items"."id" DESC LIMIT 30;

\echo @Q30 serverDms.list conversations
-- DmStore::conversations, dms.rs:173-185
:explain SELECT "dm_conversations"."id", "dm_conversations"."server_id", "dm_conversations"."user_a", "dm_conversations"."user_b", "dm_conversations"."last_message_at", "dm_conversations"."created_at"
FROM "dm_conversations" WHERE "dm_conversations"."server_id" = :'server_id'
  AND ("dm_conversations"."user_a" = :'user_id' OR "dm_conversations"."user_b" = :'user_id')
ORDER BY "dm_conversations"."last_message_at" DESC, "dm_conversations"."id" DESC LIMIT 50;

-- The busiest DM conversation of the server, for the per-conversation queries.
SELECT coalesce(d.id, '00000000-0000-0000-0000-000000000000') AS dm_id,
       coalesce(d.user_a, '00000000-0000-0000-0000-000000000000') AS dm_user,
       coalesce(d.user_b, '00000000-0000-0000-0000-000000000000') AS dm_peer,
       coalesce((SELECT last_read_message_id FROM dm_read_states r WHERE r.user_id = d.user_a AND r.conversation_id = d.id),
                '00000000-0000-0000-0000-000000000000') AS dm_marker
FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT * FROM dm_conversations d WHERE d.server_id = :'server_id'
                                       ORDER BY d.last_message_at DESC NULLS LAST LIMIT 1) d ON true \gset

\echo @Q31 serverDms.list last message
-- DmStore::conversations, dms.rs:193-201 (once per conversation)
:explain SELECT "messages"."id", "messages"."server_id", "messages"."channel_id", "messages"."author_id", "messages"."content", "messages"."type", "messages"."reply_to", "messages"."pinned", "messages"."deleted", "messages"."mention_everyone", "messages"."mention_roles", "messages"."mention_users", "messages"."webhook_id", "messages"."webhook_name", "messages"."webhook_avatar_url", "messages"."edited_at", "messages"."created_at"
FROM "messages" WHERE "messages"."channel_id" = :'dm_id' AND "messages"."deleted" = false
ORDER BY "messages"."id" DESC LIMIT 1;

\echo @Q32 serverDms.list read marker
-- DmStore::conversations, dms.rs:202-210
:explain SELECT "dm_read_states"."last_read_message_id" FROM "dm_read_states"
WHERE "dm_read_states"."user_id" = :'dm_user' AND "dm_read_states"."conversation_id" = :'dm_id' LIMIT 1;

\echo @Q33 serverDms.list unread count
-- DmStore::conversations, dms.rs:211-224 (with a read marker; without one it counts them all)
:explain SELECT COUNT(*) FROM "messages"
WHERE "messages"."channel_id" = :'dm_id' AND "messages"."author_id" = :'dm_peer' AND "messages"."deleted" = false
  AND "messages"."id" > :'dm_marker';

\echo @Q34 serverDms.list unread count, never read
-- DmStore::conversations, dms.rs:211-224 (no read marker)
:explain SELECT COUNT(*) FROM "messages"
WHERE "messages"."channel_id" = :'dm_id' AND "messages"."author_id" = :'dm_peer' AND "messages"."deleted" = false;

-------------------------------------------------------------------------------------------
-- auditlog.list: src/usecases/audit.rs:17 -> StructureStore::audit_log, structure.rs:561
-- (query at :563), limit 50 + 1; then names::usernames (names.rs:13) for the actors.
-------------------------------------------------------------------------------------------
\echo @Q35 auditlog.list newest page
-- structure.rs:563-579
:explain SELECT "audit_log"."id", "audit_log"."server_id", "audit_log"."actor_id", "audit_log"."action", "audit_log"."target_type", "audit_log"."target_id", "audit_log"."details", "audit_log"."created_at"
FROM "audit_log" WHERE "audit_log"."server_id" = :'server_id'
ORDER BY "audit_log"."id" DESC LIMIT 51;

\echo @Q36 auditlog.list before (20 pages back)
-- structure.rs:563-579 with before
:explain SELECT "audit_log"."id", "audit_log"."server_id", "audit_log"."actor_id", "audit_log"."action", "audit_log"."target_type", "audit_log"."target_id", "audit_log"."details", "audit_log"."created_at"
FROM "audit_log" WHERE "audit_log"."server_id" = :'server_id' AND "audit_log"."id" < :'audit_cursor'
ORDER BY "audit_log"."id" DESC LIMIT 51;

\echo @Q37 auditlog.list by action (rare action)
-- structure.rs:563-579 with action
:explain SELECT "audit_log"."id", "audit_log"."server_id", "audit_log"."actor_id", "audit_log"."action", "audit_log"."target_type", "audit_log"."target_id", "audit_log"."details", "audit_log"."created_at"
FROM "audit_log" WHERE "audit_log"."server_id" = :'server_id' AND "audit_log"."action" = 'server.update'
ORDER BY "audit_log"."id" DESC LIMIT 51;

\echo @Q38 auditlog.list by actor
-- structure.rs:563-579 with actor_id
:explain SELECT "audit_log"."id", "audit_log"."server_id", "audit_log"."actor_id", "audit_log"."action", "audit_log"."target_type", "audit_log"."target_id", "audit_log"."details", "audit_log"."created_at"
FROM "audit_log" WHERE "audit_log"."server_id" = :'server_id' AND "audit_log"."actor_id" = :'owner_id'
ORDER BY "audit_log"."id" DESC LIMIT 51;

\echo @Q39 auditlog.list actor names
-- names::usernames, names.rs:23 (local accounts; cached profiles as Q09)
:explain SELECT "local_users"."id", "local_users"."username"
FROM "local_users" WHERE "local_users"."server_id" = :'server_id' AND "local_users"."id" = ANY(:'audit_actors'::uuid[]);

-------------------------------------------------------------------------------------------
-- Proposed rewrite of messages.list (messages.rs:108-126), not what the code runs today:
-- the page's ids from the partial index idx_messages_channel_live (index-only), then the
-- rows. The plain query walks messages_pkey backwards when the channel holds more than a
-- few % of all messages, which is slow when that channel has gone quiet; this cannot.
-------------------------------------------------------------------------------------------
\echo @Q40 messages.list latest page (rewrite)
:explain SELECT "messages"."id", "messages"."server_id", "messages"."channel_id", "messages"."author_id", "messages"."content", "messages"."type", "messages"."reply_to", "messages"."pinned", "messages"."deleted", "messages"."mention_everyone", "messages"."mention_roles", "messages"."mention_users", "messages"."webhook_id", "messages"."webhook_name", "messages"."webhook_avatar_url", "messages"."edited_at", "messages"."created_at"
FROM "messages" WHERE "messages"."id" IN (
  SELECT "messages"."id" FROM "messages"
  WHERE "messages"."channel_id" = :'channel_id' AND "messages"."deleted" = false
  ORDER BY "messages"."id" DESC LIMIT 51)
ORDER BY "messages"."id" DESC;

\echo @Q41 messages.list before, deep page (rewrite)
:explain SELECT "messages"."id", "messages"."server_id", "messages"."channel_id", "messages"."author_id", "messages"."content", "messages"."type", "messages"."reply_to", "messages"."pinned", "messages"."deleted", "messages"."mention_everyone", "messages"."mention_roles", "messages"."mention_users", "messages"."webhook_id", "messages"."webhook_name", "messages"."webhook_avatar_url", "messages"."edited_at", "messages"."created_at"
FROM "messages" WHERE "messages"."id" IN (
  SELECT "messages"."id" FROM "messages"
  WHERE "messages"."channel_id" = :'channel_id' AND "messages"."deleted" = false
    AND "messages"."id" < :'cursor_deep'
  ORDER BY "messages"."id" DESC LIMIT 51)
ORDER BY "messages"."id" DESC;

\echo @Q42 auditlog.list by an action the server never logged
-- structure.rs:563-579 with action: the worst case (every entry of the server is read
-- without idx_audit_log_server_action_id)
:explain SELECT "audit_log"."id", "audit_log"."server_id", "audit_log"."actor_id", "audit_log"."action", "audit_log"."target_type", "audit_log"."target_id", "audit_log"."details", "audit_log"."created_at"
FROM "audit_log" WHERE "audit_log"."server_id" = :'server_id' AND "audit_log"."action" = 'shared_file.delete'
ORDER BY "audit_log"."id" DESC LIMIT 51;
