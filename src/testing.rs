//! Contract suites for the ports (feature `testing`): every adapter of a port must pass the
//! same suite, so the memory, Redis, SQLite and PostgreSQL adapters keep one promise.
//!
//! Each suite panics on the first broken promise, naming it.

use crate::model::{
    IdentityType, JoinOutcome, JoinPlan, NewLocalUser, NewServer, RefreshTokenRecord,
};
use crate::ports::{AccountStore, Cache, MemberStore, RefreshTokenStore, ServerStore};
use crate::{new_id, permissions, ErrorKind};
use chrono::{Duration as ChronoDuration, Utc};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// An async sleep supplied by the test runtime (the core has none).
pub type Sleep = dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;

fn key(prefix: &str) -> String {
    format!("{prefix}:{}", new_id())
}

/// The [`Cache`] contract: absent keys, overwrite, isolation, and expiry.
pub async fn cache_contract(cache: &dyn Cache, sleep: &Sleep) {
    let k = key("contract");
    assert_eq!(
        cache.get(&k).await.expect("get"),
        None,
        "an unknown key is absent"
    );
    cache
        .set(&k, "one", Duration::from_secs(30))
        .await
        .expect("set");
    assert_eq!(
        cache.get(&k).await.expect("get").as_deref(),
        Some("one"),
        "a set value is read back"
    );
    cache
        .set(&k, "two", Duration::from_secs(30))
        .await
        .expect("set");
    assert_eq!(
        cache.get(&k).await.expect("get").as_deref(),
        Some("two"),
        "set replaces"
    );
    assert_eq!(
        cache.get(&key("other")).await.expect("get"),
        None,
        "keys are independent"
    );
    let short = key("short");
    cache
        .set(&short, "gone soon", Duration::from_millis(200))
        .await
        .expect("set");
    sleep(Duration::from_millis(450)).await;
    assert_eq!(
        cache.get(&short).await.expect("get"),
        None,
        "a value expires after its ttl"
    );
    assert_eq!(
        cache.get(&k).await.expect("get").as_deref(),
        Some("two"),
        "others stay"
    );
    set_if_absent_contract(cache, sleep).await;
    fetch_contract(cache, sleep).await;
}

/// [`Cache::set_if_absent`]: the first call stores, later ones do not replace, an expired
/// or removed value counts as absent, and of concurrent calls exactly one stores.
async fn set_if_absent_contract(cache: &dyn Cache, sleep: &Sleep) {
    let k = key("nx");
    let ttl = Duration::from_secs(30);
    assert!(
        cache.set_if_absent(&k, "first", ttl).await.expect("nx"),
        "an absent key is stored"
    );
    assert!(
        !cache.set_if_absent(&k, "second", ttl).await.expect("nx"),
        "a present key is not stored again"
    );
    assert_eq!(
        cache.get(&k).await.expect("get").as_deref(),
        Some("first"),
        "the first value stays"
    );
    let short = key("nx-short");
    let brief = Duration::from_millis(200);
    assert!(cache.set_if_absent(&short, "a", brief).await.expect("nx"));
    sleep(Duration::from_millis(450)).await;
    assert!(
        cache.set_if_absent(&short, "b", ttl).await.expect("nx"),
        "an expired key is absent"
    );
    assert_eq!(cache.get(&short).await.expect("get").as_deref(), Some("b"));
    cache.remove(&k).await.expect("remove");
    assert_eq!(
        cache.get(&k).await.expect("get"),
        None,
        "a removed key is gone"
    );
    assert!(
        cache.set_if_absent(&k, "third", ttl).await.expect("nx"),
        "a removed key is stored again at once"
    );
    cache
        .remove(&key("never-set"))
        .await
        .expect("removing an absent key");

    let raced = key("nx-race");
    let calls = (0..8).map(|i| {
        let raced = raced.clone();
        async move { cache.set_if_absent(&raced, &i.to_string(), ttl).await }
    });
    let won = futures_join(calls.collect()).await;
    assert_eq!(
        won.into_iter().filter(|r| *r.as_ref().expect("nx")).count(),
        1,
        "of concurrent calls, one stores"
    );
}

/// Polls every future in `all` together until each is done; their outputs in order.
async fn futures_join<F: Future>(all: Vec<F>) -> Vec<F::Output> {
    let mut all: Vec<Pin<Box<F>>> = all.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = all.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (f, slot) in all.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                    *slot = Some(v);
                }
            }
        }
        if out.iter().all(Option::is_some) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// [`Cache::get_or_fetch`]: a miss fetches and keeps, a hit does not fetch, a failed fetch is
