//! Expiring signatures of file URLs: attachment and shared file URLs handed out by the API
//! carry `?exp=&sig=` ([`signed_url`]), which `/files/...` accepts in place of a token. And
//! the signatures of server↔ecto-central synchronisation ([`central_signature`]).

use crate::model::Attachment;
use crate::ports::AttachmentRecord;
use crate::Services;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long a signed URL stays valid: at least this long, at most one hour more (expiry is
/// rounded up to the hour so the same URL is handed out for an hour and can be cached).
const SIGNED_URL_SECS: i64 = 24 * 3600;

/// The key of file URL signatures; derived from the token secret. Never printed.
#[derive(Clone)]
pub struct UrlKey([u8; 32]);

impl std::fmt::Debug for UrlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlKey(..)")
    }
}

fn mac(key: &[u8]) -> Option<HmacSha256> {
    <HmacSha256 as KeyInit>::new_from_slice(key).ok()
}

impl UrlKey {
    /// Derives the key from the server's token secret (HMAC-SHA256 of a fixed label), so the
    /// token secret itself never signs a URL.
    pub fn derive(secret: &[u8]) -> Self {
        let mut out = [0u8; 32];
        if let Some(mut m) = mac(secret) {
            m.update(b"ecto file url signatures v1");
            out.copy_from_slice(&m.finalize().into_bytes());
        }
        Self(out)
    }
}

/// `CENTRAL_SYNC_KEY`: the HMAC key shared with ecto-central. Never printed.
#[derive(Clone)]
pub struct SyncKey(Vec<u8>);

impl SyncKey {
    pub fn new(key: &str) -> Self {
        Self(key.as_bytes().to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncKey(..)")
    }
}

fn central_mac(key: &[u8], timestamp: &str, body: &[u8]) -> Option<HmacSha256> {
    let mut m = mac(key)?;
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    Some(m)
}

/// The `X-Signature` of a synchronisation call with ecto-central: hex HMAC-SHA256 with `key`
/// over `"{timestamp}.{body}"` (reference §2.6).
pub fn central_signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    central_mac(key, timestamp, body)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Whether `signature` (hex, either case) is [`central_signature`] of `timestamp` and `body`;
/// compared in constant time.
pub fn central_signature_valid(key: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Ok(sig) = hex::decode(signature) else {
        return false;
    };
    central_mac(key, timestamp, body).is_some_and(|m| m.verify_slice(&sig).is_ok())
}

/// Whether two secrets (API keys, tokens) are equal, in time that does not depend on where
/// they differ, so a secret cannot be guessed byte by byte from timings.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn signature(svc: &Services, path: &str, exp: i64) -> Option<HmacSha256> {
    let mut m = mac(&svc.settings.files.url_key.0)?;
    m.update(path.as_bytes());
    m.update(b"\n");
    m.update(exp.to_string().as_bytes());
    Some(m)
}

/// `path` (a `/files/...` URL path) with `?exp=<unix seconds>&sig=<hex HMAC-SHA256>`; valid
/// for 24 to 25 hours.
pub fn signed_url(svc: &Services, path: &str) -> String {
    let now = svc.clock.now().timestamp();
    let exp = (now + SIGNED_URL_SECS).div_euclid(3600) * 3600 + 3600;
    match signature(svc, path, exp) {
        Some(m) => format!(
            "{path}?exp={exp}&sig={}",
            hex::encode(m.finalize().into_bytes())
        ),
        None => path.to_owned(),
    }
}

/// Whether `sig` is our signature of `path` with expiry `exp`, and `exp` has not passed.
pub fn signature_valid(svc: &Services, path: &str, exp: &str, sig: &str) -> bool {
    let Ok(exp) = exp.parse::<i64>() else {
        return false;
    };
    if exp < svc.clock.now().timestamp() {
        return false;
    }
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    signature(svc, path, exp).is_some_and(|m| m.verify_slice(&sig).is_ok())
}

/// Signs `url` when it is a stored file's path (`/files/...`) not signed yet.
pub fn sign_file_url(svc: &Services, url: &mut String) {
    if url.starts_with("/files/") && !url.contains('?') {
        *url = signed_url(svc, url);
    }
}

/// Signs the URLs of attachments on their way to a client.
pub fn sign_attachments(svc: &Services, attachments: &mut [Attachment]) {
    for a in attachments {
        sign_file_url(svc, &mut a.url);
    }
}

/// The protocol's Attachment for an attachment row, its URL signed.
pub fn attachment_view(svc: &Services, a: AttachmentRecord) -> Attachment {
    let mut out = [Attachment {
        id: a.id,
        message_id: a.message_id,
        filename: a.filename,
        url: a.url,
        content_type: a.content_type,
        size_bytes: i32::try_from(a.size_bytes).unwrap_or(i32::MAX),
    }];
    sign_attachments(svc, &mut out);
    let [a] = out;
    a
}

#[cfg(test)]
mod tests {
    use super::{central_signature, central_signature_valid};

    /// Computed apart: `hmac.new(b"test-sync-key", b'1700000000.{"approved":true}',
    /// hashlib.sha256).hexdigest()` in Python.
    const EXPECTED: &str = "22cee1a10512562ee384822b00cb00c4298c05f1c9e92c40eeed42a491d8ae6e";
    const BODY: &[u8] = br#"{"approved":true}"#;

    #[test]
    fn central_signature_is_hmac_sha256_of_timestamp_dot_body() {
        assert_eq!(
            central_signature(b"test-sync-key", "1700000000", BODY),
            EXPECTED
        );
    }

    #[test]
    fn central_signature_verifies_only_its_own_message() {
        let key = b"test-sync-key";
        assert!(central_signature_valid(key, "1700000000", BODY, EXPECTED));
        assert!(central_signature_valid(
            key,
            "1700000000",
            BODY,
            &EXPECTED.to_uppercase()
        ));
        assert!(!central_signature_valid(key, "1700000001", BODY, EXPECTED));
        assert!(!central_signature_valid(key, "1700000000", b"{}", EXPECTED));
        assert!(!central_signature_valid(
            b"other",
            "1700000000",
            BODY,
            EXPECTED
        ));
        assert!(!central_signature_valid(key, "1700000000", BODY, "zz"));
        assert!(!central_signature_valid(
            key,
            "1700000000",
            BODY,
            &EXPECTED[..62]
        ));
    }
}
