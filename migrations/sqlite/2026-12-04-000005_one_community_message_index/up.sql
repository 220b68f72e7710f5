-- A self-hosted server holds one community, so an index of messages by server_id sorts every
-- message under one key: no query reads it (every server-wide read starts from an id, a
-- channel or the attachments), yet each send wrote a page of it. PostgreSQL, holding many
-- communities, keeps its index.
DROP INDEX idx_messages_server;