/// kept nowhere, and concurrent misses of one key share one fetch.
async fn fetch_contract(cache: &dyn Cache, sleep: &Sleep) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fetches = AtomicUsize::new(0);
    let counted = |value: &'static str| -> crate::ports::Fetch<'_> {
        Box::pin(async {
            fetches.fetch_add(1, Ordering::SeqCst);
            sleep(Duration::from_millis(100)).await;
            Ok(value.to_owned())
        })
    };
    let k = key("fetch");
    let ttl = Duration::from_secs(30);
    let got = cache.get_or_fetch(&k, ttl, counted("made")).await;
    assert_eq!(got.expect("fetch").as_str(), "made", "a miss fetches");
    let got = cache.get_or_fetch(&k, ttl, counted("again")).await;
    assert_eq!(
        got.expect("hit").as_str(),
        "made",
        "a hit is not fetched again"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache.get(&k).await.expect("get").as_deref(),
        Some("made"),
        "a fetched value is kept"
    );

    let failing = key("failing");
    let refused = cache
        .get_or_fetch(
            &failing,
            ttl,
            Box::pin(async { Err(crate::CoreError::unauthorized("no")) }),
        )
        .await;
    assert_eq!(
        refused.err().map(|e| e.kind),
        Some(ErrorKind::Unauthorized),
        "a failed fetch answers its error"
    );
    let got = cache.get_or_fetch(&failing, ttl, counted("later")).await;
    assert_eq!(
        got.expect("fetch").as_str(),
        "later",
        "a failed fetch is not kept"
    );

    let burst = key("burst");
    fetches.store(0, Ordering::SeqCst);
    let mut waiting: Vec<_> = (0..8)
        .map(|_| Some(cache.get_or_fetch(&burst, ttl, counted("shared"))))
        .collect();
    let mut answers = Vec::new();
    std::future::poll_fn(|cx| {
        for slot in &mut waiting {
            if let Some(f) = slot {
                if let std::task::Poll::Ready(answer) = f.as_mut().poll(cx) {
                    answers.push(answer.expect("fetch"));
                    *slot = None;
                }
            }
        }
        if waiting.iter().all(Option::is_none) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    assert!(answers.iter().all(|a| a == "shared"), "{answers:?}");
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "concurrent misses of one key share one fetch"
    );
}

/// Stores the store contract needs, all over one database.
pub struct Stores<'a> {
    pub servers: &'a dyn ServerStore,
    pub accounts: &'a dyn AccountStore,
    pub members: &'a dyn MemberStore,
    pub tokens: &'a dyn RefreshTokenStore,
}

