//! Permissions of shared-hub items (reference §5.4): the "chain".
//!
//! The server-level bits are the base; the owner and holders of ADMINISTRATOR keep every bit.
//! Everyone else gets one layer per ancestor folder, from the root down, and finally the item's
//! own overrides. Each layer applies its @everyone override, then the member's role overrides
//! (the OR of their denies, then the OR of their allows), each step as
//! `bits = (bits & !deny) | allow`. Hub overrides only target roles; any other override is
//! ignored.

use super::{bits, has, server_permissions, Override, Subject, TargetType};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

fn apply(bits: u64, deny: u64, allow: u64) -> u64 {
    (bits & !deny) | allow
}

/// Applies one item's overrides: @everyone, then the member's roles.
fn apply_layer(mut bits: u64, s: &Subject, overrides: &[Override]) -> u64 {
    let roles = overrides
        .iter()
        .filter(|o| o.target_type == TargetType::Role);
    if let Some(o) = roles.clone().find(|o| o.target_id == s.everyone_role_id) {
        bits = apply(bits, o.deny, o.allow);
    }
    let (deny, allow) = roles
        .filter(|o| s.roles.iter().any(|(id, _)| *id == o.target_id))
        .fold((0, 0), |(d, a), o| (d | o.deny, a | o.allow));
    apply(bits, deny, allow)
}

/// Effective bits on a shared item. `layers` are the overrides of each ancestor folder from the
/// root down, then the item's own (empty layers change nothing). A non-member gets nothing.
pub fn shared_item_permissions(s: &Subject, layers: &[&[Override]]) -> u64 {
    if !s.is_member {
        return 0;
    }
    let base = server_permissions(s);
    if s.is_owner || has(base, bits::ADMINISTRATOR) {
        return base;
    }
    layers
        .iter()
        .fold(base, |bits, layer| apply_layer(bits, s, layer))
}

