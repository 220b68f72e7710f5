-- Indexes found missing at size (scripts/pgsize: 10,000 communities, 10M messages; the biggest
-- has 1.49M messages, 102k audit entries; p50 of 5 runs, before -> after).

-- search.search filters on server_id (and, given one, channel_id) beside the text: one GIN
-- over the three (btree_gin for the uuid columns) finds a community's matches without the
-- lossy bitmap of every community's. Common word, biggest community 1741 -> 208 ms (the rest
-- is ts_rank), medium 124 -> 9 ms; two words 154 -> 38 ms; one channel 1729 -> 92 ms. It
-- replaces the text-only GIN: every search names its server. (btree_gin is a trusted
-- extension: the database's owner may create it without being a superuser.)
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX idx_messages_server_channel_search ON messages USING gin (server_id, channel_id, search_vector);
DROP INDEX idx_messages_search;

-- auditlog.list by action, newest first: without it, every entry of the community is read to
-- find a rare (or never logged) action. 70 ms (232 ms cold) -> 0.02 ms.
CREATE INDEX idx_audit_log_server_action_id ON audit_log (server_id, action, id);

-- Unread activity (system.ready's counts by type, activity.unreadCount): only the unread
-- items of the member, index-only. Heaviest user (3.5k items) 2.6 -> 0.06 ms. The stores
-- write the condition as `NOT read`, not `read = $n`: the generic plan PostgreSQL switches to
-- after five executions of a prepared statement cannot use a partial index for a parameter.
CREATE INDEX idx_activity_items_unread ON activity_items (server_id, user_id, type) WHERE NOT read;
-- activity.list, newest first by id: the newest 30 instead of sorting all of the member's
-- items. Heaviest user 1.8 -> 0.014 ms.
CREATE INDEX idx_activity_items_server_user_id ON activity_items (server_id, user_id, id);
