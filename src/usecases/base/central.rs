//! Synchronisation with ecto-central (reference §2.6, "Outbound calls to central"): the calls
//! the changes queue (built here, queued by the stores in the change's own transaction), their
//! delivery in order per server with retries, and what central's answers change.
//!
//! Calls are queued only when both `CENTRAL_URL` and `CENTRAL_SYNC_KEY` are configured and the
//! server has an address (its own, or `SERVER_ADDRESS`): central knows servers by address.

use super::lookup;
use super::publish::publish;
use super::views::unknown_author;
use crate::model::{
    NewSync, NewsPostPatch, NewsPostRecord, NewsPostView, Server, ServerConfig, ServerView,
    Timestamp,
};
use crate::ports::{CentralClient, Scope, SyncOutcome};
use crate::{CoreResult, Services};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// The subject of metadata calls.
pub const METADATA: &str = "metadata";
/// The subject of discovery register / unregister calls.
pub const DISCOVERY: &str = "discovery";

/// How long a request that waits for central's answer waits before it answers without it.
pub const ANSWER_WAIT: Duration = Duration::from_secs(6);
/// How long a process holds a server's delivery right without renewing it: longer than one
/// call may take, so only a stalled process loses it.
const LEASE_MS: i64 = 30_000;
/// Servers looked at per delivery pass.
const SERVERS_PER_PASS: i64 = 100;

/// The address central knows the server by, when sync is configured at all.
fn address(svc: &Services, server: &Server) -> Option<String> {
    svc.central_client.as_ref()?;
    server
        .address
        .clone()
        .or_else(|| svc.settings.server_address.clone())
        .filter(|a| !a.is_empty())
}

