//! A per-process memo of the server data nearly every request reads: the server itself, its
//! permission data (roles and overrides), its channels, categories and configuration, the
//! memberships of its callers (member row and role ids), the message authors it shows and the
//! member view `system.ready` sends. An entry is dropped whenever an event of its server says
//! something other than messages, presence or activity changed: the use case that commits a
//! change drops it in its own process before answering (see
//! [`crate::usecases::base::publish::publish`]), and every process's gateway drops it when the event
//! arrives from the bus. A load that raced with a drop is not kept (generations), so a memo
//! never outlives the change that made it stale in the process that made the change; other
//! processes follow within the bus's delivery time. Authors and member views also expire after
//! [`AUTHOR_TTL`]: a central profile refresh changes them without any event.
//!
//! One load at a time per item ([`Memo::turn`]): callers that miss the same item while it is
//! being loaded wait for that load instead of each reading the store, so a reconnect storm
//! after a restart reads a server's channels, categories, roles and configuration once, not
//! once per socket in flight.

use crate::model::{
    Category, Channel, Member, MemberView, MessageAuthor, PermissionData, Server, ServerConfig,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a message author is shown from the memo at most.
pub const AUTHOR_TTL: Duration = Duration::from_secs(60);
/// Memberships or authors kept per server at most; past it the map starts over.
const PER_SERVER: usize = 50_000;

/// A caller's membership as authentication and permission checks read it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub member: Member,
    /// Ids of the member's roles, in the store's order (@everyone first).
    pub roles: Vec<Uuid>,
}

#[derive(Default)]
pub(crate) struct Entry {
    generation: u64,
    permissions: Option<Arc<PermissionData>>,
    channels: Option<Arc<Vec<Channel>>>,
    config: Option<Arc<ServerConfig>>,
    categories: Option<Arc<Vec<Category>>>,
    members: HashMap<Uuid, Arc<Membership>>,
    authors: HashMap<Uuid, (Instant, MessageAuthor)>,
    /// Members as `system.ready` shows a session its own member (they carry a profile too).
    views: HashMap<Uuid, (Instant, Arc<MemberView>)>,
    /// When the entry was last read (a process keeps following a server it serves).
    used: Option<Instant>,
}

impl Entry {
    fn drop_all(&mut self) {
        self.generation += 1;
        self.permissions = None;
        self.channels = None;
        self.config = None;
        self.categories = None;
        self.members = HashMap::new();
        self.authors = HashMap::new();
        self.views = HashMap::new();
    }
}

/// What a server's entry holds one of: its permission data, channels, categories and
/// configuration.
pub(crate) trait Whole: Sized + 'static {
    fn slot(entry: &mut Entry) -> &mut Option<Arc<Self>>;
}

impl Whole for PermissionData {
    fn slot(entry: &mut Entry) -> &mut Option<Arc<Self>> {
        &mut entry.permissions
    }
}

impl Whole for Vec<Channel> {
    fn slot(entry: &mut Entry) -> &mut Option<Arc<Self>> {
        &mut entry.channels
    }
}

impl Whole for Vec<Category> {
    fn slot(entry: &mut Entry) -> &mut Option<Arc<Self>> {
        &mut entry.categories
    }
}

impl Whole for ServerConfig {
    fn slot(entry: &mut Entry) -> &mut Option<Arc<Self>> {
        &mut entry.config
    }
}