/// The folders from the root down to `folder` (included), following `parents` (folder →
/// parent). Stops at a folder missing from the map and never loops, whatever the data.
pub fn folder_path(parents: &HashMap<Uuid, Option<Uuid>>, folder: Option<Uuid>) -> Vec<Uuid> {
    let mut path = Vec::new();
    let mut seen = HashSet::new();
    let mut current = folder;
    while let Some(id) = current {
        if !seen.insert(id) {
            break;
        }
        path.push(id);
        current = parents.get(&id).copied().flatten();
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::super::bits::*;
    use super::super::{ALL, EVERYONE_DEFAULT as E};
    use super::*;

    fn subject(
        user: Uuid,
        owner: bool,
        member: bool,
        everyone_role: Uuid,
        everyone: u64,
        roles: &[(Uuid, u64)],
    ) -> Subject {
        Subject {
            user_id: user,
            is_owner: owner,
            is_member: member,
            everyone_role_id: everyone_role,
            everyone,
            roles: roles.to_vec(),
        }
    }

    const B: u64 = BROWSE_FILES;
    const U: u64 = UPLOAD_SHARED_FILES;
    const M: u64 = MANAGE_FILES;
    const EVERYONE: u128 = 1;
    const MODS: u128 = 2;
    const GUESTS: u128 = 3;
    const USER: u128 = 100;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }
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

    struct Case {
        name: &'static str,
        subject: Subject,
        layers: Vec<Vec<Override>>,
        has: u64,
        lacks: u64,
    }

    #[test]
    fn shared_item_chain_table() {
        let browse = || subject(id(USER), false, true, id(EVERYONE), E | B, &[]);
        let moderator = || subject(id(USER), false, true, id(EVERYONE), E | B, &[(id(MODS), M)]);
        let guest = || {
            subject(
                id(USER),
                false,
                true,
                id(EVERYONE),
                E | B | U,
                &[(id(GUESTS), 0)],
            )
        };
        let case = |name, subject, layers: Vec<Vec<Override>>, has, lacks| Case {
            name,
            subject,
            layers,
            has,
            lacks,
        };
        let cases = vec![
            case("no layers keep the base", browse(), vec![], B, U | M),
            case(
                "empty layers keep the base",
                browse(),
                vec![vec![], vec![]],
                B,
                M,
            ),
            case(
                "item @everyone deny hides it",
                browse(),
                vec![vec![role(EVERYONE, 0, B)]],
                0,
                B,
            ),
            case(
                "root folder deny reaches a deep item",
                browse(),
                vec![vec![role(EVERYONE, 0, B)], vec![], vec![]],
                0,
                B,
            ),
            case(
                "a deeper folder re-allows what the root denied",
                browse(),
                vec![vec![role(EVERYONE, 0, B)], vec![role(EVERYONE, B, 0)]],
                B,
                0,
            ),
            case(
                "the item re-denies what its folder allowed",
                browse(),
                vec![vec![role(EVERYONE, U, 0)], vec![role(EVERYONE, 0, U)]],
                B,
                U,
            ),
            case(
                "folder allow grants upload",
                browse(),
                vec![vec![role(EVERYONE, U, 0)]],
                B | U,
                M,
            ),
            case(
                "role deny applies to its holders",
                guest(),
                vec![vec![role(GUESTS, 0, B)]],
                U,
                B,
            ),
            case(
                "role deny of another role is ignored",
                browse(),
                vec![vec![role(GUESTS, 0, B)]],
                B,
                0,
            ),
            case(
                "role allow beats @everyone deny in one layer",
                moderator(),
                vec![vec![role(EVERYONE, 0, B), role(MODS, B, 0)]],
                B | M,
                0,
            ),
            case(
                "role deny beats @everyone allow in one layer",
                guest(),
                vec![vec![role(EVERYONE, M, 0), role(GUESTS, 0, M)]],
                B,
                M,
            ),
            case(
                "a later @everyone deny beats an earlier role allow",
                moderator(),
                vec![vec![role(MODS, U, 0)], vec![role(EVERYONE, 0, U)]],
                B,
                U,
            ),
            case(
                "role allow and deny in one override: allow wins",
                guest(),
                vec![vec![role(GUESTS, B, B)]],
                B,
                0,
            ),
            case(
                "member overrides are ignored in the hub",
                browse(),
                vec![vec![member(USER, 0, B)]],
                B,
                0,
            ),
            case(
                "manage files can be taken away per folder",
                moderator(),
                vec![vec![role(MODS, 0, M)]],
                B,
                M,
            ),
            case(
                "owner keeps every bit through denies",
                subject(id(USER), true, true, id(EVERYONE), 0, &[]),
                vec![vec![role(EVERYONE, 0, ALL)], vec![member(USER, 0, ALL)]],
                ALL,
                0,
            ),
            case(
                "administrator keeps every bit through denies",
                subject(
                    id(USER),
                    false,
                    true,
                    id(EVERYONE),
                    E,
                    &[(id(MODS), ADMINISTRATOR)],
                ),
                vec![vec![role(EVERYONE, 0, ALL), role(MODS, 0, ALL)]],
                ALL,
                0,
            ),
            case(
                "an allowed administrator bit does not bypass later layers",
                browse(),
                vec![
                    vec![role(EVERYONE, ADMINISTRATOR, 0)],
                    vec![role(EVERYONE, 0, B)],
                ],
                ADMINISTRATOR,
                B,
            ),
            case(
                "non-member gets nothing even with allows",
                subject(id(USER), false, false, id(EVERYONE), E | B, &[]),
                vec![vec![role(EVERYONE, ALL, 0)]],
                0,
                B,
            ),
            case(
                "owner without a member row gets nothing",
                subject(id(USER), true, false, id(EVERYONE), E, &[]),
                vec![],
                0,
                B,
            ),
        ];
        for c in cases {
            let layers: Vec<&[Override]> = c.layers.iter().map(Vec::as_slice).collect();
            let got = shared_item_permissions(&c.subject, &layers);
            assert!(
                has(got, c.has),
                "{}: expected {:#x} in {:#x}",
                c.name,
                c.has,
                got
            );
            assert_eq!(
                got & c.lacks,
                0,
                "{}: expected none of {:#x} in {:#x}",
                c.name,
                c.lacks,
                got
            );
        }
    }

    #[test]
    fn folder_paths_run_from_the_root_and_never_loop() {
        let (a, b, c, x, y) = (id(10), id(11), id(12), id(20), id(21));
        let parents: HashMap<Uuid, Option<Uuid>> = [
            (a, None),
            (b, Some(a)),
            (c, Some(b)),
            (x, Some(y)),
            (y, Some(x)),
        ]
        .into_iter()
        .collect();
        assert_eq!(folder_path(&parents, Some(c)), vec![a, b, c]);
        assert_eq!(folder_path(&parents, Some(a)), vec![a]);
        assert_eq!(folder_path(&parents, None), Vec::<Uuid>::new());
        assert_eq!(folder_path(&parents, Some(id(99))), vec![id(99)]);
        assert_eq!(folder_path(&parents, Some(x)).len(), 2, "a cycle stops");
    }
}
