//! Permission bits (DECISIONS §2). A set bit means allowed; storage is `i64`, the wire a number.

pub mod hub;

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

pub use engine::{channel_permissions, server_permissions, Override, Subject, TargetType};

/// The effective-permission algorithm of DECISIONS §2 (Discord's order).
mod engine {
    use super::{bits, has, ALL};
    use uuid::Uuid;

    /// Whom a permission override targets.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TargetType {
        Role,
        /// A member override targets the user id.
        Member,
    }

    impl TargetType {
        pub fn as_str(self) -> &'static str {
            match self {
                Self::Role => "role",
                Self::Member => "member",
            }
        }
        pub fn parse(s: &str) -> Option<Self> {
            match s {
                "role" => Some(Self::Role),
                "member" => Some(Self::Member),
                _ => None,
            }
        }
    }

    /// One allow/deny pair on a channel or category.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Override {
        pub target_type: TargetType,
        pub target_id: Uuid,
        pub allow: u64,
        pub deny: u64,
    }

    /// Who the permissions are computed for.
    #[derive(Debug, Clone)]
    pub struct Subject {
        pub user_id: Uuid,
        pub is_owner: bool,
        pub is_member: bool,
        /// The id of the server's @everyone role and its bits.
        pub everyone_role_id: Uuid,
        pub everyone: u64,
        /// The member's other roles with their bits.
        pub roles: Vec<(Uuid, u64)>,
    }

    /// Server-level bits: owner → all; non-member → none; @everyone | roles; ADMINISTRATOR →
    /// all.
    pub fn server_permissions(s: &Subject) -> u64 {
        if s.is_owner && s.is_member {
            return ALL;
        }
        if !s.is_member {
            return 0;
        }
        let base = s.roles.iter().fold(s.everyone, |acc, (_, p)| acc | p);
        if has(base, bits::ADMINISTRATOR) {
            ALL
        } else {
            base
        }
    }

    fn apply(bits: u64, deny: u64, allow: u64) -> u64 {
        (bits & !deny) | allow
    }

    /// Applies one container's overrides: @everyone, then the member's roles (all denies, then
    /// all allows), then the member's own override.
    fn apply_layer(mut bits: u64, s: &Subject, overrides: &[Override]) -> u64 {
        let everyone = overrides
            .iter()
            .find(|o| o.target_type == TargetType::Role && o.target_id == s.everyone_role_id);
        if let Some(o) = everyone {
            bits = apply(bits, o.deny, o.allow);
        }
        let (deny, allow) = overrides
            .iter()
            .filter(|o| {
                o.target_type == TargetType::Role
                    && s.roles.iter().any(|(id, _)| *id == o.target_id)
            })
            .fold((0, 0), |(d, a), o| (d | o.deny, a | o.allow));
        bits = apply(bits, deny, allow);
        if let Some(o) = overrides
            .iter()
            .find(|o| o.target_type == TargetType::Member && o.target_id == s.user_id)
        {
            bits = apply(bits, o.deny, o.allow);
        }
        bits
    }

    /// Channel-level bits: the server-level bits, then the category's overrides, then the
    /// channel's. Without READ_MESSAGES in the channel, nothing else is allowed there either.
    pub fn channel_permissions(s: &Subject, category: &[Override], channel: &[Override]) -> u64 {
        if !s.is_member {
            return 0;
        }
        let base = server_permissions(s);
        if base == ALL && (s.is_owner || has(base, bits::ADMINISTRATOR)) {
            return ALL;
        }
        let bits = apply_layer(apply_layer(base, s, category), s, channel);
        if has(bits, bits::READ_MESSAGES) {
            bits
        } else {
            0
        }
    }
}

#[cfg(test)]
mod engine_table {
    use super::bits::*;
    use super::*;
    use uuid::Uuid;

