-- Calls to ecto-central, queued in the transaction of the change that causes them and delivered
-- in order per server (see the central-sync worker). No foreign key to servers: a deleted
-- server's last calls (discovery-unregister) must still go out.
CREATE TABLE central_sync_state (
    server_id    uuid PRIMARY KEY,
    -- The number the next queued call of this server takes; taking it locks this row, so the
    -- calls of one server are numbered in the order their transactions commit.
    next_seq     bigint NOT NULL,
    -- Which process delivers this server's calls, until when (unix milliseconds: compared
    -- as numbers on both databases).
    lease_owner  text,
    lease_until  bigint
);

CREATE TABLE central_outbox (
    server_id       uuid NOT NULL,
    seq             bigint NOT NULL,
    -- What the call is about ('metadata', 'discovery', an invite code, a post id): requests
    -- that wait for central's answer wait for their subject to leave the queue.
    subject         text NOT NULL,
    path            text NOT NULL,
    body            text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_ms bigint NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (server_id, seq)
);
CREATE INDEX idx_central_outbox_due ON central_outbox (next_attempt_ms);