/// Inserts into a bounded per-server map.
fn bounded_insert<V>(map: &mut HashMap<Uuid, V>, key: Uuid, value: V) {
    if map.len() >= PER_SERVER && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

#[derive(Default)]
struct Inner {
    servers: HashMap<Uuid, Entry>,
    /// Servers by the key they were resolved with (id, address or host).
    resolved: HashMap<String, Server>,
    /// Bumped by every drop: a server resolved before a drop of any server is not kept (the
    /// key's server is not known before it is read).
    epoch: u64,
    /// The servers whose events this process hears, when it does not hear every server's
    /// (see [`Memo::follow_only`]): nothing is kept or served for the others.
    followed: Option<std::collections::HashSet<Uuid>>,
    /// Servers not heard that were asked for since they were last followed or left.
    asked: std::collections::HashSet<Uuid>,
}

impl Inner {
    /// Whether the server's events reach this process (so its entry is kept up to date).
    fn heard(&self, server_id: Uuid) -> bool {
        self.followed
            .as_ref()
            .is_none_or(|f| f.contains(&server_id))
    }

    /// The server's entry, when its events are heard (marked used). A server not heard is
    /// asked for (once) through `want`.
    fn entry(&mut self, server_id: Uuid, want: Option<&Want>) -> Option<&mut Entry> {
        if !self.heard(server_id) {
            if let Some(want) = want {
                if self.asked.insert(server_id) {
                    want(server_id);
                }
            }
            return None;
        }
        let entry = self.servers.get_mut(&server_id)?;
        entry.used = Some(Instant::now());
        Some(entry)
    }

    /// The server's entry to keep something in, when its events are heard and it has not
    /// changed since `generation`.
    fn keeping(&mut self, server_id: Uuid, generation: u64) -> Option<&mut Entry> {
        if !self.heard(server_id) {
            return None;
        }
        let entry = self.servers.entry(server_id).or_default();
        (entry.generation == generation).then_some(entry)
    }
}

/// Asks for a server's events to be heard (the gateway follows it).
pub type Want = Box<dyn Fn(Uuid) + Send + Sync>;

/// What one load reads: a server, a user of it (nil for the server's own items) and the
/// kind of item.
type LoadKey = (Uuid, Uuid, std::any::TypeId);

/// The gate of one item's loads.
type Gate = Arc<futures_util::lock::Mutex<()>>;

/// See the module docs. Cheap to share (`Arc`).
#[derive(Default)]
pub struct Memo {
    inner: Mutex<Inner>,
    want: std::sync::OnceLock<Want>,
    /// The gates of the items being loaded (or waited for) now.
    loads: Arc<Mutex<HashMap<LoadKey, Gate>>>,
}

/// The turn to load one item (see [`Memo::turn`]); the next caller waiting for the item goes
/// when it is dropped.
pub(crate) struct Turn {
    key: LoadKey,
    loads: Arc<Mutex<HashMap<LoadKey, Gate>>>,
    gate: Option<futures_util::lock::OwnedMutexGuard<()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.gate = None;
        let mut loads = self.loads.lock().unwrap_or_else(|p| p.into_inner());
        // Clones are only taken under this lock: the map's is the last one when nobody else
        // holds or waits for the gate.
        if loads
            .get(&self.key)
            .is_some_and(|gate| Arc::strong_count(gate) == 1)
        {
            loads.remove(&self.key);
        }
    }
}

/// Whether an event named `name` may change what the memo holds (anything but the
/// events of messages, typing, presence, activity, DMs, read states, pages, news, hub files and
/// webhooks, none of which touch servers, roles, overrides or channels).
pub fn invalidates(name: &str) -> bool {
    const KEEP: [&str; 16] = [
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
        "voice.",
        "internal.voice_transferred",
    ];
    !KEEP.iter().any(|prefix| name.starts_with(prefix))
}

impl Memo {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the event `name` with `data` of the server makes stale: nothing for the events
    /// [`invalidates`] keeps; for `member.join` the joining user's own rows (membership,
    /// member view, author) and the server's row (the first member becomes its owner), since a
    /// join changes no role, override, channel, category or configuration; everything the
    /// server has for any other change. Either way a load still in flight is not kept.
    pub fn notice(&self, server_id: Uuid, name: &str, data: &serde_json::Value) {
        if !invalidates(name) {
            return;
        }
        let joined = (name == "member.join")
            .then(|| data.get("user_id")?.as_str()?.parse::<Uuid>().ok())
            .flatten();
        match joined {
            Some(user_id) => self.forget_member(server_id, user_id),
            None => self.invalidate(server_id),
        }
    }

    /// Drops what is known of one member of the server, and the server's row.
    fn forget_member(&self, server_id: Uuid, user_id: Uuid) {
        let mut inner = self.inner();
        let entry = inner.servers.entry(server_id).or_default();
        entry.generation += 1;
        entry.members.remove(&user_id);
        entry.views.remove(&user_id);
        entry.authors.remove(&user_id);
        inner.resolved.retain(|_, s| s.id != server_id);
        inner.epoch += 1;
    }

    /// Drops everything known about the server.
    pub fn invalidate(&self, server_id: Uuid) {
        let mut inner = self.inner();
        inner.servers.entry(server_id).or_default().drop_all();
        inner.resolved.retain(|_, s| s.id != server_id);
        inner.epoch += 1;
    }

