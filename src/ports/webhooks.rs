//! Incoming webhooks of channels.

use crate::model::{NewAudit, Webhook};
use crate::CoreResult;
use async_trait::async_trait;
use uuid::Uuid;

/// Webhooks, looked up within a server (through their channel).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a webhook of a channel of the server, with its audit entry.
    async fn create(&self, webhook: Webhook, audit: NewAudit) -> CoreResult<()>;
    /// The webhooks of a channel of the server, oldest first.
    async fn list(&self, server_id: Uuid, channel_id: Uuid) -> CoreResult<Vec<Webhook>>;
    /// The webhook `id` if its channel is in the server.
    async fn get(&self, server_id: Uuid, id: Uuid) -> CoreResult<Option<Webhook>>;
    /// The webhook `id` with the server owning its channel, whatever the server (for the
    /// public execution route, which authenticates by token).
    async fn find(&self, id: Uuid) -> CoreResult<Option<(Uuid, Webhook)>>;
    /// Deletes it; `false` when not in the server.
    async fn delete(&self, server_id: Uuid, id: Uuid, audit: NewAudit) -> CoreResult<bool>;
    /// Replaces its token; `false` when not in the server.
    async fn set_token(
        &self,
        server_id: Uuid,
        id: Uuid,
        token: &str,
        audit: NewAudit,
    ) -> CoreResult<bool>;
}