/// A time as the wire writes it (ISO-8601, UTC, milliseconds).
fn iso(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn call(subject: impl Into<String>, path: &'static str, body: serde_json::Value) -> NewSync {
    NewSync {
        subject: subject.into(),
        path,
        body: body.to_string(),
    }
}

/// What metadata and discovery calls say of the server, plus `extra` (`key`, value).
fn server_body(server: &Server, address: String, extra: (&str, serde_json::Value)) -> String {
    let mut body = json!({
        "server_id": server.id,
        "address": address,
        "name": server.name,
        "description": server.description,
        "icon_url": server.icon_url,
        "banner_url": server.banner_url,
    });
    body[extra.0] = extra.1;
    body.to_string()
}

/// `server-metadata-sync` with the server as `server` is now.
pub fn metadata(svc: &Services, server: &Server) -> Option<NewSync> {
    let address = address(svc, server)?;
    Some(NewSync {
        subject: METADATA.into(),
        path: "/api/server-metadata-sync",
        body: server_body(
            server,
            address,
            ("default_channel_id", json!(server.default_channel_id)),
        ),
    })
}

/// `invite-register` of a new invite.
pub fn invite_register(
    svc: &Services,
    server: &Server,
    code: &str,
    expires_at: Option<Timestamp>,
) -> Option<NewSync> {
    let address = address(svc, server)?;
    Some(call(
        code,
        "/api/invite-register",
        json!({
            "code": code,
            "server_id": server.id,
            "address": address,
            "expires_at": expires_at.map(iso),
        }),
    ))
}

/// `invite-unregister` of a revoked invite.
pub fn invite_unregister(svc: &Services, server: &Server, code: &str) -> Option<NewSync> {
    address(svc, server)?;
    Some(call(
        code,
        "/api/invite-unregister",
        json!({ "code": code, "server_id": server.id }),
    ))
}

/// `discovery-register` of the server with `config` when it is discoverable, else
/// `discovery-unregister`.
pub fn discovery(svc: &Services, server: &Server, config: &ServerConfig) -> Option<NewSync> {
    let address = address(svc, server)?;
    if !config.discoverable {
        return Some(discovery_unregister(server.id));
    }
    Some(NewSync {
        subject: DISCOVERY.into(),
        path: "/api/discovery-register",
        body: server_body(server, address, ("tags", json!(config.tags))),
    })
}

fn discovery_unregister(server_id: Uuid) -> NewSync {
    call(
        DISCOVERY,
        "/api/discovery-unregister",
        json!({ "server_id": server_id }),
    )
}

/// What deleting the server tells central: it leaves discovery when it was discoverable.
pub fn server_deleted(svc: &Services, server: &Server, config: &ServerConfig) -> Vec<NewSync> {
    match address(svc, server) {
        Some(_) if config.discoverable => vec![discovery_unregister(server.id)],
        _ => Vec::new(),
    }
}

/// The call that tells central about `post` as it is now: `discovery-post-sync` while it is
/// submitted, `discovery-post-delete` when it is not (it was retracted). `was_submitted` is
/// whether central had it before the change: a post never submitted needs no call.
pub fn post(
    svc: &Services,
    server: &Server,
    post: &NewsPostRecord,
    was_submitted: bool,
) -> Option<NewSync> {
    let address = address(svc, server)?;
    if !post.submitted_to_discovery {
        return was_submitted.then(|| post_delete(post.id));
    }
    Some(call(
        post.id.to_string(),
        "/api/discovery-post-sync",
        json!({
            "post_id": post.id,
            "server_id": server.id,
            "address": address,
            "channel_id": post.channel_id,
            "author_id": post.author_id,
            "title": post.title,
            "subtitle": post.subtitle,
            "hero_image_url": post.hero_image_url,
            "content": post.content,
            "published_at": iso(post.published_at),
            "updated_at": iso(post.updated_at),
        }),
    ))
}

/// What deleting `post` tells central: `discovery-post-delete` when it had the post.
pub fn post_deleted(svc: &Services, server: &Server, post: &NewsPostRecord) -> Option<NewSync> {
    address(svc, server)?;
    post.submitted_to_discovery.then(|| post_delete(post.id))
}

/// `discovery-post-delete` of a post central had.
fn post_delete(post_id: Uuid) -> NewSync {
    call(
        post_id.to_string(),
        "/api/discovery-post-delete",
        json!({ "post_id": post_id }),
    )
}

/// Waits (at most [`ANSWER_WAIT`]) until the server's calls about `subject` have gone out,
/// for a request whose answer depends on central's: `true` when they have. Always `true`
/// when sync is off.
pub async fn settle(svc: &Services, server_id: Uuid, subject: &str) -> CoreResult<bool> {
    if svc.central_client.is_none() {
        return Ok(true);
    }
    svc.outbox.settle(server_id, subject, ANSWER_WAIT).await
}

/// Whether ecto-central synchronisation is configured (`CENTRAL_URL` and `CENTRAL_SYNC_KEY`).
pub fn enabled(svc: &Services) -> bool {
    svc.central_client.is_some()
}

/// Whether calls about `subject` of the server are still waiting to go out.
pub async fn pending(svc: &Services, server_id: Uuid, subject: &str) -> CoreResult<bool> {
    if svc.central_client.is_none() {
        return Ok(false);
    }
    Ok(svc
        .outbox
        .pending(server_id)
        .await?
        .iter()
        .any(|s| s == subject))
}

/// The delay before attempt `attempts + 1` of a failed call: 1 s, doubling, at most the
/// configured ceiling.
fn backoff(svc: &Services, attempts: i32) -> i64 {
    let ceiling = svc.settings.central_retry_max.as_millis() as i64;
    let doubled = 1000i64.saturating_mul(1i64 << attempts.clamp(0, 30));
    doubled.min(ceiling).max(100)
}

/// One delivery pass of this process (`owner` names it across the deployment): for each server
/// whose first queued call is due and whose delivery right this process takes, sends its calls
/// in order until one fails (it is tried again after a backoff, and the server's later calls
/// wait behind it) or none is left. Returns how many calls went out.
pub async fn deliver_due(svc: &Services, owner: &str) -> CoreResult<usize> {
    let Some(client) = svc.central_client.clone() else {
        return Ok(0);
    };
    let now = svc.clock.now().timestamp_millis();
    let mut sent = 0;
    for server_id in svc.outbox.due_servers(now, SERVERS_PER_PASS).await? {
        if !svc
            .outbox
            .lease(server_id, owner, now, now + LEASE_MS)
            .await?
        {
            continue;
        }
        let delivered = deliver_server(svc, &*client, server_id, owner).await;
        svc.outbox.release(server_id, owner).await?;
        sent += delivered?;
    }
    Ok(sent)
}

/// Sends the server's queued calls in order while `owner` holds its lease (taken by the
/// caller, renewed after each call), until one fails or none is left.
async fn deliver_server(
    svc: &Services,
    client: &dyn CentralClient,
    server_id: Uuid,
    owner: &str,
) -> CoreResult<usize> {
    let mut sent = 0;
    while let Some(queued) = svc.outbox.head(server_id).await? {
        match client.call(&queued.path, &queued.body).await {
            SyncOutcome::Answered(answer) => {
                // The answer is applied before the call leaves the queue: a request waiting for
                // the call to go out ([`settle`]) then reads what central answered.
                apply_answer(svc, server_id, &queued.path, &queued.subject, &answer).await?;
                if !svc.outbox.remove(server_id, queued.seq, owner).await? {
                    return Ok(sent);
                }
                sent += 1;
            }
            SyncOutcome::Refused(why) => {
                tracing::warn!(
                    server = %server_id, path = %queued.path, %why,
                    "ecto-central refused a sync call; it is dropped"
                );
                if !svc.outbox.remove(server_id, queued.seq, owner).await? {
                    return Ok(sent);
                }
            }
            SyncOutcome::Failed(why) => {
                let next = svc.clock.now().timestamp_millis() + backoff(svc, queued.attempts);
                tracing::info!(
                    server = %server_id, path = %queued.path, attempts = queued.attempts + 1, %why,
                    "a sync call to ecto-central failed; it will be tried again"
                );
                svc.outbox
                    .retry_later(server_id, queued.seq, next, &why)
                    .await?;
                return Ok(sent);
            }
        }
        let now = svc.clock.now().timestamp_millis();
        if !svc
            .outbox
            .lease(server_id, owner, now, now + LEASE_MS)
            .await?
        {
            return Ok(sent);
        }
    }
    Ok(sent)
}

/// What central's answer to a call changes here: a discovery registration's `{approved}`
/// (an unregistration means not approved), a post's `{validation_errors}`.
async fn apply_answer(
    svc: &Services,
    server_id: Uuid,
    path: &str,
    subject: &str,
    answer: &serde_json::Value,
) -> CoreResult<()> {
    match path {
        "/api/discovery-register" | "/api/discovery-unregister" => {
            // An unregistration means not approved.
            let approved = path == "/api/discovery-register"
                && answer
                    .get("approved")
                    .and_then(|a| a.as_bool())
                    .unwrap_or(false);
            if let Some(server) = svc.servers.get(server_id).await? {
                set_approval(svc, &server, approved).await?;
            }
        }
        "/api/discovery-post-sync" => {
            let Ok(post_id) = subject.parse::<Uuid>() else {
                return Ok(());
            };
            let errors: Option<Vec<String>> = answer
                .get("validation_errors")
                .and_then(|e| serde_json::from_value(e.clone()).ok())
                .filter(|e: &Vec<String>| !e.is_empty());
            set_validation_errors(svc, server_id, post_id, errors).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Sets the server's `discovery_approved`, as central decided it (its answer to a discovery
/// call, or its push), and tells the server's sessions (`server.update`, the Server object
/// with its configuration keys). NOT_FOUND when the server has no configuration row.
pub async fn set_approval(svc: &Services, server: &Server, approved: bool) -> CoreResult<()> {
    let config = svc
        .servers
        .set_discovery_approved(server.id, approved, svc.clock.now())
        .await?
        .ok_or_else(crate::CoreError::server_not_found)?;
    let view = ServerView::new(server, &config, svc.settings.hosting_mode, true);
    publish(svc, server.id, Scope::Server, "server.update", &view).await;
    Ok(())
}

/// Stores what central found wrong with a submitted post and, when that changed, tells the
/// post's channel (`news.post_update`).
async fn set_validation_errors(
    svc: &Services,
    server_id: Uuid,
    post_id: Uuid,
    errors: Option<Vec<String>>,
) -> CoreResult<()> {
    let Some(before) = svc.content.post(server_id, post_id).await? else {
        return Ok(());
    };
    if before.discovery_validation_errors == errors {
        return Ok(());
    }
    let patch = NewsPostPatch {
        discovery_validation_errors: Some(errors),
        ..NewsPostPatch::default()
    };
    let Some(post) = svc
        .content
        .update_post(server_id, post_id, patch, before.updated_at, None)
        .await?
    else {
        return Ok(());
    };
    let author = lookup::authors(svc, server_id, [post.author_id])
        .await?
        .remove(&post.author_id)
        .unwrap_or_else(|| unknown_author(post.author_id));
    let channel = post.channel_id;
    let view = NewsPostView::new(post, author);
    publish(
        svc,
        server_id,
        Scope::Channel(channel),
        "news.post_update",
        &view,
    )
    .await;
    Ok(())
}
