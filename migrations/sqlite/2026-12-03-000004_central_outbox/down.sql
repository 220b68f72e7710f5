DROP TABLE central_outbox;
DROP TABLE central_sync_state;
