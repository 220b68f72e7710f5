//! Permission bits (DECISIONS §2). A set bit means allowed; storage is `i64`, the wire a number.

/// Every permission bit, by name.
pub mod bits {
    pub const ADMINISTRATOR: u64 = 1 << 0;
    pub const MANAGE_SERVER: u64 = 1 << 1;
    pub const MANAGE_CHANNELS: u64 = 1 << 2;
    pub const MANAGE_ROLES: u64 = 1 << 3;
    pub const KICK_MEMBERS: u64 = 1 << 4;
    pub const BAN_MEMBERS: u64 = 1 << 5;
    pub const CREATE_INVITES: u64 = 1 << 6;
    pub const VIEW_AUDIT_LOG: u64 = 1 << 7;
    pub const MANAGE_MESSAGES: u64 = 1 << 8;
    pub const MANAGE_WEBHOOKS: u64 = 1 << 9;
    pub const VIEW_SERVER_HUB: u64 = 1 << 10;
    pub const BROWSE_FILES: u64 = 1 << 11;
    pub const UPLOAD_SHARED_FILES: u64 = 1 << 12;
    pub const MANAGE_FILES: u64 = 1 << 13;
    pub const READ_MESSAGES: u64 = 1 << 14;
    pub const SEND_MESSAGES: u64 = 1 << 15;
    pub const ATTACH_FILES: u64 = 1 << 16;
    pub const EMBED_LINKS: u64 = 1 << 17;
    pub const ADD_REACTIONS: u64 = 1 << 18;
    pub const CONNECT_VOICE: u64 = 1 << 19;
    pub const SPEAK_VOICE: u64 = 1 << 20;
    pub const USE_VIDEO: u64 = 1 << 21;
    pub const SCREEN_SHARE: u64 = 1 << 22;
    pub const MUTE_MEMBERS: u64 = 1 << 23;
    pub const DEAFEN_MEMBERS: u64 = 1 << 24;
    pub const USE_VOICE_ACTIVITY: u64 = 1 << 25;
    pub const MANAGE_NEWS: u64 = 1 << 26;
    pub const MENTION_EVERYONE: u64 = 1 << 27;
    pub const EDIT_PAGES: u64 = 1 << 28;
}

/// Every defined bit; anything outside is not a permission.
pub const ALL: u64 = (1 << 29) - 1;

/// The bits of a new server's @everyone role (reference §1).
pub const EVERYONE_DEFAULT: u64 = bits::READ_MESSAGES
    | bits::SEND_MESSAGES
    | bits::ATTACH_FILES
    | bits::EMBED_LINKS
    | bits::ADD_REACTIONS
    | bits::CONNECT_VOICE
    | bits::SPEAK_VOICE
    | bits::USE_VOICE_ACTIVITY
    | bits::USE_VIDEO
    | bits::SCREEN_SHARE
    | bits::CREATE_INVITES;

/// True when `value` names only defined bits (DECISIONS §2: others are rejected, not stored).
pub fn is_valid(value: u64) -> bool {
    value & !ALL == 0
}

/// True when every bit of `wanted` is set in `have`.
pub fn has(have: u64, wanted: u64) -> bool {
    have & wanted == wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_covers_exactly_the_29_named_bits() {
        assert_eq!(ALL.count_ones(), 29);
        assert!(is_valid(bits::EDIT_PAGES | bits::ADMINISTRATOR));
        assert!(!is_valid(1 << 29));
    }

    #[test]
    fn everyone_default_cannot_manage_anything() {
        assert!(has(
            EVERYONE_DEFAULT,
            bits::READ_MESSAGES | bits::SEND_MESSAGES
        ));
        assert!(!has(EVERYONE_DEFAULT, bits::MANAGE_SERVER));
        assert!(!has(EVERYONE_DEFAULT, bits::ADMINISTRATOR));
    }
}
