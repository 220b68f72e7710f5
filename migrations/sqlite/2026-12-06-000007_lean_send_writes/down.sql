CREATE INDEX idx_messages_author ON messages (author_id);

DROP TRIGGER messages_fts_ad;
DROP TRIGGER messages_fts_au;
CREATE TABLE messages_fts_pending (msg_rowid INTEGER NOT NULL PRIMARY KEY);
INSERT INTO messages_fts_pending (msg_rowid)
    SELECT rowid FROM messages WHERE rowid > (SELECT indexed_to FROM messages_fts_state);
DROP TABLE messages_fts_state;

CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts_pending (msg_rowid) VALUES (new.rowid);
END;

CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        SELECT 'delete', old.rowid, old.content
        WHERE NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE msg_rowid = old.rowid);
    DELETE FROM messages_fts_pending WHERE msg_rowid = old.rowid;
END;

CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE msg_rowid = old.rowid)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;