/// The durable stores' contract: servers, accounts, the atomic join, token versions and
/// refresh tokens.
pub async fn store_contract(s: Stores<'_>) {
    let now = Utc::now();
    let address = format!("{}.contract.test", new_id().simple());
    let server = s
        .servers
        .create(NewServer {
            id: new_id(),
            name: "Contract".into(),
            address: Some(address.clone()),
            everyone_permissions: permissions::EVERYONE_DEFAULT,
            everyone_role_id: new_id(),
            now,
        })
        .await
        .expect("create server");
    assert_eq!(
        s.servers.get(server.id).await.expect("get").map(|x| x.id),
        Some(server.id)
    );
    assert_eq!(
        s.servers.get(new_id()).await.expect("get"),
        None,
        "unknown server is None"
    );
    let found = s
        .servers
        .find_by_address(&address.to_uppercase())
        .await
        .expect("find");
    assert_eq!(
        found.map(|x| x.id),
        Some(server.id),
        "addresses match case-insensitively"
    );
    let dup = s
        .servers
        .create(NewServer {
            id: new_id(),
            name: "Dup".into(),
            address: Some(address.clone()),
            everyone_permissions: 0,
            everyone_role_id: new_id(),
            now,
        })
        .await
        .expect_err("an address is unique");
    assert_eq!(dup.kind, ErrorKind::Conflict);
    let config = s.servers.config(server.id).await.expect("config");
    assert!(config.allow_local_accounts && !config.require_invite && config.show_system_messages);
    assert_eq!(config.max_upload_size_bytes, 5_242_880);
    assert_eq!(config.max_shared_storage_bytes, 104_857_600);
    assert!(
        !config.discovery_approved,
        "a new server is not approved for discovery"
    );
    for approved in [true, false] {
        let set = s
            .servers
            .set_discovery_approved(server.id, approved, now)
            .await
            .expect("set discovery_approved")
            .expect("the server has a configuration");
        assert_eq!(
            set.discovery_approved, approved,
            "discovery_approved is set"
        );
        let read = s.servers.config(server.id).await.expect("config");
        assert_eq!(
            read.discovery_approved, approved,
            "discovery_approved is kept"
        );
        assert_eq!(
            read.max_upload_size_bytes, 5_242_880,
            "nothing else changes"
        );
    }
    assert!(
        s.servers
            .set_discovery_approved(new_id(), true, now)
            .await
            .expect("no such server")
            .is_none(),
        "an unknown server is None"
    );
    assert_eq!(s.servers.member_count(server.id).await.expect("count"), 0);

    // Accounts: unique per server, case-insensitively.
    let user = s
        .accounts
        .create_local_user(NewLocalUser {
            id: new_id(),
            server_id: server.id,
            username: "Contract_User".into(),
            password_hash: "hash-1".into(),
            now,
        })
        .await
        .expect("create user");
    let taken = s
        .accounts
        .create_local_user(NewLocalUser {
            id: new_id(),
            server_id: server.id,
            username: "contract_user".into(),
            password_hash: "hash-2".into(),
            now,
        })
        .await
        .expect_err("username taken");
    assert_eq!(
        (taken.kind, taken.ecto.map(|c| c.number())),
        (ErrorKind::Conflict, Some(1002))
    );
    let by_name = s
        .accounts
        .find_local_user(server.id, "CONTRACT_USER")
        .await
        .expect("find");
    assert_eq!(by_name.map(|u| u.id), Some(user.id));
    assert!(s
        .accounts
        .set_password_hash(server.id, user.id, "hash-3")
        .await
        .expect("set"));
    let reread = s
        .accounts
        .get_local_user(server.id, user.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(reread.password_hash, "hash-3");
    assert!(
        !s.accounts
            .set_password_hash(server.id, new_id(), "x")
            .await
            .expect("set"),
        "unknown user"
    );
    assert_eq!(
        s.accounts
            .profile(server.id, user.id)
            .await
            .expect("profile")
            .username,
        "Contract_User"
    );
    assert_eq!(
        s.accounts
            .profile(server.id, new_id())
            .await
            .expect("profile")
            .username,
        "Unknown"
    );

    // The atomic join.
    let plan = |user_id, require_invite: bool, code: Option<&str>| JoinPlan {
        server_id: server.id,
        user_id,
        identity_type: IdentityType::Local,
        member_id: new_id(),
        invite_code: code.map(str::to_owned),
        require_invite,
        new_account: None,
        now,
    };
    let member = match s
        .members
        .join(plan(user.id, false, None))
        .await
        .expect("join")
    {
        JoinOutcome::Joined {
            member,
            became_owner,
        } => {
            assert!(became_owner, "the first member owns the server");
            member
        }
        other => panic!("first join must join, got {other:?}"),
    };
    let owner = s
        .servers
        .get(server.id)
        .await
        .expect("get")
        .expect("server");
    assert_eq!(owner.admin_user_id, Some(user.id));
    match s
        .members
        .join(plan(user.id, false, None))
        .await
        .expect("join again")
    {
        JoinOutcome::AlreadyMember(m) => assert_eq!(m.id, member.id),
        other => panic!("a member joining again is AlreadyMember, got {other:?}"),
    }
    let second_user = new_id();
    match s
        .members
        .join(plan(second_user, true, None))
        .await
        .expect("join")
    {
        JoinOutcome::InviteRequired => {}
        other => panic!("no invite must be InviteRequired, got {other:?}"),
    }
    match s
        .members
        .join(plan(second_user, true, Some("NOPE1234")))
        .await
        .expect("join")
    {
        JoinOutcome::InviteNotFound => {}
        other => panic!("unknown code must be InviteNotFound, got {other:?}"),
    }
    assert_eq!(
        s.servers.member_count(server.id).await.expect("count"),
        1,
        "refused joins write nothing"
    );
    match s
        .members
        .join(plan(second_user, false, None))
        .await
        .expect("join")
    {
        JoinOutcome::Joined { became_owner, .. } => assert!(!became_owner),
        other => panic!("second join must join, got {other:?}"),
    }
    let roles = s.members.role_ids(member.id).await.expect("roles");
    assert_eq!(roles.len(), 1, "a new member has @everyone only");
    let base = s
        .members
        .base_permissions(server.id, member.id)
        .await
        .expect("perms");
    assert_eq!(base, permissions::EVERYONE_DEFAULT);

    // Refresh tokens: take is one-shot.
    let record = |hash: &str, expires| RefreshTokenRecord {
        id: new_id(),
        member_id: member.id,
        jti: new_id().to_string(),
        token_hash: hash.into(),
        expires_at: expires,
        created_at: now,
    };
    let hash = format!("{:0>64}", new_id().simple());
    s.tokens
        .insert(record(&hash, now + ChronoDuration::days(30)))
        .await
        .expect("insert");
    let taken = s.tokens.take(&hash).await.expect("take").expect("present");
    assert_eq!(taken.member_id, member.id);
    assert!(
        s.tokens.take(&hash).await.expect("take").is_none(),
        "a taken token is gone"
    );
    let old = format!("{:1>64}", new_id().simple());
    s.tokens
        .insert(record(&old, now - ChronoDuration::seconds(5)))
        .await
        .expect("insert");
    assert!(s.tokens.delete_expired(now).await.expect("cleanup") >= 1);
    assert!(
        s.tokens.take(&old).await.expect("take").is_none(),
        "expired tokens are deleted"
    );

    // Token versions: a bump deletes refresh tokens.
    let live = format!("{:2>64}", new_id().simple());
    s.tokens
        .insert(record(&live, now + ChronoDuration::days(1)))
        .await
        .expect("insert");
    assert_eq!(
        s.members
            .bump_token_version(server.id, user.id, Some("hash-4"))
            .await
            .expect("bump"),
        Some(1)
    );
    assert!(
        s.tokens.take(&live).await.expect("take").is_none(),
        "a bump revokes refresh tokens"
    );
    let rehashed = s
        .accounts
        .get_local_user(server.id, user.id)
        .await
        .expect("get")
        .expect("user");
    assert_eq!(
        rehashed.password_hash, "hash-4",
        "a bump can replace the password hash atomically"
    );
    assert_eq!(
        s.members
            .get(server.id, user.id)
            .await
            .expect("get")
            .map(|m| m.token_version),
        Some(1)
    );
    assert_eq!(
        s.members
            .bump_token_version(server.id, new_id(), None)
            .await
            .expect("bump"),
        None
    );

    // Removal.
    assert!(s
        .members
        .remove(server.id, second_user, None)
        .await
        .expect("remove"));
    assert!(
        !s.members
            .remove(server.id, second_user, None)
            .await
            .expect("remove"),
        "removing twice is false"
    );
    assert_eq!(
        s.members.get(server.id, second_user).await.expect("get"),
        None
    );
}

/// A [`ByteStream`] over `chunks`.
pub fn chunks(chunks: Vec<Vec<u8>>) -> crate::ports::ByteStream {
    struct Chunks(std::vec::IntoIter<Vec<u8>>);
    impl futures_core::Stream for Chunks {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next().map(|c| Ok(bytes::Bytes::from(c))))
        }
    }
    Box::pin(Chunks(chunks.into_iter()))
}

/// Reads a whole [`ByteStream`].
pub async fn collect(mut stream: crate::ports::ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        out.extend_from_slice(&chunk.expect("stream chunk"));
    }
    out
}

