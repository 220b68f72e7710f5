//! HS256 access and refresh tokens with the reference's claims; audiences keep the two apart.

use ecto_core::model::{AccessClaims, IdentityType, RefreshClaims};
use ecto_core::ports::TokenIssuer;
use ecto_core::{CoreError, CoreResult};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

const ACCESS_AUDIENCE: &str = "ecto-server";
const REFRESH_AUDIENCE: &str = "ecto-server-refresh";

#[derive(Serialize, Deserialize)]
struct AccessWire {
    sub: Uuid,
    identity_type: String,
    tv: i32,
    iss: Uuid,
    aud: String,
    iat: i64,
    exp: i64,
    /// Never issued; a token that has one in the future is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct RefreshWire {
    sub: Uuid,
    mid: Uuid,
    tv: i32,
    iss: Uuid,
    aud: String,
    jti: Uuid,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

/// Access tokens kept verified at most (about 350 bytes each); past it the map starts over.
const VERIFIED_MAX: usize = 4096;

/// [`TokenIssuer`] signing with one shared secret (`JWT_SECRET`).
pub struct JwtTokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Access tokens already verified, by their whole text, until their `exp`: a session
    /// presents the same token with every request for up to two hours, and decoding it and
    /// computing its HMAC again was 5 % of the server's CPU per `messages.send` (perf,
    /// sequential sends). Only tokens this secret signed get here; whether a token is still
    /// good for its member (the token version) is checked after, on every request, as before.
    verified: Mutex<HashMap<Box<str>, AccessClaims>>,
}

impl JwtTokenIssuer {
    /// An issuer for `secret`; an unusable secret (empty) is an error at start-up.
    pub fn new(secret: &[u8]) -> CoreResult<Self> {
        let unusable = |e| CoreError::internal_msg(format!("JWT secret: {e}"));
        Ok(Self {
            encoding: EncodingKey::from_secret(secret).map_err(unusable)?,
            decoding: DecodingKey::from_secret(secret).map_err(unusable)?,
            verified: Mutex::default(),
        })
    }

    fn verified(&self) -> MutexGuard<'_, HashMap<Box<str>, AccessClaims>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn validation(audience: &str) -> Validation {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[audience]);
        v.leeway = 0;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "aud", "sub", "iss"]);
        v
    }

    fn sign<T: Serialize>(&self, claims: &T) -> CoreResult<String> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).map_err(CoreError::internal)
    }
}

impl TokenIssuer for JwtTokenIssuer {
    fn issue_access(&self, c: &AccessClaims) -> CoreResult<String> {
        self.sign(&AccessWire {
            sub: c.user_id,
            identity_type: c.identity_type.as_str().into(),
            tv: c.token_version,
            iss: c.server_id,
            aud: ACCESS_AUDIENCE.into(),
            iat: c.issued_at,
            exp: c.expires_at,
            nbf: None,
        })
    }

    fn verify_access(&self, token: &str) -> Option<AccessClaims> {
        let now = chrono::Utc::now().timestamp();
        if let Some(known) = self.verified().get(token) {
            if known.expires_at > now {
                return Some(known.clone());
            }
        }
        let w = decode::<AccessWire>(token, &self.decoding, &Self::validation(ACCESS_AUDIENCE))
            .ok()?
            .claims;
        let claims = AccessClaims {
            user_id: w.sub,
            identity_type: IdentityType::parse(&w.identity_type)?,
            token_version: w.tv,
            server_id: w.iss,
            issued_at: w.iat,
            expires_at: w.exp,
        };
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_MAX {
            verified.retain(|_, c| c.expires_at > now);
            if verified.len() >= VERIFIED_MAX {
                verified.clear();
            }
        }
        verified.insert(token.into(), claims.clone());
        Some(claims)
    }

    fn issue_refresh(&self, c: &RefreshClaims) -> CoreResult<String> {
        self.sign(&RefreshWire {
            sub: c.user_id,
            mid: c.member_id,
            tv: c.token_version,
            iss: c.server_id,
            aud: REFRESH_AUDIENCE.into(),
            jti: c.jti,
            iat: c.issued_at,
            exp: c.expires_at,
            nbf: None,
        })
    }