    /// From now on, keeps only servers marked [`Memo::follow`]ed: this process's event feed
    /// carries only the servers it follows, and an entry of any other server would go stale
    /// unheard. A server asked for that is not followed is passed to `want` (once until it
    /// is followed or left), so that a process serving a server's requests follows it too.
    pub fn follow_only(&self, want: Want) {
        let _ = self.want.set(want);
        let mut inner = self.inner();
        if inner.followed.is_none() {
            inner.followed = Some(Default::default());
            for entry in inner.servers.values_mut() {
                entry.drop_all();
            }
            inner.resolved.clear();
            inner.epoch += 1;
        }
    }

    /// Marks the server's events heard (from now on) or no longer heard. Either way what was
    /// known of it is dropped: it was not kept up to date before, and will not be after.
    pub fn follow(&self, server_id: Uuid, heard: bool) {
        let mut inner = self.inner();
        let Some(followed) = inner.followed.as_mut() else {
            return;
        };
        if heard {
            followed.insert(server_id);
        } else {
            followed.remove(&server_id);
        }
        inner.asked.remove(&server_id);
        let entry = inner.servers.entry(server_id).or_default();
        entry.drop_all();
        entry.used = None;
        inner.resolved.retain(|_, s| s.id != server_id);
        inner.epoch += 1;
    }

    /// A server asked for could not be followed: the next read asks again.
    pub fn unask(&self, server_id: Uuid) {
        self.inner().asked.remove(&server_id);
    }

    /// Whether the server's entry was read within `within` (see [`Memo::follow_only`]).
    pub fn used_within(&self, server_id: Uuid, within: Duration) -> bool {
        self.inner()
            .servers
            .get(&server_id)
            .and_then(|e| e.used)
            .is_some_and(|at| at.elapsed() < within)
    }

    /// Drops everything (events may have been missed).
    pub fn clear(&self) {
        let mut inner = self.inner();
        for entry in inner.servers.values_mut() {
            entry.drop_all();
        }
        inner.resolved.clear();
        inner.epoch += 1;
    }

