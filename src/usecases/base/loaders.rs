//! The memo loaders: the server's permission data, channels, categories, configuration,
//! memberships and member views, read from this process's memo when they have not changed
//! since, else from the stores (and kept). The lowest layer that knows the memo; everything
//! that needs these reads goes through here.

use crate::memo::{Membership, Whole};
use crate::model::{Category, Channel, Member, MemberView, PermissionData, ServerConfig};
use crate::{CoreResult, Services};
use std::sync::Arc;
use uuid::Uuid;

/// The membership of `user_id` in the server with its role ids, from this process's memo when
/// it has not changed.
pub async fn membership(
    svc: &Services,
    server_id: Uuid,
    user_id: Uuid,
) -> CoreResult<Option<Arc<Membership>>> {
    if let Some(known) = svc.memo.membership(server_id, user_id) {
        return Ok(Some(known));
    }
    let _turn = svc.memo.turn::<Membership>(server_id, user_id).await;
    if let Some(known) = svc.memo.membership(server_id, user_id) {
        return Ok(Some(known));
    }
    let generation = svc.memo.generation(server_id);
    let Some(member) = svc.members.get(server_id, user_id).await? else {
        return Ok(None);
    };
    let roles = svc.members.role_ids(member.id).await?;
    let known = Arc::new(Membership { member, roles });
    svc.memo
        .keep_membership(server_id, generation, known.clone());
    Ok(Some(known))
}

/// The server's `T`, from this process's memo when it has not changed since `load` would
/// have read it; one load at a time (see [`crate::memo::Memo::turn`]).
async fn memoized<T: Whole, F: std::future::Future<Output = CoreResult<T>>>(
    svc: &Services,
    server_id: Uuid,
    load: impl FnOnce() -> F,
) -> CoreResult<Arc<T>> {
    if let Some(known) = svc.memo.whole::<T>(server_id) {
        return Ok(known);
    }
    let _turn = svc.memo.turn::<T>(server_id, Uuid::nil()).await;
    if let Some(known) = svc.memo.whole::<T>(server_id) {
        return Ok(known);
    }
    let generation = svc.memo.generation(server_id);
    let loaded = Arc::new(load().await?);
    svc.memo.keep_whole(server_id, generation, loaded.clone());
    Ok(loaded)
}

/// The server's permission data (roles and overrides), memoized.
pub async fn permission_data(svc: &Services, server_id: Uuid) -> CoreResult<Arc<PermissionData>> {
    memoized(svc, server_id, || svc.structure.permission_data(server_id)).await
}

/// The server's channels in the store's order, memoized.
pub async fn channels(svc: &Services, server_id: Uuid) -> CoreResult<Arc<Vec<Channel>>> {
    memoized(svc, server_id, || svc.structure.channels(server_id)).await
}

/// The channel `id` of the server (or `None`), from the memoized [`channels`].
pub async fn channel(svc: &Services, server_id: Uuid, id: Uuid) -> CoreResult<Option<Channel>> {
    Ok(channels(svc, server_id)
        .await?
        .iter()
        .find(|c| c.id == id)
        .cloned())
}

/// The server's categories, memoized.
pub async fn categories(svc: &Services, server_id: Uuid) -> CoreResult<Arc<Vec<Category>>> {
    memoized(svc, server_id, || svc.structure.categories(server_id)).await
}

/// The server's configuration, memoized.
pub async fn config(svc: &Services, server_id: Uuid) -> CoreResult<Arc<ServerConfig>> {
    memoized(svc, server_id, || svc.servers.config(server_id)).await
}

/// The member view of `member` (roles and profile), from this process's memo when it has not
/// changed; else from the memoized [`membership`] (member row and role ids) and the member's
/// profile. (Not `ModerationStore::member_views`: its `IN` lists make SQLite prepare three
/// statements on every call, which perf showed at 3 % of a fresh server's connect CPU.)
pub async fn member_view(svc: &Services, member: &Member) -> CoreResult<Option<Arc<MemberView>>> {
    if let Some(view) = svc.memo.member_view(member.server_id, member.user_id) {
        return Ok(Some(view));
    }
    let _turn = svc
        .memo
        .turn::<MemberView>(member.server_id, member.user_id)
        .await;
    if let Some(view) = svc.memo.member_view(member.server_id, member.user_id) {
        return Ok(Some(view));
    }
    let generation = svc.memo.generation(member.server_id);
    let Some(membership) = membership(svc, member.server_id, member.user_id).await? else {
        return Ok(None);
    };
    let profile = svc
        .accounts
        .profile(member.server_id, member.user_id)
        .await?;
    let view = Arc::new(MemberView::new(
        &membership.member,
        membership.roles.clone(),
        profile,
    ));
    svc.memo
        .keep_member_view(member.server_id, generation, view.clone());
    Ok(Some(view))
}
