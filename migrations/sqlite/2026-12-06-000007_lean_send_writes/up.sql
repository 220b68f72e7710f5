-- A send wrote a page of five b-trees: the messages table, its id index, the channel index,
-- the author index and messages_fts_pending. Two of them go.
--
-- Search: rather than noting each new row in messages_fts_pending, the index keeps a mark,
-- messages_fts_state.indexed_to: every row at or below it is in the index and every row above
-- it is not. Db::index_pending_messages adds the rows above the mark and raises it (every
-- 250 ms and before every search, as before). SQLite gives a new row the largest rowid plus
-- one, so new rows land above the mark; when the largest rows are deleted, the delete trigger
-- lowers the mark to the largest left, so a rowid given again is above it too.
INSERT INTO messages_fts (rowid, content)
    SELECT m.rowid, m.content FROM messages_fts_pending p
    JOIN messages m ON m.rowid = p.msg_rowid ORDER BY p.msg_rowid;

DROP TRIGGER messages_fts_ai;
DROP TRIGGER messages_fts_ad;
DROP TRIGGER messages_fts_au;
DROP TABLE messages_fts_pending;

CREATE TABLE messages_fts_state (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    indexed_to INTEGER NOT NULL
);
INSERT INTO messages_fts_state (id, indexed_to) SELECT 1, coalesce(max(rowid), 0) FROM messages;

-- An indexed row leaves the index; a row above the mark was never in it.
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        SELECT 'delete', old.rowid, old.content
        WHERE old.rowid <= (SELECT indexed_to FROM messages_fts_state);
    UPDATE messages_fts_state SET indexed_to = (SELECT coalesce(max(rowid), 0) FROM messages)
        WHERE indexed_to > (SELECT coalesce(max(rowid), 0) FROM messages);
END;

-- A row above the mark is indexed later with whatever content it has then.
CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages
WHEN old.rowid <= (SELECT indexed_to FROM messages_fts_state)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;

-- The author index served three reads, each now bounded another way: slow mode and a ban's
-- message deletion walk the id index from the start of their window (ids are time-ordered),
-- and a DM's unread count walks the conversation's channel index from the read marker.
-- PostgreSQL keeps its index.
DROP INDEX idx_messages_author;