    const R: u64 = READ_MESSAGES;
    const S: u64 = SEND_MESSAGES;
    const E: u64 = EVERYONE_DEFAULT;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }
    const EVERYONE: u128 = 1;
    const MODS: u128 = 2;
    const MUTED: u128 = 3;
    const USER: u128 = 100;
    const OTHER: u128 = 200;

    fn role(n: u128, allow: u64, deny: u64) -> Override {
        Override {
            target_type: TargetType::Role,
            target_id: id(n),
            allow,
            deny,
        }
    }
    fn member(n: u128, allow: u64, deny: u64) -> Override {
        Override {
            target_type: TargetType::Member,
            target_id: id(n),
            allow,
            deny,
        }
    }
    fn subject(owner: bool, member: bool, everyone: u64, roles: &[(u128, u64)]) -> Subject {
        Subject {
            user_id: id(USER),
            is_owner: owner,
            is_member: member,
            everyone_role_id: id(EVERYONE),
            everyone,
            roles: roles.iter().map(|(n, p)| (id(*n), *p)).collect(),
        }
    }

    struct Case {
        name: &'static str,
        subject: Subject,
        category: Vec<Override>,
        channel: Vec<Override>,
        /// `None` means a server-level check.
        server_level: bool,
        has: u64,
        lacks: u64,
    }

    fn case(
        name: &'static str,
        subject: Subject,
        category: Vec<Override>,
        channel: Vec<Override>,
        has: u64,
        lacks: u64,
    ) -> Case {
        Case {
            name,
            subject,
            category,
            channel,
            server_level: false,
            has,
            lacks,
        }
    }
    fn server(name: &'static str, subject: Subject, has: u64, lacks: u64) -> Case {
        Case {
            name,
            subject,
            category: vec![],
            channel: vec![],
            server_level: true,
            has,
            lacks,
        }
    }

    #[test]
    fn effective_permissions_table() {
        let plain = || subject(false, true, E, &[]);
        let moderator = || subject(false, true, E, &[(MODS, MANAGE_MESSAGES | KICK_MEMBERS)]);
        let muted = || subject(false, true, E, &[(MUTED, 0)]);
        let cases = vec![
            server("owner has every bit", subject(true, true, 0, &[]), ALL, 0),
            server(
                "owner without a member row has nothing",
                subject(true, false, E, &[]),
                0,
                ALL,
            ),
            server(
                "non-member has nothing",
                subject(false, false, E, &[]),
                0,
                R,
            ),
            server("member gets @everyone", plain(), E, MANAGE_SERVER),
            server(
                "roles add bits",
                moderator(),
                E | MANAGE_MESSAGES | KICK_MEMBERS,
                BAN_MEMBERS,
            ),
            server(
                "administrator role grants all",
                subject(false, true, E, &[(MODS, ADMINISTRATOR)]),
                ALL,
                0,
            ),
            server(
                "administrator on @everyone grants all",
                subject(false, true, ADMINISTRATOR, &[]),
                ALL,
                0,
            ),
            server(
                "empty @everyone gives nothing",
                subject(false, true, 0, &[]),
                0,
                R,
            ),
            server(
                "several roles combine",
                subject(false, true, 0, &[(MODS, R), (MUTED, S)]),
                R | S,
                MANAGE_SERVER,
            ),
            case(
                "no overrides keeps server bits",
                plain(),
                vec![],
                vec![],
                E,
                MANAGE_SERVER,
            ),
            case(
                "channel @everyone deny send",
                plain(),
                vec![],
                vec![role(EVERYONE, 0, S)],
                R,
                S,
            ),
            case(
                "channel @everyone deny read hides everything",
                plain(),
                vec![],
                vec![role(EVERYONE, 0, R)],
                0,
                R | S | ATTACH_FILES,
            ),
            case(
                "channel @everyone allow manage messages",
                plain(),
                vec![],
                vec![role(EVERYONE, MANAGE_MESSAGES, 0)],
                MANAGE_MESSAGES | R,
                0,
            ),
            case(
                "channel role allow beats @everyone deny",
                moderator(),
                vec![],
                vec![role(EVERYONE, 0, S), role(MODS, S, 0)],
                S | R,
                0,
            ),
            case(
                "channel role deny beats @everyone allow",
                muted(),
                vec![],
                vec![
                    role(EVERYONE, ATTACH_FILES, 0),
                    role(MUTED, 0, ATTACH_FILES),
                ],
                R,
                ATTACH_FILES,
            ),
            case(
                "role allow wins over another role's deny",
                subject(false, true, E, &[(MODS, 0), (MUTED, 0)]),
                vec![],
                vec![role(MODS, S, 0), role(MUTED, 0, S)],
                S,
                0,
            ),
            case(
                "override of a role the user lacks is ignored",
                plain(),
                vec![],
                vec![role(MODS, 0, R)],
                R,
                0,
            ),
            case(
                "member override beats role deny",
                muted(),
                vec![],
                vec![role(MUTED, 0, S), member(USER, S, 0)],
                S,
                0,
            ),
            case(
                "member override deny beats role allow",
                moderator(),
                vec![],
                vec![role(MODS, S, 0), member(USER, 0, S)],
                R,
                S,
            ),
            case(
                "another member's override is ignored",
                plain(),
                vec![],
                vec![member(OTHER, 0, R)],
                R,
                0,
            ),
            case(
                "member override can hide the channel",
                plain(),
                vec![],
                vec![member(USER, 0, R)],
                0,
                R,
            ),
            case(
                "member override can reveal a hidden channel",
                plain(),
                vec![],
                vec![role(EVERYONE, 0, R), member(USER, R, 0)],
                R,
                0,
            ),
            case(
                "category @everyone deny applies",
                plain(),
                vec![role(EVERYONE, 0, S)],
                vec![],
                R,
                S,
            ),
            case(
                "channel re-allows what the category denied",
                plain(),
                vec![role(EVERYONE, 0, S)],
                vec![role(EVERYONE, S, 0)],
                S,
                0,
            ),
            case(
                "channel denies what the category allowed",
                plain(),
                vec![role(EVERYONE, MANAGE_MESSAGES, 0)],
                vec![role(EVERYONE, 0, MANAGE_MESSAGES)],
                R,
                MANAGE_MESSAGES,
            ),
            case(
                "category role allow applies",
                moderator(),
                vec![role(EVERYONE, 0, S), role(MODS, S, 0)],
                vec![],
                S,
                0,
            ),
            case(
                "category member override applies",
                plain(),
                vec![member(USER, 0, S)],
                vec![],
                R,
                S,
            ),
            case(
                "category member override beats category role",
                moderator(),
                vec![role(MODS, 0, S), member(USER, S, 0)],
                vec![],
                S,
                0,
            ),
            case(
                "channel @everyone beats category member override",
                plain(),
                vec![member(USER, S, 0)],
                vec![role(EVERYONE, 0, S)],
                R,
                S,
            ),
            case(
                "category member deny of read hides the channel",
                plain(),
                vec![member(USER, 0, R)],
                vec![],
                0,
                R,
            ),
            case(
                "channel allow reveals what the category hid",
                plain(),
                vec![role(EVERYONE, 0, R)],
                vec![role(EVERYONE, R, 0)],
                R,
                0,
            ),
            case(
                "category hide for everyone, role reveals",
                moderator(),
                vec![role(EVERYONE, 0, R), role(MODS, R, 0)],
                vec![],
                R,
                0,
            ),
            case(
                "lost read drops manage messages too",
                moderator(),
                vec![],
                vec![role(EVERYONE, 0, R)],
                0,
                MANAGE_MESSAGES,
            ),
            case(
                "lost read drops server bits in that channel",
                subject(false, true, E | MANAGE_CHANNELS, &[]),
                vec![],
                vec![role(EVERYONE, 0, R)],
                0,
                MANAGE_CHANNELS,
            ),
            case(
                "owner ignores channel denies",
                subject(true, true, E, &[]),
                vec![],
                vec![role(EVERYONE, 0, ALL), member(USER, 0, ALL)],
                ALL,
                0,
            ),
            case(
                "owner ignores category denies",
                subject(true, true, E, &[]),
                vec![member(USER, 0, R)],
                vec![],
                ALL,
                0,
            ),
            case(
                "administrator ignores channel denies",
                subject(false, true, E, &[(MODS, ADMINISTRATOR)]),
                vec![],
                vec![role(EVERYONE, 0, R), role(MODS, 0, R), member(USER, 0, R)],
                ALL,
                0,
            ),
            case(
                "administrator ignores category denies",
                subject(false, true, E, &[(MODS, ADMINISTRATOR)]),
                vec![role(MODS, 0, ALL)],
                vec![],
                ALL,
                0,
            ),
            case(
                "override cannot grant administrator",
                plain(),
                vec![],
                vec![role(EVERYONE, ADMINISTRATOR, 0)],
                ADMINISTRATOR | R,
                0,
            ),
            case(
                "non-member gets nothing even with allows",
                subject(false, false, 0, &[]),
                vec![],
                vec![role(EVERYONE, ALL, 0), member(USER, ALL, 0)],
                0,
                R,
            ),
            case(
                "allow and deny on the same layer: allow wins",
                plain(),
                vec![],
                vec![role(EVERYONE, S, S)],
                S,
                0,
            ),
            case(
                "mention everyone granted per channel",
                plain(),
                vec![],
                vec![role(EVERYONE, MENTION_EVERYONE, 0)],
                MENTION_EVERYONE,
                0,
            ),
            case(
                "mention everyone denied by default",
                plain(),
                vec![],
                vec![],
                R,
                MENTION_EVERYONE,
            ),
            case(
                "edit pages granted to a role per channel",
                moderator(),
                vec![],
                vec![role(MODS, EDIT_PAGES, 0)],
                EDIT_PAGES,
                0,
            ),
            case(
                "voice bits survive a text deny",
                plain(),
                vec![],
                vec![role(EVERYONE, 0, S)],
                CONNECT_VOICE | SPEAK_VOICE,
                S,
            ),
        ];
        assert!(cases.len() >= 40, "the table has {} cases", cases.len());
        for c in cases {
            let got = if c.server_level {
                server_permissions(&c.subject)
            } else {
                channel_permissions(&c.subject, &c.category, &c.channel)
            };
            assert!(
                has(got, c.has),
                "{}: expected bits {:#x} in {:#x}",
                c.name,
                c.has,
                got
            );
            assert_eq!(
                got & c.lacks,
                0,
                "{}: expected no bits of {:#x} in {:#x}",
                c.name,
                c.lacks,
                got
            );
        }
    }
}
