//! The ICE-lite responder: binding requests from browsers are checked with the transport's
//! own password (the client's credentials never reach the server with mediasoup signalling)
//! and answered with XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT. A request
//! carrying USE-CANDIDATE nominates the address it came from.

use rtc_crypto::RTCCrypto;
use std::net::SocketAddr;
use stun::attributes::{ATTR_USERNAME, ATTR_USE_CANDIDATE};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{Message, Setter, BINDING_SUCCESS, CLASS_REQUEST, METHOD_BINDING};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;

/// Whether `buf` looks like STUN (RFC 7983: first byte 0–3, and the magic cookie).
pub(crate) fn is_stun(buf: &[u8]) -> bool {
    buf.first().is_some_and(|b| *b < 4) && stun::message::is_stun_message(buf)
}

/// A binding request, parsed, with the server's part of its USERNAME.
pub(crate) struct Request {
    message: Message,
    pub server_ufrag: String,
}

/// Parses a binding request; `None` for anything else (responses, indications, garbage).
pub(crate) fn parse(buf: &[u8]) -> Option<Request> {
    let mut message = Message::new();
    message.unmarshal_binary(buf).ok()?;
    if message.typ.method != METHOD_BINDING || message.typ.class != CLASS_REQUEST {
        return None;
    }
    let user = TextAttribute::get_from_as(&message, ATTR_USERNAME)
        .ok()?
        .text;
    let (server_ufrag, _client) = user.split_once(':')?;
    Some(Request {
        server_ufrag: server_ufrag.to_owned(),
        message,
    })
}

/// What answering a valid request gives: the response to send back, and whether the request
/// nominated its address.
pub(crate) struct Answer {
    pub response: Vec<u8>,
    pub nominated: bool,
    /// The request's transaction id (a replayed request repeats it).
    pub transaction: [u8; 12],
}

/// Checks the request's FINGERPRINT and MESSAGE-INTEGRITY (keyed with `password`) and answers
/// it; `None` when a check fails (the request is dropped, as an ICE-lite agent may).
pub(crate) fn answer(
    mut req: Request,
    password: &str,
    from: SocketAddr,
    crypto: &dyn RTCCrypto,
) -> Option<Answer> {
    if FINGERPRINT.check(&req.message).is_err() {
        return None;
    }
    MessageIntegrity::check(&mut req.message, password.as_bytes(), crypto).ok()?;
    let nominated = req.message.contains(ATTR_USE_CANDIDATE);
    let transaction = req.message.transaction_id.0;
    let mut response = Message::new();
    let setters: [Box<dyn Setter + '_>; 5] = [
        Box::new(req.message.clone()),
        Box::new(BINDING_SUCCESS),
        Box::new(XorMappedAddress {
            ip: from.ip(),
            port: from.port(),
        }),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            password.to_owned(),
            crypto,
        )),
        Box::new(FINGERPRINT),
    ];
    response.build(&setters).ok()?;
    Some(Answer {
        response: response.raw,
        nominated,
        transaction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun::attributes::ATTR_PRIORITY;
    use stun::message::{Getter, BINDING_REQUEST};

    fn request(user: &str, password: &str, nominate: bool) -> Vec<u8> {
        let provider = rtc_crypto::default_provider().expect("crypto");
        let mut m = Message::new();
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(stun::message::TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, user.to_owned())),
            Box::new(stun::attributes::RawAttribute {
                typ: ATTR_PRIORITY,
                length: 4,
                value: vec![0, 0, 0, 1],
            }),
        ];
        if nominate {
            setters.push(Box::new(stun::attributes::RawAttribute {
                typ: ATTR_USE_CANDIDATE,
                length: 0,
                value: vec![],
            }));
        }
        setters.push(Box::new(
            MessageIntegrity::new_short_term_integrity_with_provider(
                password.to_owned(),
                provider.crypto(),
            ),
        ));
        setters.push(Box::new(FINGERPRINT));
        m.build(&setters).expect("build");
        m.raw
    }

    #[test]
    fn requests_signed_with_our_password_are_answered() {
        let provider = rtc_crypto::default_provider().expect("crypto");
        let from: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        let raw = request("server:client", "our-password-0123456789", true);
        assert!(is_stun(&raw));
        let req = parse(&raw).expect("binding request");
        assert_eq!(req.server_ufrag, "server");
        let answer =
            answer(req, "our-password-0123456789", from, provider.crypto()).expect("answered");
        assert!(answer.nominated);
        let mut resp = Message::new();
        resp.unmarshal_binary(&answer.response).expect("response");
        assert_eq!(resp.typ, BINDING_SUCCESS);
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&resp).expect("xor-mapped-address");
        assert_eq!((mapped.ip, mapped.port), (from.ip(), from.port()));
        MessageIntegrity::check(&mut resp, b"our-password-0123456789", provider.crypto())
            .expect("signed with our password");
        FINGERPRINT.check(&resp).expect("fingerprint");
    }

    #[test]
    fn wrong_passwords_and_other_messages_are_dropped() {
        let provider = rtc_crypto::default_provider().expect("crypto");
        let from: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        let raw = request("server:client", "someone-elses-password", false);
        let req = parse(&raw).expect("parsed");
        assert!(answer(req, "our-password-0123456789", from, provider.crypto()).is_none());
        assert!(parse(b"\x17\xfe\xfd garbage").is_none());
        assert!(!is_stun(&[0x80, 111, 0, 0]));
        let no_colon = request("justone", "p", false);
        assert!(parse(&no_colon).is_none());
    }
}
