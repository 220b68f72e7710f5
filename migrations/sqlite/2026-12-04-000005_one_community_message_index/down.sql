CREATE INDEX idx_messages_server ON messages (server_id);
