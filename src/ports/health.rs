//! Readiness of a backing service.

use crate::CoreResult;
use async_trait::async_trait;

/// A backing service `/ready` depends on.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// The service's name as shown by `/ready` (`database`, `redis`).
    fn name(&self) -> &'static str;
    /// `Ok` when one round trip to the service succeeded.
    async fn check(&self) -> CoreResult<()>;
}
