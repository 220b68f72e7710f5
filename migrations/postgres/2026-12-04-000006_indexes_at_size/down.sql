DROP INDEX idx_activity_items_server_user_id;
DROP INDEX idx_activity_items_unread;
DROP INDEX idx_audit_log_server_action_id;
CREATE INDEX idx_messages_search ON messages USING GIN (search_vector);
DROP INDEX idx_messages_server_channel_search;
-- Refused (RESTRICT) if something else has come to use btree_gin since.
DROP EXTENSION IF EXISTS btree_gin;
