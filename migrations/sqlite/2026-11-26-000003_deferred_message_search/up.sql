-- Indexing a message for search wrote pages of the full-text index in the send's own commit
-- (FTS5 writes a segment per transaction), the largest part of a send's write. A send now only
-- notes the row in messages_fts_pending; the server indexes what is pending in one
-- transaction every 250 ms and before every search, so a search still finds every message
-- committed before it started.
CREATE TABLE messages_fts_pending (msg_rowid INTEGER NOT NULL PRIMARY KEY);

DROP TRIGGER messages_fts_ai;
DROP TRIGGER messages_fts_ad;
DROP TRIGGER messages_fts_au;

CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts_pending (msg_rowid) VALUES (new.rowid);
END;

-- An indexed row leaves the index; a row still pending is only forgotten.
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        SELECT 'delete', old.rowid, old.content
        WHERE NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE msg_rowid = old.rowid);
    DELETE FROM messages_fts_pending WHERE msg_rowid = old.rowid;
END;

-- A pending row is indexed later with whatever content it has then.
CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE msg_rowid = old.rowid)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;
