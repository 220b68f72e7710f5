-- The audit log and activity indexes PostgreSQL gets in this version (see its folder for the
-- measurements); search needs nothing here (FTS5).

-- auditlog.list by action, newest first, without reading every entry of the community.
CREATE INDEX idx_audit_log_server_action_id ON audit_log (server_id, action, id);

-- Unread activity counts: only the member's unread items. The stores write the condition as
-- `NOT read`, the index's own condition (a partial index serves a query whose WHERE implies it).
CREATE INDEX idx_activity_items_unread ON activity_items (server_id, user_id, type) WHERE NOT read;
-- activity.list, newest first by id.
CREATE INDEX idx_activity_items_server_user_id ON activity_items (server_id, user_id, id);
