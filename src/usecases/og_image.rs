//! `GET /og-image` (reference §2.6): what a server's link card shows, with a version that
//! changes whenever anything drawn does, and the card's images read from this server's own
//! stored uploads. The inbound adapter draws the card and keeps it by that version.

use super::base::file_names::own_image_key;
use super::base::loaders;
use crate::model::Server;
use crate::ports::BlobKey;
use crate::{CoreResult, HostingMode, Services};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The largest stored image read for a card (uploads allow 2 MiB icons and 800 KiB banners).
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;

/// A badge of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardBadge {
    /// The process runs in the self-hosted profile.
    SelfHosted,
    /// The process runs in the managed profile.
    CentralHosted,
    /// Synchronisation with ecto-central is configured (`CENTRAL_URL` and `CENTRAL_SYNC_KEY`),
    /// or the server is marked as connected to it.
    Central,
    /// The server asked to be listed and ecto-central approved it.
    Discoverable,
    /// The shared file hub is on (`file_browser_enabled`).
    FileSharing,
    /// Joining needs an invite.
    InviteOnly,
}

impl CardBadge {
    fn id(self) -> &'static str {
        match self {
            CardBadge::SelfHosted => "self-hosted",
            CardBadge::CentralHosted => "central-hosted",
            CardBadge::Central => "central",
            CardBadge::Discoverable => "discoverable",
            CardBadge::FileSharing => "file-sharing",
            CardBadge::InviteOnly => "invite-only",
        }
    }
}

/// What a server's card shows.
#[derive(Debug, Clone, PartialEq)]
pub struct OgCard {
    pub server_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// The stored upload behind the icon URL, when it is one of this server's.
    pub icon: Option<BlobKey>,
    /// The stored upload behind the banner URL, when it is one of this server's.
    pub banner: Option<BlobKey>,
    pub member_count: i64,
    pub badges: Vec<CardBadge>,
    /// The discovery tags, only while the server is discoverable.
    pub tags: Vec<String>,
    /// Hex SHA-256 of everything above: equal versions draw the same card.
    pub version: String,
}

/// The card of `server`: its row, configuration and member count (no image is read).
pub async fn card(svc: &Services, server: &Server) -> CoreResult<OgCard> {
    let config = loaders::config(svc, server.id).await?;
    let member_count = svc.servers.member_count(server.id).await?;
    let mut badges = vec![match svc.settings.hosting_mode {
        HostingMode::SelfHosted => CardBadge::SelfHosted,
        HostingMode::Managed => CardBadge::CentralHosted,
    }];
    if server.central_connected || svc.central_client.is_some() {
        badges.push(CardBadge::Central);
    }
    if config.discoverable && config.discovery_approved {
        badges.push(CardBadge::Discoverable);
    }
    if config.max_shared_storage_bytes > 0 {
        badges.push(CardBadge::FileSharing);
    }
    if config.require_invite {
        badges.push(CardBadge::InviteOnly);
    }
    let image = |url: &Option<String>| url.as_deref().and_then(|u| own_image_key(server, u));
    let mut card = OgCard {
        server_id: server.id,
        name: server.name.clone(),
        description: server.description.clone().filter(|d| !d.trim().is_empty()),
        icon: image(&server.icon_url),
        banner: image(&server.banner_url),
        member_count,
        badges,
        tags: if config.discoverable {
            config.tags.clone()
        } else {
            Vec::new()
        },
        version: String::new(),
    };
    card.version = version(&card);
    Ok(card)
}

/// The digest of what `card` draws; each field length-prefixed, so no two cards share one.
fn version(card: &OgCard) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(card.server_id.as_bytes());
    field(card.name.as_bytes());
    field(card.description.as_deref().unwrap_or("\0none").as_bytes());
    field(
        card.icon
            .as_ref()
            .map_or("\0none", BlobKey::as_str)
            .as_bytes(),
    );
    field(
        card.banner
            .as_ref()
            .map_or("\0none", BlobKey::as_str)
            .as_bytes(),
    );
    field(&card.member_count.to_le_bytes());
    for badge in &card.badges {
        field(badge.id().as_bytes());
    }
    field(b"\0tags");
    for tag in &card.tags {
        field(tag.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// The bytes of the stored image at `key`, or `None` when it is missing, larger than
/// [`MAX_IMAGE_BYTES`] or unreadable (the card is then drawn without it; the failure is
/// logged). Only keys of [`card`] come here: never a URL, never another server's file.
pub async fn image(svc: &Services, key: &BlobKey) -> Option<Vec<u8>> {
    let read = async {
        let Some(mut blob) = svc.blobs.get(key, None, None).await? else {
            return Ok(None);
        };
        if blob.size > MAX_IMAGE_BYTES as u64 {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(blob.len as usize);
        while let Some(chunk) = std::future::poll_fn(|cx| blob.body.as_mut().poll_next(cx)).await {
            let chunk = chunk.map_err(crate::CoreError::internal)?;
            if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk);
        }
        CoreResult::Ok(Some(bytes))
    };
    match read.await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(key = key.as_str(), error = %e, "og-image: stored image unreadable");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OgCard {
        let mut card = OgCard {
            server_id: Uuid::nil(),
            name: "Name".into(),
            description: Some("Description".into()),
            icon: None,
            banner: None,
            member_count: 3,
            badges: vec![CardBadge::SelfHosted],
            tags: vec!["a".into(), "b".into()],
            version: String::new(),
        };
        card.version = version(&card);
        card
    }

    #[test]
    fn the_version_changes_with_everything_drawn() {
        let base = sample();
        assert_eq!(version(&base), base.version, "deterministic");
        let key = BlobKey::new("x/icons/icon-1.png").ok();
        type Change<'a> = Box<dyn Fn(&mut OgCard) + 'a>;
        let changes: Vec<(&str, Change<'_>)> = vec![
            ("name", Box::new(|c| c.name.push('!'))),
            ("description", Box::new(|c| c.description = None)),
            ("icon", Box::new(|c| c.icon = key.clone())),
            ("banner", Box::new(|c| c.banner = key.clone())),
            ("members", Box::new(|c| c.member_count += 1)),
            ("badges", Box::new(|c| c.badges.push(CardBadge::InviteOnly))),
            ("tags", Box::new(|c| c.tags.pop().map_or((), drop))),
            ("tag split", Box::new(|c| c.tags = vec!["ab".into()])),
            ("server", Box::new(|c| c.server_id = Uuid::max())),
        ];
        for (what, change) in changes {
            let mut changed = sample();
            change(&mut changed);
            assert_ne!(version(&changed), base.version, "{what}");
        }
    }
}
