-- SQLite drops its author index and its table of messages pending search here (see its
-- folder). PostgreSQL's search and indexes are its own and stay; this version exists so that
-- both databases stand at the same schema version (archives move between them).
SELECT 1;
