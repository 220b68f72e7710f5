//! ecto-core: the domain of ecto-server, the ports it needs from the outside world, and the
//! use cases that implement the protocol's procedures on top of those ports.
//!
//! Nothing in this crate performs IO. Adapters (SQL, Redis, HTTP, ...) implement the traits in
//! [`ports`]; the composition root wires them into [`Services`], which every use case takes.

pub mod display_name;
pub mod error;
pub mod memo;
pub mod model;
pub mod passwords;
pub mod permissions;
pub mod ports;
pub mod services;
#[cfg(feature = "testing")]
pub mod testing;
pub mod usecases;
pub mod username;

pub use error::{CoreError, CoreResult, EctoCode, ErrorKind};
pub use services::{HostingMode, Services, Settings};

/// A new time-ordered identifier (UUIDv7), as every id of the protocol is.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The smallest id [`new_id`] can give at or after `at`: its millisecond with every other bit
/// zero. `id >= id_floor(t)` holds for every id made at or after `t`, so a query for rows
/// created since `t` can walk an index of ids from there instead of from the start.
pub fn id_floor(at: model::Timestamp) -> uuid::Uuid {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    uuid::Uuid::from_bytes(bytes)
}

/// Parses an id as the reference's schemas accept one (Zod's `.uuid()`): 36 characters of
/// hyphenated hex with a version nibble 1–8 and the RFC 4122 variant (8, 9, a or b), or the
/// nil and max UUIDs. Other forms `uuid` would take (no hyphens, braces, other versions) are
/// `None`.
pub fn parse_id(text: &str) -> Option<uuid::Uuid> {
    let b = text.as_bytes();
    let shape = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if !shape {
        return None;
    }
    let id = uuid::Uuid::parse_str(text).ok()?;
    let rfc = (b'1'..=b'8').contains(&b[14]) && matches!(b[19] | 0x20, b'8' | b'9' | b'a' | b'b');
    (rfc || id.is_nil() || id.is_max()).then_some(id)
}

#[cfg(test)]
mod id_tests {
    use super::{id_floor, new_id, parse_id};

    #[test]
    fn an_id_made_since_a_time_is_at_or_above_its_floor() {
        let before = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let at = chrono::Utc::now();
        let after = new_id();
        let floor = id_floor(at);
        assert!(after >= floor, "{after} < {floor}");
        assert!(before < floor, "{before} >= {floor}");
        // The hyphenated text (SQLite stores ids as text) sorts the same way.
        assert!(after.to_string() >= floor.to_string());
        assert!(before.to_string() < floor.to_string());
    }

    #[test]
    fn ids_are_parsed_as_the_reference_schemas_do() {
        for ok in [
            "0190a4b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b",
            "0190A4B2-7C3E-7D4F-BA1B-2C3D4E5F6A7B",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
        ] {
            assert!(parse_id(ok).is_some(), "{ok}");
        }
        for bad in [
            "0190a4b2-7c3e-0d4f-8a1b-2c3d4e5f6a7b", // version 0
            "0190a4b2-7c3e-9d4f-8a1b-2c3d4e5f6a7b", // version 9
            "0190a4b2-7c3e-7d4f-ca1b-2c3d4e5f6a7b", // variant c
            "0190a4b2-7c3e-7d4f-7a1b-2c3d4e5f6a7b", // variant 7
            "0190a4b27c3e7d4f8a1b2c3d4e5f6a7b",     // no hyphens
            "{0190a4b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b}",
            "0190a4b2-7c3e-7d4f-8a1b-2c3d4e5f6a7g",
            "",
        ] {
            assert!(parse_id(bad).is_none(), "{bad}");
        }
    }
}
