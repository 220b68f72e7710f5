-- Every message insert wrote a page of each index on messages. Two of them served little:
-- pins are few, so the pinned index holds only them (messages.list with pinned_only filters
-- on the bare column, which implies the index's condition); nothing looks messages up by
-- reply_to, so that index goes.
DROP INDEX idx_messages_channel_pinned;
DROP INDEX idx_messages_reply_to;
CREATE INDEX idx_messages_pinned ON messages (channel_id, id) WHERE pinned;
