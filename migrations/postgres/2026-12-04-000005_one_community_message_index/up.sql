-- SQLite drops its index of messages by server_id here (a self-hosted server holds one
-- community). PostgreSQL holds many and keeps it; this version exists so that both databases
-- stand at the same schema version (archives move between them).
SELECT 1;
