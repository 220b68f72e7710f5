DROP INDEX idx_messages_pinned;
CREATE INDEX idx_messages_reply_to ON messages (reply_to);
CREATE INDEX idx_messages_channel_pinned ON messages (channel_id, pinned);
