-- Calls to ecto-central, queued in the transaction of the change that causes them and delivered
-- in order per server (see the central-sync worker). No foreign key to servers: a deleted
-- server's last calls (discovery-unregister) must still go out.
CREATE TABLE central_sync_state (
    server_id    TEXT NOT NULL PRIMARY KEY,
    -- The number the next queued call of this server takes; taking it locks this row, so the
    -- calls of one server are numbered in the order their transactions commit.
    next_seq     BIGINT NOT NULL,
    -- Which process delivers this server's calls, until when (unix milliseconds: compared
    -- as numbers on both databases).
    lease_owner  TEXT,
    lease_until  BIGINT
);

CREATE TABLE central_outbox (
    server_id       TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    -- What the call is about ('metadata', 'discovery', an invite code, a post id): requests
    -- that wait for central's answer wait for their subject to leave the queue.
    subject         TEXT NOT NULL,
    path            TEXT NOT NULL,
    body            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (server_id, seq)
);
CREATE INDEX idx_central_outbox_due ON central_outbox (next_attempt_ms);