    fn verify_refresh(&self, token: &str) -> Option<RefreshClaims> {
        let w = decode::<RefreshWire>(token, &self.decoding, &Self::validation(REFRESH_AUDIENCE))
            .ok()?
            .claims;
        Some(RefreshClaims {
            member_id: w.mid,
            user_id: w.sub,
            token_version: w.tv,
            server_id: w.iss,
            jti: w.jti,
            issued_at: w.iat,
            expires_at: w.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(exp_offset: i64) -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        AccessClaims {
            user_id: Uuid::now_v7(),
            identity_type: IdentityType::Local,
            token_version: 3,
            server_id: Uuid::now_v7(),
            issued_at: now,
            expires_at: now + exp_offset,
        }
    }

    #[test]
    fn access_round_trips_and_other_secrets_or_audiences_fail() {
        let issuer = JwtTokenIssuer::new(b"0123456789abcdef0123456789abcdef").expect("issuer");
        let claims = access(60);
        let token = issuer.issue_access(&claims).expect("sign");
        assert_eq!(issuer.verify_access(&token), Some(claims));
        assert!(
            issuer.verify_refresh(&token).is_none(),
            "an access token is no refresh token"
        );
        let other = JwtTokenIssuer::new(b"another secret of enough length!!").expect("issuer");
        assert!(other.verify_access(&token).is_none());
    }

    #[test]
    fn tokens_not_valid_yet_fail() {
        let issuer = JwtTokenIssuer::new(b"0123456789abcdef0123456789abcdef").expect("issuer");
        let c = access(600);
        let wire = |nbf| AccessWire {
            sub: c.user_id,
            identity_type: "local".into(),
            tv: c.token_version,
            iss: c.server_id,
            aud: ACCESS_AUDIENCE.into(),
            iat: c.issued_at,
            exp: c.expires_at,
            nbf: Some(nbf),
        };
        let later = issuer.sign(&wire(c.issued_at + 300)).expect("sign");
        assert!(issuer.verify_access(&later).is_none(), "nbf in the future");
        let now = issuer.sign(&wire(c.issued_at - 1)).expect("sign");
        assert!(issuer.verify_access(&now).is_some(), "nbf passed");
    }

    #[test]
    fn a_token_verified_before_is_refused_once_expired_and_a_tampered_one_is_not_served() {
        let issuer = JwtTokenIssuer::new(b"0123456789abcdef0123456789abcdef").expect("issuer");
        let claims = access(1);
        let token = issuer.issue_access(&claims).expect("sign");
        assert_eq!(issuer.verify_access(&token), Some(claims.clone()));
        assert_eq!(issuer.verify_access(&token), Some(claims), "from the map");
        let mut tampered = token.clone();
        tampered.pop();
        assert!(issuer.verify_access(&tampered).is_none());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(issuer.verify_access(&token).is_none(), "expired while kept");
    }

    #[test]
    fn expired_access_tokens_fail() {
        let issuer = JwtTokenIssuer::new(b"0123456789abcdef0123456789abcdef").expect("issuer");
        let token = issuer.issue_access(&access(-5)).expect("sign");
        assert!(issuer.verify_access(&token).is_none());
    }

    #[test]
    fn refresh_tokens_issued_together_differ() {
        let issuer = JwtTokenIssuer::new(b"0123456789abcdef0123456789abcdef").expect("issuer");
        let now = chrono::Utc::now().timestamp();
        let mk = || RefreshClaims {
            member_id: Uuid::nil(),
            user_id: Uuid::nil(),
            token_version: 0,
            server_id: Uuid::nil(),
            jti: Uuid::now_v7(),
            issued_at: now,
            expires_at: now + 100,
        };
        let (a, b) = (
            issuer.issue_refresh(&mk()).expect("a"),
            issuer.issue_refresh(&mk()).expect("b"),
        );
        assert_ne!(a, b);
        assert!(issuer.verify_refresh(&a).is_some());
        assert!(issuer.verify_access(&a).is_none());
    }
}