    /// Waits until no other caller is loading the item `T` of `server_id` (and of `user_id`,
    /// or nil for the server's own items), then holds the turn: a caller that missed the memo
    /// takes it, looks again (what the caller before it loaded is there now) and loads only
    /// when still missing.
    pub(crate) async fn turn<T: 'static>(&self, server_id: Uuid, user_id: Uuid) -> Turn {
        let key = (server_id, user_id, std::any::TypeId::of::<T>());
        let gate = {
            let mut loads = self.loads.lock().unwrap_or_else(|p| p.into_inner());
            loads.entry(key).or_default().clone()
        };
        let guard = gate.lock_owned().await;
        Turn {
            key,
            loads: self.loads.clone(),
            gate: Some(guard),
        }
    }

    /// [`Memo::turn`] for resolving the server `key` names (an id, address or host).
    pub(crate) async fn server_turn(&self, key: &str) -> Turn {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        // Two keys of one hash only take turns; each still loads and keeps its own server.
        self.turn::<Server>(Uuid::from_u64_pair(hasher.finish(), 0), Uuid::nil())
            .await
    }

    /// The current generation of the server's entry (read before loading what to store).
    pub fn generation(&self, server_id: Uuid) -> u64 {
        self.inner()
            .servers
            .get(&server_id)
            .map_or(0, |e| e.generation)
    }

    /// The server's `T` (its channels in the store's order), if known and unchanged.
    pub(crate) fn whole<T: Whole>(&self, server_id: Uuid) -> Option<Arc<T>> {
        self.inner()
            .entry(server_id, self.want.get())
            .and_then(|e| T::slot(e).clone())
    }

    /// Keeps the server's `T` unless the server changed since `generation`.
    pub(crate) fn keep_whole<T: Whole>(&self, server_id: Uuid, generation: u64, value: Arc<T>) {
        if let Some(entry) = self.inner().keeping(server_id, generation) {
            *T::slot(entry) = Some(value);
        }
    }

    /// The member view of `user_id`, if known, unchanged and fresh (see [`AUTHOR_TTL`]).
    pub fn member_view(&self, server_id: Uuid, user_id: Uuid) -> Option<Arc<MemberView>> {
        self.inner()
            .entry(server_id, self.want.get())
            .and_then(|e| e.views.get(&user_id))
            .filter(|(at, _)| at.elapsed() < AUTHOR_TTL)
            .map(|(_, view)| view.clone())
    }

    /// Keeps a member view unless the server changed since `generation`.
    pub fn keep_member_view(&self, server_id: Uuid, generation: u64, view: Arc<MemberView>) {
        if let Some(entry) = self.inner().keeping(server_id, generation) {
            bounded_insert(&mut entry.views, view.user_id, (Instant::now(), view));
        }
    }

    /// The membership of `user_id` in the server, if known and unchanged.
    pub fn membership(&self, server_id: Uuid, user_id: Uuid) -> Option<Arc<Membership>> {
        self.inner()
            .entry(server_id, self.want.get())
            .and_then(|e| e.members.get(&user_id).cloned())
    }

    /// Keeps a membership unless the server changed since `generation`.
    pub fn keep_membership(&self, server_id: Uuid, generation: u64, membership: Arc<Membership>) {
        if let Some(entry) = self.inner().keeping(server_id, generation) {
            bounded_insert(&mut entry.members, membership.member.user_id, membership);
        }
    }

    /// The authors among `users` known and fresh; the others are left in `users`.
    pub fn authors(&self, server_id: Uuid, users: &mut Vec<Uuid>) -> HashMap<Uuid, MessageAuthor> {
        let mut inner = self.inner();
        let mut found = HashMap::new();
        let Some(entry) = inner.entry(server_id, self.want.get()) else {
            return found;
        };
        users.retain(|u| match entry.authors.get(u) {
            Some((at, author)) if at.elapsed() < AUTHOR_TTL => {
                found.insert(*u, author.clone());
                false
            }
            _ => true,
        });
        found
    }

    /// Keeps `authors` unless the server changed since `generation`.
    pub fn keep_authors<'a>(
        &self,
        server_id: Uuid,
        generation: u64,
        authors: impl IntoIterator<Item = &'a MessageAuthor>,
    ) {
        if let Some(entry) = self.inner().keeping(server_id, generation) {
            let now = Instant::now();
            for author in authors {
                bounded_insert(&mut entry.authors, author.id, (now, author.clone()));
            }
        }
    }

    /// The server resolved with `key` earlier, if it has not changed since.
    pub fn server(&self, key: &str) -> Option<Server> {
        let inner = self.inner();
        inner
            .resolved
            .get(key)
            .filter(|s| inner.heard(s.id))
            .cloned()
    }

    /// The memo-wide count of drops (read before resolving a server to keep).
    pub fn epoch(&self) -> u64 {
        self.inner().epoch
    }

    /// Remembers that `key` resolves to `server`, unless anything was dropped since `epoch`.
    pub fn keep_server(&self, key: &str, epoch: u64, server: Server) {
        let mut inner = self.inner();
        if inner.epoch == epoch && inner.resolved.len() < 10_000 && inner.heard(server.id) {
            inner.resolved.insert(key.to_owned(), server);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_followed_servers_are_kept_and_others_are_asked_for_once() {
        let memo = Memo::default();
        let (heard, unheard) = (Uuid::now_v7(), Uuid::now_v7());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        memo.follow_only(Box::new(move |s| log.lock().expect("lock").push(s)));
        memo.follow(heard, true);
        for server in [heard, unheard] {
            let generation = memo.generation(server);
            memo.keep_whole(server, generation, Arc::new(PermissionData::default()));
        }
        assert!(memo.whole::<PermissionData>(heard).is_some());
        assert!(memo.used_within(heard, Duration::from_secs(1)));
        assert!(memo.whole::<PermissionData>(unheard).is_none());
        assert!(memo.whole::<PermissionData>(unheard).is_none());
        assert_eq!(
            *asked.lock().expect("lock"),
            vec![unheard],
            "asked for once"
        );
        memo.unask(unheard);
        assert!(memo.whole::<PermissionData>(unheard).is_none());
        assert_eq!(
            *asked.lock().expect("lock"),
            vec![unheard, unheard],
            "asked again after a failed follow"
        );
        memo.follow(heard, false);
        assert!(
            memo.whole::<PermissionData>(heard).is_none(),
            "dropped when left"
        );
        assert_eq!(*asked.lock().expect("lock"), vec![unheard, unheard, heard]);
    }

    #[test]
    fn a_load_that_raced_with_a_change_is_not_kept() {
        let memo = Memo::default();
        let server = Uuid::now_v7();
        let before = memo.generation(server);
        memo.invalidate(server);
        memo.keep_whole(server, before, Arc::new(PermissionData::default()));
        assert!(memo.whole::<PermissionData>(server).is_none());
        let now = memo.generation(server);
        memo.keep_whole(server, now, Arc::new(PermissionData::default()));
        assert!(memo.whole::<PermissionData>(server).is_some());
        memo.keep_whole(server, now, Arc::new(Vec::<Channel>::new()));
        memo.invalidate(server);
        assert!(memo.whole::<PermissionData>(server).is_none());
        assert!(memo.whole::<Vec<Channel>>(server).is_none());
    }

    #[test]
    fn memberships_and_authors_go_with_their_server() {
        let memo = Memo::default();
        let (server, user) = (Uuid::now_v7(), Uuid::now_v7());
        let member = Member {
            id: Uuid::now_v7(),
            server_id: server,
            user_id: user,
            identity_type: crate::model::IdentityType::Local,
            nickname: None,
            allow_dms: true,
            token_version: 0,
            joined_at: chrono::Utc::now(),
        };
        let author = MessageAuthor {
            id: user,
            username: "ann".into(),
            display_name: None,
            avatar_url: None,
            nickname: None,
        };
        let g = memo.generation(server);
        memo.keep_membership(
            server,
            g,
            Arc::new(Membership {
                member,
                roles: vec![],
            }),
        );
        memo.keep_authors(server, g, [&author]);
        assert!(memo.membership(server, user).is_some());
        let mut wanted = vec![user, Uuid::now_v7()];
        let found = memo.authors(server, &mut wanted);
        assert_eq!(found.get(&user), Some(&author));
        assert_eq!(wanted.len(), 1, "the unknown author is left to load");
        memo.invalidate(server);
        assert!(memo.membership(server, user).is_none());
        let mut wanted = vec![user];
        assert!(memo.authors(server, &mut wanted).is_empty());
        // A load that started before the drop is not kept.
        memo.keep_authors(server, g, [&author]);
        assert!(memo.authors(server, &mut vec![user]).is_empty());
    }

    #[test]
    fn a_join_drops_only_the_joining_users_rows_and_the_server_row() {
        let memo = Memo::default();
        let (server_id, joining, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let membership = |user_id| {
            Arc::new(Membership {
                member: Member {
                    id: Uuid::now_v7(),
                    server_id,
                    user_id,
                    identity_type: crate::model::IdentityType::Local,
                    nickname: None,
                    allow_dms: true,
                    token_version: 0,
                    joined_at: chrono::Utc::now(),
                },
                roles: vec![],
            })
        };
        let server = Server {
            id: server_id,
            name: "s".into(),
            description: None,
            icon_url: None,
            banner_url: None,
            address: None,
            admin_user_id: None,
            admin_identity_type: "local".into(),
            central_connected: false,
            default_channel_id: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let g = memo.generation(server_id);
        memo.keep_whole(server_id, g, Arc::new(PermissionData::default()));
        memo.keep_membership(server_id, g, membership(joining));
        memo.keep_membership(server_id, g, membership(other));
        memo.keep_server("host", memo.epoch(), server);
        memo.notice(
            server_id,
            "member.join",
            &serde_json::json!({ "user_id": joining.to_string() }),
        );
        assert!(memo.whole::<PermissionData>(server_id).is_some());
        assert!(memo.membership(server_id, other).is_some());
        assert!(memo.membership(server_id, joining).is_none());
        assert!(
            memo.server("host").is_none(),
            "the first member becomes the owner"
        );
        // A load that started before the join is not kept.
        memo.keep_membership(server_id, g, membership(joining));
        assert!(memo.membership(server_id, joining).is_none());
        memo.notice(server_id, "message.create", &serde_json::json!({}));
        assert!(memo.membership(server_id, other).is_some());
        memo.notice(server_id, "member.join", &serde_json::json!({}));
        assert!(
            memo.whole::<PermissionData>(server_id).is_none(),
            "a join without its user drops everything"
        );
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