/// The [`crate::ports::BlobStore`] contract: streamed puts with a limit, ranges, deletes.
pub async fn blob_contract(store: &dyn crate::ports::BlobStore) {
    use crate::ports::{BlobKey, ByteRange};
    let base = format!("contract-{}", new_id().simple());
    let key = |rest: &str| BlobKey::new(&format!("{base}/{rest}")).expect("key");
    let data: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let parts: Vec<Vec<u8>> = data.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let big = key("big.bin");
    let n = store
        .put(
            &big,
            chunks(parts),
            10 * 1024 * 1024,
            "application/octet-stream",
        )
        .await
        .expect("put");
    assert_eq!(n, data.len() as u64, "put returns the size");
    assert_eq!(
        store.size(&big).await.expect("size"),
        Some(data.len() as u64)
    );
    let whole = store
        .get(&big, None, None)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        (whole.size, whole.start, whole.len),
        (data.len() as u64, 0, data.len() as u64)
    );
    assert!(
        collect(whole.body).await == data,
        "a blob reads back byte for byte"
    );
    let part = store
        .get(
            &big,
            Some(ByteRange {
                start: 1000,
                end: Some(1999),
            }),
            Some(data.len() as u64),
        )
        .await
        .expect("get")
        .expect("present");
    assert_eq!((part.start, part.len), (1000, 1000));
    assert_eq!(
        collect(part.body).await,
        data[1000..2000].to_vec(),
        "a range reads exactly its bytes"
    );
    let tail = store
        .get(
            &big,
            Some(ByteRange {
                start: data.len() as u64 - 10,
                end: None,
            }),
            None,
        )
        .await
        .expect("get")
        .expect("present");
    assert_eq!(collect(tail.body).await, data[data.len() - 10..].to_vec());
    assert!(
        store
            .get(
                &big,
                Some(ByteRange {
                    start: data.len() as u64,
                    end: None
                }),
                Some(data.len() as u64),
            )
            .await
            .is_err(),
        "past the end"
    );

    let small = key("small.txt");
    store
        .put(&small, chunks(vec![b"hello".to_vec()]), 100, "text/plain")
        .await
        .expect("put");
    store
        .put(
            &small,
            chunks(vec![b"hello ".to_vec(), b"again".to_vec()]),
            100,
            "text/plain",
        )
        .await
        .expect("overwrite");
    let got = store
        .get(&small, None, None)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        collect(got.body).await,
        b"hello again".to_vec(),
        "put replaces"
    );

    let over = key("over.bin");
    let err = store
        .put(
            &over,
            chunks(vec![vec![1u8; 600], vec![2u8; 600]]),
            1000,
            "application/octet-stream",
        )
        .await
        .expect_err("over the limit");
    assert_eq!(
        (err.kind, err.ecto.map(|c| c.number())),
        (ErrorKind::PayloadTooLarge, Some(9001))
    );
    assert_eq!(
        store.size(&over).await.expect("size"),
        None,
        "nothing is kept past the limit"
    );
    assert!(store
        .get(&key("missing"), None, None)
        .await
        .expect("get")
        .is_none());
    assert!(
        store
            .get(&key("missing"), None, Some(10))
            .await
            .expect("get")
            .is_none(),
        "a size known from a row does not make a missing blob exist"
    );
    let known = store
        .get(&small, None, Some(11))
        .await
        .expect("get")
        .expect("present");
    assert_eq!((known.size, known.start, known.len), (11, 0, 11));
    assert_eq!(collect(known.body).await, b"hello again".to_vec());

    for name in ["dir/a/1", "dir/a/2", "dir/ab/3"] {
        store
            .put(&key(name), chunks(vec![b"x".to_vec()]), 10, "text/plain")
            .await
            .expect("put");
    }
    let listed = |prefix: &str| {
        let prefix = key(prefix);
        async move {
            store
                .list(Some(&prefix))
                .await
                .expect("list")
                .into_iter()
                .map(|(k, size)| (k.as_str().to_owned(), size))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed("dir").await,
        [
            (format!("{base}/dir/a/1"), 1),
            (format!("{base}/dir/a/2"), 1),
            (format!("{base}/dir/ab/3"), 1)
        ],
        "a listing has every blob under the prefix, by key, with its size"
    );
    assert_eq!(listed("dir/a").await.len(), 2, "whole segments only");
    assert!(listed("nothing-here").await.is_empty());
    let everything = store.list(None).await.expect("list all");
    assert!(
        everything
            .iter()
            .any(|(k, size)| k.as_str() == big.as_str() && *size == data.len() as u64),
        "the whole listing has every blob"
    );
    assert_eq!(
        store
            .delete_prefix(&key("dir/a"))
            .await
            .expect("delete prefix"),
        2,
        "whole segments only"
    );
    assert_eq!(store.size(&key("dir/a/1")).await.expect("size"), None);
    assert_eq!(
        store.size(&key("dir/ab/3")).await.expect("size"),
        Some(1),
        "a sibling with a longer name stays"
    );
    assert!(store.delete(&small).await.expect("delete"));
    assert!(
        !store.delete(&small).await.expect("delete"),
        "deleting twice is false"
    );
    store
        .delete_prefix(&BlobKey::new(&base).expect("key"))
        .await
        .expect("cleanup");
    assert_eq!(store.size(&big).await.expect("size"), None);
}

