//! Rate limits of inbound calls (DECISIONS §3.19): which buckets a call takes a token from, and
//! the error a limited call gets (TOO_MANY_REQUESTS, ecto code 9000, with `retry_after`).
//!
//! Buckets, each configured in [`crate::ports::RateLimits`]:
//! - `rl:user:{server_id}:{user_id}`: every tRPC call of an authenticated caller;
//! - `rl:ip:{ip}`: every tRPC call without one;
//! - `rl:join:{ip}`: `server.join` and `server.refreshToken` in addition (credential guessing);
//! - `rl:webhook:{webhook_id}`: webhook executions with the right token;
//! - `rl:webhookfail:{ip}`: webhook calls with an unknown id or a wrong token.
//!
//! An IPv6 client is keyed by its /64 network, since one host usually holds a whole /64.
//! When the limiter itself fails (its Redis is unreachable), the call is allowed and the
//! failure logged: losing the limits for a while is better than losing the API.

use super::identity::Caller;
use crate::ports::{Limit, RateDecision};
use crate::{CoreError, CoreResult, Services};
use std::net::IpAddr;
use uuid::Uuid;

/// The procedures that check credentials, limited per IP by the stricter `join` bucket.
pub const CREDENTIAL_PROCEDURES: &[&str] = &["server.join", "server.refreshToken"];

/// The key part naming a client address: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64.
pub fn client_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_owned(),
    }
}

/// The client's address: the connection's `peer`, or, when `trust_forwarded_for` is set, the
/// address `forwarded_for_hops` entries from the right of `X-Forwarded-For`. Proxies append
/// the address they received from, so the leftmost entries are whatever the client wrote;
/// the entry written by the outermost of our proxies is the first one nobody else forged.
/// A header with fewer entries than hops gives its leftmost entry; no usable entry, the peer.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    limits: &crate::ports::RateLimits,
) -> Option<IpAddr> {
    let forwarded = limits
        .trust_forwarded_for
        .then(|| {
            let entries: Vec<&str> = forwarded_for?.split(',').map(str::trim).collect();
            let at = entries
                .len()
                .saturating_sub(usize::from(limits.forwarded_for_hops.max(1)));
            entries.get(at)?.parse::<IpAddr>().ok()
        })
        .flatten();
    forwarded.or(peer)
}

/// Checks one tRPC call of `path` against its buckets: the caller's in this server, or the
/// client address's when there is no caller, and for the credential procedures also the
/// address's `join` bucket. `Err` is the TOO_MANY_REQUESTS to answer.
pub async fn check_call(
    svc: &Services,
    server_id: Uuid,
    caller: Option<&Caller>,
    ip: Option<IpAddr>,
    path: &str,
) -> CoreResult<()> {
    let limits = svc.settings.rate_limits;
    match caller {
        Some(caller) => {
            let key = format!("rl:user:{server_id}:{}", caller.user_id);
            take(svc, &key, limits.user).await?;
        }
        None => take(svc, &format!("rl:ip:{}", client_key(ip)), limits.ip).await?,
    }
    if CREDENTIAL_PROCEDURES.contains(&path) {
        take(svc, &format!("rl:join:{}", client_key(ip)), limits.join).await?;
    }
    Ok(())
}

/// Checks one execution of the webhook `webhook_id` (its token was right) against its bucket.
pub async fn check_webhook(svc: &Services, webhook_id: Uuid) -> CoreResult<()> {
    let key = format!("rl:webhook:{webhook_id}");
    take(svc, &key, svc.settings.rate_limits.webhook).await
}

/// Counts one webhook call with an unknown id or a wrong token against the client address.
pub async fn check_webhook_failure(svc: &Services, ip: Option<IpAddr>) -> CoreResult<()> {
    let key = format!("rl:webhookfail:{}", client_key(ip));
    take(svc, &key, svc.settings.rate_limits.webhook_failures).await
}

/// The bucket a key belongs to, as a metrics label (a fixed set: never the key itself).
fn bucket(key: &str) -> &'static str {
    match key.split(':').nth(1) {
        Some("user") => "user",
        Some("ip") => "ip",
        Some("join") => "join",
        Some("webhook") => "webhook",
        Some("webhookfail") => "webhook_failures",
        _ => "other",
    }
}

async fn take(svc: &Services, key: &str, limit: Limit) -> CoreResult<()> {
    if limit.is_off() {
        return Ok(());
    }
    match svc.rate_limiter.check(key, limit.capacity, limit.per).await {
        Ok(RateDecision::Allowed) => Ok(()),
        Ok(RateDecision::Limited { retry_after }) => {
            metrics::counter!("ecto_rate_limit_refusals_total", "bucket" => bucket(key))
                .increment(1);
            Err(CoreError::rate_limited(retry_after))
        }
        Err(e) => {
            tracing::warn!(error = %e, key, "rate limiter unavailable; call allowed");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EctoCode, ErrorKind};
    use std::time::Duration;

    #[test]
    fn the_client_is_counted_from_the_right_of_x_forwarded_for() {
        let peer: Option<IpAddr> = "10.0.0.9".parse().ok();
        let mut limits = crate::ports::RateLimits::OFF;
        let header = Some("6.6.6.6, 1.2.3.4, 10.0.0.2");
        assert_eq!(client_address(peer, header, &limits), peer, "not trusted");
        limits.trust_forwarded_for = true;
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(client_address(peer, header, &limits), ip("10.0.0.2"));
        limits.forwarded_for_hops = 2;
        assert_eq!(client_address(peer, header, &limits), ip("1.2.3.4"));
        limits.forwarded_for_hops = 9;
        assert_eq!(client_address(peer, header, &limits), ip("6.6.6.6"));
        assert_eq!(client_address(peer, Some("junk"), &limits), peer);
        assert_eq!(client_address(peer, None, &limits), peer);
    }

    #[test]
    fn addresses_are_keyed_by_host_or_ipv6_network() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert_eq!(client_key(ip("203.0.113.7")), "203.0.113.7");
        assert_eq!(client_key(ip("::ffff:203.0.113.7")), "203.0.113.7");
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:bbbb::9")),
            "one /64 is one client"
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(None), "unknown");
    }

    #[test]
    fn a_limited_call_waits_whole_seconds() {
        let e = CoreError::rate_limited(Duration::from_millis(1));
        assert_eq!(e.retry_after, Some(1));
        assert_eq!(e.ecto, Some(EctoCode::RateLimited));
        assert_eq!(e.kind, ErrorKind::TooManyRequests);
        assert_eq!(
            CoreError::rate_limited(Duration::from_millis(3001)).retry_after,
            Some(4)
        );
        assert_eq!(
            CoreError::rate_limited(Duration::from_secs(2)).retry_after,
            Some(2)
        );
    }
}
