-- SQLite indexes messages for search in batches from this migration on (see its folder).
-- PostgreSQL's search vector is a generated column of the row: nothing changes here.
SELECT 1;