/// The [`RateLimiter`](crate::ports::RateLimiter) contract: the capacity is a burst, a refused
/// check takes nothing and names a sensible wait, waiting that long frees a token, a whole
/// window refills the bucket, keys are independent, and a capacity of 0 never limits.
pub async fn rate_limit_contract(limiter: &dyn crate::ports::RateLimiter, sleep: &Sleep) {
    use crate::ports::RateDecision;
    // 4 tokens per 2 s: one every 500 ms.
    let (capacity, per) = (4u32, Duration::from_secs(2));
    let per_token = per / capacity;
    let check = |k: String| async move {
        limiter
            .check(&k, capacity, per)
            .await
            .expect("rate limiter check")
    };
    let wait_of = |d: RateDecision, what: &str| match d {
        RateDecision::Limited { retry_after } => retry_after,
        RateDecision::Allowed => panic!("{what}: expected Limited, got Allowed"),
    };
    let k = key("rl");
    for i in 1..=capacity {
        assert_eq!(
            check(k.clone()).await,
            RateDecision::Allowed,
            "call {i} of a burst of {capacity} is allowed"
        );
    }
    let first = wait_of(check(k.clone()).await, "the call after the capacity");
    assert!(
        first > Duration::ZERO && first <= per_token + Duration::from_millis(1),
        "retry_after {first:?} is the time to the next token (at most {per_token:?})"
    );
    assert!(
        first >= per_token / 2,
        "retry_after {first:?} is not far below one token's time ({per_token:?})"
    );
    let second = wait_of(check(k.clone()).await, "a second refused call");
    assert!(
        second <= first,
        "a refused call takes nothing: {second:?} is not longer than {first:?}"
    );

    let other = key("rl");
    assert_eq!(
        check(other.clone()).await,
        RateDecision::Allowed,
        "another key has its own bucket"
    );
    for _ in 1..capacity {
        check(other.clone()).await;
    }
    wait_of(check(other).await, "the other key, emptied");

    sleep(second + Duration::from_millis(30)).await;
    assert_eq!(
        check(k.clone()).await,
        RateDecision::Allowed,
        "after retry_after one token is back"
    );
    wait_of(check(k.clone()).await, "only one token came back");

    sleep(per + Duration::from_millis(50)).await;
    for i in 1..=capacity {
        assert_eq!(
            check(k.clone()).await,
            RateDecision::Allowed,
            "after a whole window call {i} of {capacity} is allowed again"
        );
    }
    wait_of(
        check(k).await,
        "the refilled bucket holds no more than its capacity",
    );

    let free = key("rl");
    for _ in 0..10 {
        assert_eq!(
            limiter
                .check(&free, 0, per)
                .await
                .expect("rate limiter check"),
            RateDecision::Allowed,
            "capacity 0 means no limit"
        );
    }
}

/// The [`crate::ports::PresenceStore`] contract: session counts and presences per server.
pub async fn presence_contract(store: &dyn crate::ports::PresenceStore) {
    use crate::ports::Presence;
    let (server, other_server, user) = (new_id(), new_id(), new_id());
    assert_eq!(store.connections(server, user).await.expect("count"), 0);
    assert_eq!(store.connect(server, user).await.expect("connect"), 1);
    assert_eq!(store.connect(server, user).await.expect("connect"), 2);
    assert_eq!(
        store.connections(other_server, user).await.expect("count"),
        0,
        "counts are per server"
    );
    assert_eq!(store.disconnect(server, user).await.expect("disconnect"), 1);
    assert_eq!(store.disconnect(server, user).await.expect("disconnect"), 0);
    assert_eq!(
        store.disconnect(server, user).await.expect("disconnect"),
        0,
        "never below zero"
    );
    assert_eq!(
        store.connect(server, user).await.expect("connect"),
        1,
        "counting restarts cleanly"
    );

    let presence = Presence {
        user_id: user,
        status: "dnd".into(),
        custom_text: Some("busy".into()),
        last_active_at: Utc::now(),
    };
    assert_eq!(store.get(server, user).await.expect("get"), None);
    store.set(server, presence.clone()).await.expect("set");
    let got = store
        .get(server, user)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        (got.status.as_str(), got.custom_text.as_deref()),
        ("dnd", Some("busy"))
    );
    assert_eq!(store.list(server).await.expect("list").len(), 1);
    assert!(
        store.list(other_server).await.expect("list").is_empty(),
        "presences are per server"
    );
    // The serialized snapshot follows every change, however a store keeps it.
    async fn snapshot(
        store: &dyn crate::ports::PresenceStore,
        server: uuid::Uuid,
    ) -> serde_json::Value {
        let snapshot = store.snapshot(server).await.expect("snapshot");
        let json = serde_json::to_value(&snapshot).expect("json");
        let mut shown = store.list(server).await.expect("list");
        shown.retain(|p| p.shown());
        let listed = serde_json::to_value(shown).expect("json");
        assert_eq!(
            json, listed,
            "the snapshot holds what list gives, but the invisible"
        );
        assert_eq!(snapshot.count(), json.as_array().map_or(0, Vec::len));
        json
    }
    assert_eq!(snapshot(store, server).await[0]["status"], "dnd");
    assert_eq!(
        snapshot(store, server).await[0]["custom_text"],
        "busy",
        "asked twice"
    );
    store
        .set(
            server,
            Presence {
                status: "idle".into(),
                ..presence
            },
        )
        .await
        .expect("replace");
    assert_eq!(
        store
            .get(server, user)
            .await
            .expect("get")
            .map(|p| p.status),
        Some("idle".into())
    );
    assert_eq!(
        snapshot(store, server).await[0]["status"],
        "idle",
        "a change is seen"
    );
    let second = new_id();
    store
        .set(
            server,
            Presence {
                user_id: second,
                status: "online".into(),
                custom_text: None,
                last_active_at: Utc::now(),
            },
        )
        .await
        .expect("set");
    assert_eq!(
        snapshot(store, server).await.as_array().map(Vec::len),
        Some(2)
    );
    // A user appearing offline keeps a stored presence that nobody is shown.
    let invisible = new_id();
    store
        .set(
            server,
            Presence {
                user_id: invisible,
                status: "offline".into(),
                custom_text: None,
                last_active_at: Utc::now(),
            },
        )
        .await
        .expect("set");
    assert_eq!(store.list(server).await.expect("list").len(), 3);
    let shown = snapshot(store, server).await;
    assert_eq!(shown.as_array().map(Vec::len), Some(2), "{shown}");
    assert!(store.remove(server, invisible).await.expect("remove"));
    assert!(store.remove(server, second).await.expect("remove"));
    assert!(store.remove(server, user).await.expect("remove"));
    assert!(
        !store.remove(server, user).await.expect("remove"),
        "removing twice is false"
    );
    assert!(store.list(server).await.expect("list").is_empty());
    assert_eq!(
        snapshot(store, server).await,
        serde_json::json!([]),
        "all gone"
    );
}

