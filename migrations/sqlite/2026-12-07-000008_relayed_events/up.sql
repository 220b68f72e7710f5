-- Events an operator's command (`ecto-server admin ...`) published, for a running server that
-- shares no event bus (Redis) with it: the server takes them every second and publishes them
-- as its own, so that the sessions a command ends are closed and its caches forget at once.
-- Rows live only until the server takes them; what was written before a server started is
-- dropped when it starts (its caches are fresh).
CREATE TABLE relayed_events (
    id    INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL
);
