//! A per-process memo of the server data nearly every request reads: the server itself, its
//! permission data (roles and overrides) and its channels. An entry is dropped whenever an
//! event of its server says something other than messages, presence or activity changed: the
//! use case that commits a change drops it in its own process before answering (see
//! [`crate::usecases::audit::publish`]), and every process's gateway drops it when the event
//! arrives from the bus. A load that raced with a drop is not kept (generations), so a memo
//! never outlives the change that made it stale in the process that made the change; other
//! processes follow within the bus's delivery time.

use crate::model::{Channel, PermissionData, Server};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Default)]
struct Entry {
    generation: u64,
    permissions: Option<Arc<PermissionData>>,
    channels: Option<Arc<HashMap<Uuid, Channel>>>,
}

#[derive(Default)]
struct Inner {
    servers: HashMap<Uuid, Entry>,
    /// Servers by the key they were resolved with (id, address or host).
    resolved: HashMap<String, Server>,
    /// Bumped by every drop: a server resolved before a drop of any server is not kept (the
    /// key's server is not known before it is read).
    epoch: u64,
}

/// See the module docs. Cheap to share (`Arc`).
#[derive(Default)]
pub struct Memo {
    inner: Mutex<Inner>,
}

/// Whether an event named `name` may change what the memo holds (anything but the
/// events of messages, typing, presence, activity, DMs, read states, pages, news, hub files and
/// webhooks, none of which touch servers, roles, overrides or channels).
pub fn invalidates(name: &str) -> bool {
    const KEEP: [&str; 14] = [
        "message.",
        "page.",
        "news.",
        "shared_",
        "channel_file.",
        "typing.",
        "presence.",
        "mention.",
        "activity.",
        "server_dm.",
        "read_state.",
        "notify",
        "internal.takeover",
        "webhook.",
    ];
    !KEEP.iter().any(|prefix| name.starts_with(prefix))
}

impl Memo {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops everything known about the server.
    pub fn invalidate(&self, server_id: Uuid) {
        let mut inner = self.inner();
        let entry = inner.servers.entry(server_id).or_default();
        entry.generation += 1;
        entry.permissions = None;
        entry.channels = None;
        inner.resolved.retain(|_, s| s.id != server_id);
        inner.epoch += 1;
    }

    /// Drops everything (events may have been missed).
    pub fn clear(&self) {
        let mut inner = self.inner();
        for entry in inner.servers.values_mut() {
            entry.generation += 1;
            entry.permissions = None;
            entry.channels = None;
        }
        inner.resolved.clear();
        inner.epoch += 1;
    }

    /// The current generation of the server's entry (read before loading what to store).
    pub fn generation(&self, server_id: Uuid) -> u64 {
        self.inner()
            .servers
            .get(&server_id)
            .map_or(0, |e| e.generation)
    }

    pub fn permissions(&self, server_id: Uuid) -> Option<Arc<PermissionData>> {
        self.inner()
            .servers
            .get(&server_id)
            .and_then(|e| e.permissions.clone())
    }

    /// Keeps `data` unless the server changed since `generation`.
    pub fn keep_permissions(&self, server_id: Uuid, generation: u64, data: Arc<PermissionData>) {
        let mut inner = self.inner();
        let entry = inner.servers.entry(server_id).or_default();
        if entry.generation == generation {
            entry.permissions = Some(data);
        }
    }

    pub fn channels(&self, server_id: Uuid) -> Option<Arc<HashMap<Uuid, Channel>>> {
        self.inner()
            .servers
            .get(&server_id)
            .and_then(|e| e.channels.clone())
    }

    /// Keeps the server's channels unless the server changed since `generation`.
    pub fn keep_channels(
        &self,
        server_id: Uuid,
        generation: u64,
        channels: Arc<HashMap<Uuid, Channel>>,
    ) {
        let mut inner = self.inner();
        let entry = inner.servers.entry(server_id).or_default();
        if entry.generation == generation {
            entry.channels = Some(channels);
        }
    }

    /// The server resolved with `key` earlier, if it has not changed since.
    pub fn server(&self, key: &str) -> Option<Server> {
        self.inner().resolved.get(key).cloned()
    }

    /// The memo-wide count of drops (read before resolving a server to keep).
    pub fn epoch(&self) -> u64 {
        self.inner().epoch
    }

    /// Remembers that `key` resolves to `server`, unless anything was dropped since `epoch`.
    pub fn keep_server(&self, key: &str, epoch: u64, server: Server) {
        let mut inner = self.inner();
        if inner.epoch == epoch && inner.resolved.len() < 10_000 {
            inner.resolved.insert(key.to_owned(), server);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_raced_with_a_change_is_not_kept() {
        let memo = Memo::default();
        let server = Uuid::now_v7();
        let before = memo.generation(server);
        memo.invalidate(server);
        memo.keep_permissions(server, before, Arc::new(PermissionData::default()));
        assert!(memo.permissions(server).is_none());
        let now = memo.generation(server);
        memo.keep_permissions(server, now, Arc::new(PermissionData::default()));
        assert!(memo.permissions(server).is_some());
        memo.invalidate(server);
        assert!(memo.permissions(server).is_none());
    }

    #[test]
    fn only_structural_events_invalidate() {
        assert!(invalidates("role.update"));
        assert!(invalidates("channel.update"));
        assert!(invalidates("member.update"));
        assert!(invalidates("internal.close"));
        assert!(!invalidates("message.create"));
        assert!(!invalidates("presence.update"));
    }
}