/// The [`crate::ports::PresenceStore`] contract across processes: `a` and `b` share their
/// backing (for a store kept in memory, the same store twice), and `a`'s snapshot follows
/// every change made through `b`, however `a` keeps it.
pub async fn presence_shared_contract(
    a: &dyn crate::ports::PresenceStore,
    b: &dyn crate::ports::PresenceStore,
) {
    use crate::ports::{Presence, PresenceStore};
    /// The statuses in `store`'s snapshot of `server`.
    async fn shown(store: &dyn PresenceStore, server: uuid::Uuid) -> Vec<String> {
        let snapshot = store.snapshot(server).await.expect("snapshot");
        let json = serde_json::to_value(&snapshot).expect("json");
        let statuses: Vec<String> = json
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["status"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(statuses.len(), snapshot.count());
        statuses
    }
    let (server, user) = (new_id(), new_id());
    let presence = |status: &str| Presence {
        user_id: user,
        status: status.into(),
        custom_text: None,
        last_active_at: Utc::now(),
    };
    assert!(shown(a, server).await.is_empty());
    b.set(server, presence("online")).await.expect("set");
    assert_eq!(
        shown(a, server).await,
        ["online"],
        "a presence set elsewhere"
    );
    assert_eq!(shown(a, server).await, ["online"], "asked twice");
    b.set(server, presence("dnd")).await.expect("set");
    assert_eq!(shown(a, server).await, ["dnd"], "a change made elsewhere");
    assert!(b.remove(server, user).await.expect("remove"));
    assert!(
        shown(a, server).await.is_empty(),
        "a removal made elsewhere"
    );
    b.set(server, presence("idle")).await.expect("set");
    assert_eq!(shown(a, server).await, ["idle"], "a presence set again");
    assert!(b.remove(server, user).await.expect("remove"));
    // Changes made through `a` itself after its snapshot, then changes made here and elsewhere
    // between two of its snapshots.
    assert!(shown(a, server).await.is_empty());
    a.set(server, presence("online")).await.expect("set");
    assert_eq!(shown(a, server).await, ["online"], "a presence set here");
    a.set(server, presence("dnd")).await.expect("set");
    assert_eq!(shown(a, server).await, ["dnd"], "a change made here");
    let other = new_id();
    b.set(
        server,
        Presence {
            user_id: other,
            ..presence("idle")
        },
    )
    .await
    .expect("set");
    a.set(server, presence("online")).await.expect("set");
    let mut both = shown(a, server).await;
    both.sort();
    assert_eq!(both, ["idle", "online"], "changes here and elsewhere");
    assert!(a.remove(server, other).await.expect("remove"));
    assert_eq!(shown(a, server).await, ["online"], "a removal made here");
    assert!(!a.remove(server, other).await.expect("remove"));
    assert!(a.remove(server, user).await.expect("remove"));
    assert!(shown(a, server).await.is_empty(), "all removed here");
}

/// Reads the next event of `server` from a feed, skipping other servers' events.
async fn next_of(feed: &mut crate::ports::EventStream, server: uuid::Uuid) -> crate::ports::Event {
    loop {
        let next = std::future::poll_fn(|cx| feed.as_mut().poll_next(cx))
            .await
            .expect("feed ended");
        if next.server_id == server {
            return next;
        }
    }
}

/// The [`crate::ports::EventBus`] contract, for two buses of one deployment (two processes;
/// the same bus twice for an in-process bus): every feed that joined a server gets every later
/// event of it, in order; each server is numbered on its own; a partial bus stops carrying a
/// server left and carries it again once joined again.
pub async fn event_bus_contract(buses: [&dyn crate::ports::EventBus; 2], sleep: &Sleep) {
    use crate::ports::{Event, Scope};
    let (server, other) = (new_id(), new_id());
    let mut feeds = Vec::new();
    for bus in buses {
        feeds.push(bus.feed().await.expect("feed"));
        bus.join(server).await.expect("join");
        bus.join(server)
            .await
            .expect("joining twice is joining once");
        bus.join(other).await.expect("join");
    }
    // Let a remote subscription settle before publishing.
    sleep(Duration::from_millis(100)).await;
    let sent: Vec<Event> = (0..20)
        .map(|i| {
            Event::new(
                if i % 3 == 2 { other } else { server },
                if i % 2 == 0 {
                    Scope::Server
                } else {
                    Scope::User(new_id())
                },
                "test.event",
                serde_json::json!({ "i": i }),
            )
        })
        .collect();
    for (i, e) in sent.iter().enumerate() {
        buses[i % 2].publish(e.clone()).await.expect("publish");
    }
    for feed in &mut feeds {
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let next = std::future::poll_fn(|cx| feed.as_mut().poll_next(cx))
                .await
                .expect("feed ended");
            if next.server_id == server || next.server_id == other {
                got.push(next);
            }
        }
        for s in [server, other] {
            let mine: Vec<&Event> = sent.iter().filter(|e| e.server_id == s).collect();
            let theirs: Vec<&Event> = got.iter().filter(|e| e.server_id == s).collect();
            let positions: Vec<u64> = theirs.iter().map(|e| e.position).collect();
            assert_eq!(
                positions,
                (1..=mine.len() as u64).collect::<Vec<_>>(),
                "each server is numbered from 1 on its own"
            );
            assert!(
                theirs.iter().all(|e| e.published_ms > 0),
                "every event carries its publication time"
            );
            let unpositioned: Vec<Event> = theirs
                .into_iter()
                .map(|e| Event {
                    position: 0,
                    published_ms: 0,
                    ..e.clone()
                })
                .collect();
            assert_eq!(
                unpositioned.iter().collect::<Vec<_>>(),
                mine,
                "every feed sees every event of a joined server, in publication order"
            );
        }
    }
    for bus in buses {
        assert_eq!(bus.head(server).await.expect("head"), 14);
        assert_eq!(bus.head(other).await.expect("head"), 6);
        assert_eq!(
            bus.head(new_id()).await.expect("head"),
            0,
            "an unknown server"
        );
    }
    if !buses[0].partial() {
        return;
    }
    // The first process leaves `other`: its events reach only the second one, until the first
    // joins it again.
    buses[0].leave(other).await.expect("leave");
    sleep(Duration::from_millis(100)).await;
    let unheard = Event::new(other, Scope::Server, "test.unheard", serde_json::json!({}));
    buses[1].publish(unheard).await.expect("publish");
    let heard = Event::new(server, Scope::Server, "test.heard", serde_json::json!({}));
    buses[1].publish(heard).await.expect("publish");
    assert_eq!(next_of(&mut feeds[1], other).await.name, "test.unheard");
    let mut first = Vec::new();
    loop {
        let next = std::future::poll_fn(|cx| feeds[0].as_mut().poll_next(cx))
            .await
            .expect("feed ended");
        let done = next.name == "test.heard";
        first.push(next.name);
        if done {
            break;
        }
    }
    assert_eq!(first, vec!["test.heard"], "a server left is not carried");
    buses[0].join(other).await.expect("join again");
    let back = Event::new(other, Scope::Server, "test.back", serde_json::json!({}));
    buses[1].publish(back).await.expect("publish");
    let got = next_of(&mut feeds[0], other).await;
    assert_eq!((got.name.as_str(), got.position), ("test.back", 8));
}

