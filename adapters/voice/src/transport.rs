//! One WebRTC transport as mediasoup-client sees it: ICE-lite credentials and the nominated
//! address, a DTLS association in the server role (the browser is always the DTLS client),
//! and the SRTP contexts keyed from it once the client's certificate matched the fingerprint
//! it announced in `voice.connect_transport`.

use bytes::BytesMut;
use dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use dtls::crypto::Certificate;
use dtls::endpoint::{Endpoint, EndpointEvent};
use dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rand::distr::{Alphanumeric, SampleString};
use rtc_crypto::{HashAlgorithm, RTCCryptoProvider};
use rtc_shared::TransportProtocol;
use srtp::context::Context;
use srtp::protection_profile::ProtectionProfile;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a transport stays without a valid binding request before it is closed (RFC 7675
/// consent; browsers check about every 5 s).
pub(crate) const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The DTLS identity every transport of the process presents, and its fingerprint.
pub(crate) struct Identity {
    pub provider: Arc<dyn RTCCryptoProvider>,
    pub config: Arc<HandshakeConfig>,
    /// `AA:BB:…` (SHA-256 of the certificate).
    pub fingerprint: String,
}

impl Identity {
    /// A fresh self-signed ECDSA P-256 certificate and the DTLS server configuration: client
    /// certificates required (they are checked against the announced fingerprint after the
    /// handshake), extended master secret required, SRTP profiles AES-GCM and AES-CM-SHA1-80.
    pub fn generate() -> Result<Identity, String> {
        let provider = rtc_crypto::default_provider().map_err(|e| e.to_string())?;
        let cert =
            Certificate::generate_self_signed(vec!["ecto-voice".to_owned()], provider.crypto())
                .map_err(|e| e.to_string())?;
        let der = cert
            .certificate
            .first()
            .ok_or("the certificate has no DER")?
            .as_ref()
            .to_vec();
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(false, None)
            .map_err(|e| e.to_string())?;
        let fingerprint = fingerprint_of(provider.as_ref(), &der)?;
        Ok(Identity {
            provider,
            config: Arc::new(config),
            fingerprint,
        })
    }
}

/// SHA-256 of a DER certificate as `AA:BB:…`.
pub(crate) fn fingerprint_of(
    provider: &dyn RTCCryptoProvider,
    der: &[u8],
) -> Result<String, String> {
    let digest = provider
        .crypto()
        .hash(HashAlgorithm::Sha256, der)
        .map_err(|e| e.to_string())?;
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// What a transport is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The browser sends (producers).
    Send,
    /// The browser receives (consumers).
    Recv,
}

/// The SRTP contexts of a connected transport.
pub(crate) struct Srtp {
    /// Encrypts what we send.
    pub tx: Context,
    /// Decrypts what we receive (with replay protection).
    pub rx: Context,
}

/// Valid binding requests one transport may send in one second. Browsers send a few a second
/// while they check candidate pairs and one every few seconds for consent; a peer past this is
/// flooding the SFU with work (each request costs an HMAC both ways) and loses its transport.
pub(crate) const MAX_CHECKS_PER_SECOND: u32 = 100;

/// Addresses one transport answers at most (ICE checks from several of the client's
/// interfaces, or a NAT rebinding): a client cannot make the SFU remember addresses without
/// bound.
pub(crate) const MAX_ADDRESSES: usize = 8;

/// One transport.
pub(crate) struct Transport {
    pub id: Uuid,
    pub channel: Uuid,
    pub user: Uuid,
    pub direction: Direction,
    pub ufrag: String,
    pub password: String,
    /// Where media goes: the latest nominated address (or the first valid one until then).
    pub selected: Option<SocketAddr>,
    /// Every address that sent a valid binding request.
    pub known: Vec<SocketAddr>,
    pub last_check: Instant,
    pub dtls: Endpoint,
    /// The key of the transport's one DTLS association: the address its first DTLS datagram
    /// came from.
    pub dtls_peer: Option<SocketAddr>,
    /// Where the latest DTLS datagram came from, which the association's flights go to. A
    /// browser may move to another of its candidate pairs in the middle of the handshake; the
    /// handshake goes on from there.
    dtls_path: Option<SocketAddr>,
    /// The client's fingerprints from `voice.connect_transport` (upper case).
    pub remote_fingerprints: Option<Vec<String>>,
    /// The handshake completed and waits for the fingerprint check.
    pub handshake_done: bool,
    pub srtp: Option<Srtp>,
    /// SRTP/SRTCP packets in a row that failed authentication (reset by a good one).
    pub failures_in_a_row: u32,
    /// Send transports: the media it may bring in (`max_bitrate_kbps`).
    pub budget: Option<crate::loss::Budget>,
    /// Send transports: the transport-wide congestion-control feedback to the browser.
    pub feedback: Option<crate::bwe::TransportFeedback>,
    /// The community server the transport's channel belongs to (for its server's cap).
    pub server: Uuid,
    /// The valid binding requests (by transaction id) of the current one-second window, and
    /// when it began.
    checks_in_window: std::collections::HashSet<[u8; 12]>,
    checks_window: Instant,
}

impl Transport {
    pub fn new(
        id: Uuid,
        channel: Uuid,
        user: Uuid,
        direction: Direction,
        local: SocketAddr,
        identity: &Identity,
    ) -> Transport {
        let mut rng = rand::rng();
        Transport {
            id,
            channel,
            user,
            direction,
            ufrag: Alphanumeric.sample_string(&mut rng, 16).to_lowercase(),
            password: Alphanumeric.sample_string(&mut rng, 32),
            selected: None,
            known: Vec::new(),
            last_check: Instant::now(),
            dtls: Endpoint::new(local, TransportProtocol::UDP, Some(identity.config.clone())),
            dtls_peer: None,
            dtls_path: None,
            remote_fingerprints: None,
            handshake_done: false,
            srtp: None,
            failures_in_a_row: 0,
            budget: None,
            feedback: (direction == Direction::Send).then(crate::bwe::TransportFeedback::new),
            server: Uuid::nil(),
            checks_in_window: std::collections::HashSet::new(),
            checks_window: Instant::now(),
        }
    }

    /// mediasoup-client's transport options for this transport: one UDP candidate, and with
    /// `tcp` a passive TCP one on the same port, of lower priority (UDP is preferred).
    pub fn options(
        &self,
        identity: &Identity,
        announced: SocketAddr,
        tcp: bool,
    ) -> serde_json::Value {
        let ip = announced.ip().to_string();
        let mut candidates = vec![serde_json::json!({
            "foundation": "udpcandidate",
            "priority": 1_076_302_079u32,
            "ip": ip,
            "address": ip,
            "port": announced.port(),
            "protocol": "udp",
            "type": "host",
        })];
        if tcp {
            candidates.push(serde_json::json!({
                "foundation": "tcpcandidate",
                "priority": 1_076_276_479u32,
                "ip": ip,
                "address": ip,
                "port": announced.port(),
                "protocol": "tcp",
                "type": "host",
                "tcpType": "passive",
            }));
        }
        serde_json::json!({
            "id": self.id,
            "iceParameters": {
                "usernameFragment": self.ufrag,
                "password": self.password,
                "iceLite": true,
            },
            "iceCandidates": candidates,
            "dtlsParameters": {
                "role": "auto",
                "fingerprints": [{ "algorithm": "sha-256", "value": identity.fingerprint }],
            },
        })
    }

    /// A valid binding request came from `from` (nominating it or not).
    ///
    /// At most [`MAX_ADDRESSES`] addresses are kept: a new one past that pushes out the oldest
    /// that carries neither media nor DTLS, which is returned to be forgotten.
    pub fn checked(
        &mut self,
        from: SocketAddr,
        nominated: bool,
        now: Instant,
    ) -> Option<SocketAddr> {
        self.last_check = now;
        let mut evicted = None;
        if !self.known.contains(&from) {
            if self.known.len() >= MAX_ADDRESSES {
                let in_use = |a: &SocketAddr| {
                    [self.selected, self.dtls_peer, self.dtls_path].contains(&Some(*a))
                };
                if let Some(i) = self.known.iter().position(|a| !in_use(a)) {
                    evicted = Some(self.known.remove(i));
                }
            }
            if self.known.len() < MAX_ADDRESSES {
                self.known.push(from);
            }
        }
        if nominated || self.selected.is_none() {
            self.selected = Some(from);
        }
        evicted
    }

    /// Counts a valid binding request; whether the transport has now sent more than
    /// [`MAX_CHECKS_PER_SECOND`] different ones in one second. Only the client can sign a new
    /// request; a captured one replayed by someone else repeats its transaction id and is not
    /// counted again, so a replay cannot get a participant dropped.
    pub fn floods(&mut self, transaction: [u8; 12], now: Instant) -> bool {
        if now.duration_since(self.checks_window) >= Duration::from_secs(1) {
            self.checks_window = now;
            self.checks_in_window.clear();
        }
        if self.checks_in_window.len() <= MAX_CHECKS_PER_SECOND as usize {
            self.checks_in_window.insert(transaction);
        }
        self.checks_in_window.len() > MAX_CHECKS_PER_SECOND as usize
    }

    /// Whether consent expired (no valid binding request for [`CONSENT_TIMEOUT`]).
    pub fn consent_expired(&self, now: Instant) -> bool {
        now.duration_since(self.last_check) > CONSENT_TIMEOUT
    }

    /// Feeds a DTLS datagram from `from`, one of the transport's checked addresses; `Err` ends
    /// the transport (a fatal alert, a bad certificate). The datagrams to send back are in
    /// [`Transport::dtls_transmits`].
    ///
    /// One association per transport, whichever checked address its datagrams come from: a
    /// browser with several candidate pairs (Chromium's loopback and host interfaces) may start
    /// the handshake on one and switch to another before it ends.
    pub fn on_dtls(
        &mut self,
        buf: &[u8],
        from: SocketAddr,
        now: Instant,
        identity: &Identity,
    ) -> Result<(), String> {
        let key = *self.dtls_peer.get_or_insert(from);
        self.dtls_path = Some(from);
        let events = self
            .dtls
            .read(now, key, None, BytesMut::from(buf))
            .map_err(|e| format!("DTLS: {e}"))?;
        for event in events {
            match event {
                EndpointEvent::HandshakeComplete => {
                    self.handshake_done = true;
                    self.try_keys(identity)?;
                }
                EndpointEvent::PeerClosed => return Err("DTLS closed by the peer".into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// The DTLS datagrams the association has to send, each with where it goes: the address
    /// the client's latest DTLS datagram came from.
    pub fn dtls_transmits(&mut self) -> Vec<(BytesMut, SocketAddr)> {
        let mut out = Vec::new();
        while let Some(tx) = self.dtls.poll_transmit() {
            let to = self.dtls_path.unwrap_or(tx.transport.peer_addr);
            out.push((tx.message, to));
        }
        out
    }

    /// The client's `dtlsParameters` arrived (`voice.connect_transport`).
    pub fn connect(
        &mut self,
        fingerprints: Vec<String>,
        identity: &Identity,
    ) -> Result<(), String> {
        if self.remote_fingerprints.is_none() {
            self.remote_fingerprints = Some(fingerprints);
        }
        self.try_keys(identity)
    }

    /// Once the handshake is done and the fingerprint is known: checks the client's
    /// certificate against it, then keys SRTP from the handshake.
    fn try_keys(&mut self, identity: &Identity) -> Result<(), String> {
        let (Some(peer), Some(wanted), true, None) = (
            self.dtls_peer,
            self.remote_fingerprints.as_ref(),
            self.handshake_done,
            self.srtp.as_ref(),
        ) else {
            return Ok(());
        };
        let state = self
            .dtls
            .get_connection_state(peer)
            .ok_or("DTLS association gone")?;
        let cert = state
            .peer_certificates
            .first()
            .ok_or("the client presented no certificate")?;
        let actual = fingerprint_of(identity.provider.as_ref(), cert)?;
        if !wanted.iter().any(|w| w.eq_ignore_ascii_case(&actual)) {
            return Err("the client's certificate does not match its fingerprint".into());
        }
        let profile = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => ProtectionProfile::AeadAes256Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
                ProtectionProfile::Aes128CmHmacSha1_80
            }
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => {
                ProtectionProfile::Aes128CmHmacSha1_32
            }
            _ => return Err("no SRTP profile was negotiated".into()),
        };
        let mut config = srtp::config::Config {
            profile,
            ..Default::default()
        };
        let material = state
            .export_keying_material(
                srtp::config::LABEL_EXTRACTOR_DTLS_SRTP,
                &[],
                config.keying_material_len(),
            )
            .map_err(|e| format!("keying material: {e}"))?;
        config
            .set_session_keys_from_keying_material(material.as_ref(), state.is_client())
            .map_err(|e| format!("SRTP keys: {e}"))?;
        let crypto = identity.provider.crypto();
        let tx = Context::new(
            &config.keys.local_master_key,
            &config.keys.local_master_salt,
            profile,
            None,
            None,
            crypto,
        )
        .map_err(|e| format!("SRTP: {e}"))?;
        let rx = Context::new(
            &config.keys.remote_master_key,
            &config.keys.remote_master_salt,
            profile,
            Some(srtp::option::srtp_replay_protection(1024)),
            Some(srtp::option::srtcp_replay_protection(1024)),
            crypto,
        )
        .map_err(|e| format!("SRTP: {e}"))?;
        self.srtp = Some(Srtp { tx, rx });
        Ok(())
    }

    /// Where to send, once media can flow.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.srtp.as_ref().and(self.selected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_transport() -> Transport {
        let identity = Identity::generate().expect("identity");
        let local: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        Transport::new(
            Uuid::nil(),
            Uuid::nil(),
            Uuid::nil(),
            Direction::Send,
            local,
            &identity,
        )
    }

    #[test]
    fn a_flood_of_binding_requests_is_told_from_checks() {
        let mut t = send_transport();
        let start = Instant::now();
        let id = |i: u32| {
            let mut t = [0u8; 12];
            t[..4].copy_from_slice(&i.to_be_bytes());
            t
        };
        // Twenty checks a second for a minute: a browser checking pairs, never a flood.
        for i in 0..1200u32 {
            assert!(!t.floods(id(i), start + Duration::from_millis(50 * u64::from(i))));
        }
        let later = start + Duration::from_secs(61);
        // One captured request replayed many times is one request.
        assert!((0..1000).all(|_| !t.floods(id(7), later)));
        let flooded = (0..=MAX_CHECKS_PER_SECOND)
            .map(|i| t.floods(id(10_000 + i), later))
            .last();
        assert_eq!(flooded, Some(true), "one past the limit in one second");
    }

    #[test]
    fn a_transport_remembers_a_bounded_number_of_addresses() {
        let mut t = send_transport();
        let now = Instant::now();
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(t.checked(addr(1000), true, now), None);
        let evicted: Vec<SocketAddr> = (1001..1020)
            .filter_map(|p| t.checked(addr(p), false, now))
            .collect();
        assert_eq!(t.known.len(), MAX_ADDRESSES);
        assert_eq!(evicted.len(), 19 + 1 - MAX_ADDRESSES);
        assert!(t.known.contains(&addr(1000)), "the selected address stays");
        assert!(!evicted.contains(&addr(1000)));
        assert_eq!(t.selected, Some(addr(1000)));
    }
}
