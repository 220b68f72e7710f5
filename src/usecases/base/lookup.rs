//! Lookups several use cases share, read from the stores (not the memo: see
//! [`super::loaders`] for the memoized reads): a channel of the server, and the authors or
//! usernames of a set of users.

use crate::model::{Channel, MessageAuthor};
use crate::{CoreError, CoreResult, Services};
use std::collections::HashMap;
use uuid::Uuid;

/// The channel `id` of the server, read from the store: NOT_FOUND 3000 when it is not one of
/// this server's.
pub async fn channel(svc: &Services, server_id: Uuid, id: Uuid) -> CoreResult<Channel> {
    svc.structure
        .channel(server_id, id)
        .await?
        .ok_or_else(CoreError::channel_not_found)
}

/// The authors known for `users` on the server (each asked once, in id order); users without
/// a known profile are absent.
pub async fn authors(
    svc: &Services,
    server_id: Uuid,
    users: impl IntoIterator<Item = Uuid>,
) -> CoreResult<HashMap<Uuid, MessageAuthor>> {
    let mut ids: Vec<Uuid> = users.into_iter().collect();
    ids.sort();
    ids.dedup();
    svc.messages.authors(server_id, &ids).await
}

/// Usernames of `users` on the server; see [`name_of`] for those without a known profile.
pub async fn usernames(
    svc: &Services,
    server_id: Uuid,
    users: impl IntoIterator<Item = Uuid>,
) -> CoreResult<HashMap<Uuid, String>> {
    Ok(authors(svc, server_id, users)
        .await?
        .into_iter()
        .map(|(id, a)| (id, a.username))
        .collect())
}

/// The username of `id` in `names`, `Unknown` when it has none.
pub fn name_of(names: &HashMap<Uuid, String>, id: Uuid) -> String {
    names.get(&id).cloned().unwrap_or_else(|| "Unknown".into())
}