/// The log half of the [`crate::ports::EventBus`] contract, for a bus built to keep exactly
/// `log_events` events of a server (at least 2, at most 50): `since` returns the server's
/// logged events after a position, in order, and `None` once the log no longer reaches back
/// there; another server's events take no room in it.
pub async fn event_log_contract(bus: &dyn crate::ports::EventBus, log_events: usize) {
    use crate::ports::{Event, Scope};
    let (server, other) = (new_id(), new_id());
    assert_eq!(bus.head(server).await.expect("head"), 0);
    assert_eq!(
        bus.since(server, 0).await.expect("since"),
        Some(Vec::new()),
        "nothing after the head"
    );
    assert_eq!(
        bus.since(server, 1).await.expect("since"),
        None,
        "beyond the head"
    );
    for i in 0..(log_events + 10) {
        for s in [server, other] {
            bus.publish(Event::new(
                s,
                Scope::Server,
                "test.logged",
                serde_json::json!({ "i": i }),
            ))
            .await
            .expect("publish");
        }
    }
    let head = bus.head(server).await.expect("head");
    assert_eq!(head, log_events as u64 + 10, "one position per event");
    let tail = bus
        .since(server, head - 3)
        .await
        .expect("since")
        .expect("retained");
    assert_eq!(
        tail.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![head - 2, head - 1, head]
    );
    assert!(tail.iter().all(|e| e.server_id == server));
    assert_eq!(
        tail.iter().map(|e| e.data["i"].clone()).collect::<Vec<_>>(),
        (log_events + 7..log_events + 10)
            .map(|i| serde_json::json!(i))
            .collect::<Vec<_>>()
    );
    let oldest = head - log_events as u64 + 1;
    let all = bus
        .since(server, oldest - 1)
        .await
        .expect("since")
        .expect("retained");
    assert_eq!(all.len(), log_events, "the log keeps its bound");
    assert_eq!(
        bus.since(server, oldest - 2).await.expect("since"),
        None,
        "trimmed events are reported as a gap"
    );
}

/// The [`crate::ports::SessionBuffer`] contract: checkpoints newest first, same-seq
/// replacement, the bound, claims, and forgetting.
pub async fn session_buffer_contract(buffer: &dyn crate::ports::SessionBuffer) {
    use crate::ports::{Checkpoint, CHECKPOINTS_KEPT};
    let session_id = new_id();
    let first = new_id();
    let cp = |incarnation, seq, position| Checkpoint {
        session_id,
        incarnation,
        server_id: uuid::Uuid::nil(),
        user_id: uuid::Uuid::nil(),
        seq,
        position,
        log: crate::ports::PER_SERVER_LOG,
        subscriptions: vec![uuid::Uuid::nil()],
        detached: false,
    };
    assert!(buffer.load(session_id).await.expect("load").is_empty());
    assert!(buffer.save(&cp(first, 0, 10)).await.expect("save"));
    assert!(buffer.save(&cp(first, 3, 20)).await.expect("save"));
    assert!(buffer.save(&cp(first, 3, 25)).await.expect("save"));
    let saved = buffer.load(session_id).await.expect("load");
    assert_eq!(
        saved
            .iter()
            .map(|c| (c.seq, c.position))
            .collect::<Vec<_>>(),
        vec![(3, 25), (0, 10)],
        "newest first; the same seq replaces"
    );
    assert_eq!(saved[0], cp(first, 3, 25), "round trip");
    let second = new_id();
    buffer.claim(session_id, second).await.expect("claim");
    assert!(
        !buffer.save(&cp(first, 4, 30)).await.expect("save"),
        "a stale incarnation may not write"
    );
    assert!(buffer.save(&cp(second, 5, 40)).await.expect("save"));
    for seq in 6..(6 + CHECKPOINTS_KEPT as u64) {
        buffer.save(&cp(second, seq, seq * 10)).await.expect("save");
    }
    let saved = buffer.load(session_id).await.expect("load");
    assert_eq!(saved.len(), CHECKPOINTS_KEPT, "bounded");
    assert_eq!(saved[0].seq, 5 + CHECKPOINTS_KEPT as u64);
    buffer.forget(session_id).await.expect("forget");
    assert!(buffer.load(session_id).await.expect("load").is_empty());
    detached_sessions_contract(buffer).await;
}

/// `SessionBuffer::detached`: a user's sessions whose newest checkpoint is detached, most
/// recently detached first; a later live checkpoint, another user or server, or forgetting
/// takes a session out.
async fn detached_sessions_contract(buffer: &dyn crate::ports::SessionBuffer) {
    use crate::ports::Checkpoint;
    let (server_id, user_id) = (new_id(), new_id());
    let cp = |session_id, incarnation, seq, detached, user_id| Checkpoint {
        session_id,
        incarnation,
        server_id,
        user_id,
        seq,
        position: seq * 10,
        log: crate::ports::PER_SERVER_LOG,
        subscriptions: Vec::new(),
        detached,
    };
    let ids = |found: Vec<Vec<Checkpoint>>| -> Vec<uuid::Uuid> {
        found.iter().map(|cps| cps[0].session_id).collect()
    };
    assert!(buffer
        .detached(server_id, user_id)
        .await
        .expect("detached")
        .is_empty());
    let (a, b, c, other) = (new_id(), new_id(), new_id(), new_id());
    let inc = new_id();
    buffer
        .save(&cp(a, inc, 1, false, user_id))
        .await
        .expect("save");
    buffer
        .save(&cp(a, inc, 4, true, user_id))
        .await
        .expect("save");
    buffer
        .save(&cp(b, inc, 2, false, user_id))
        .await
        .expect("save");
    buffer
        .save(&cp(other, inc, 2, true, new_id()))
        .await
        .expect("save");
    assert_eq!(
        ids(buffer.detached(server_id, user_id).await.expect("detached")),
        vec![a],
        "only detached sessions of this user"
    );
    let found = buffer.detached(server_id, user_id).await.expect("detached");
    assert_eq!(
        found[0].iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![4, 1],
        "with their checkpoints, newest first"
    );
    buffer
        .save(&cp(c, inc, 7, true, user_id))
        .await
        .expect("save");
    assert_eq!(
        ids(buffer.detached(server_id, user_id).await.expect("detached")),
        vec![c, a],
        "most recently detached first"
    );
    let resumed = new_id();
    buffer.claim(a, resumed).await.expect("claim");
    buffer
        .save(&cp(a, resumed, 5, false, user_id))
        .await
        .expect("save");
    assert_eq!(
        ids(buffer.detached(server_id, user_id).await.expect("detached")),
        vec![c],
        "a resumed session is live again"
    );
    buffer.forget(c).await.expect("forget");
    assert!(
        buffer
            .detached(server_id, user_id)
            .await
            .expect("detached")
            .is_empty(),
        "forgotten"
    );
}

/// The [`crate::ports::VoiceStateStore`] contract: one state per user and server, set
/// replaces, removal bound to the holding session (or any), lists per server.
pub async fn voice_state_contract(store: &dyn crate::ports::VoiceStateStore) {
    use crate::ports::VoiceState;
    let (server, other_server) = (new_id(), new_id());
    let (alice, bob) = (new_id(), new_id());
    let (channel, session, later) = (new_id(), new_id(), new_id());
    let state = |user_id, session_id, self_mute| VoiceState {
        user_id,
        channel_id: channel,
        session_id,
        self_mute,
        self_deaf: false,
        server_mute: false,
        server_deaf: false,
        video_enabled: false,
        connected_at: Utc::now(),
    };
    assert!(store.get(server, alice).await.expect("get").is_none());
    store
        .set(server, state(alice, session, false))
        .await
        .expect("set");
    store
        .set(server, state(alice, session, true))
        .await
        .expect("set");
    store
        .set(server, state(bob, later, false))
        .await
        .expect("set");
    store
        .set(other_server, state(alice, session, false))
        .await
        .expect("set");
    let got = store
        .get(server, alice)
        .await
        .expect("get")
        .expect("stored");
    assert!(got.self_mute, "set replaces");
    assert_eq!(got.session_id, session, "the holding session round-trips");
    let listed = store.list(server).await.expect("list");
    assert_eq!(listed.len(), 2, "one state per user, this server only");
    assert!(
        store
            .remove(server, alice, Some(later))
            .await
            .expect("remove")
            .is_none(),
        "another session cannot remove it"
    );
    let removed = store
        .remove(server, alice, Some(session))
        .await
        .expect("remove")
        .expect("removed");
    assert_eq!(removed.user_id, alice);
    assert!(store.get(server, alice).await.expect("get").is_none());
    assert!(
        store
            .remove(server, bob, None)
            .await
            .expect("remove")
            .is_some(),
        "any session"
    );
    assert!(store.list(server).await.expect("list").is_empty());
    assert_eq!(store.list(other_server).await.expect("list").len(), 1);
}
