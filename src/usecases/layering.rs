//! The use cases' layering, checked: a feature never uses another feature, and a module of
//! [`super::base`] uses only base modules of a lower layer (so the layers cannot form a
//! cycle). The test reads the sources under `src/usecases`, resolves every `super::…` and
//! `crate::usecases::…` path of their non-test code, and fails on any other reference, or on
//! a module the tables below do not classify (a new module must be placed in them).

use std::fmt::Write as _;
use std::path::Path;

/// The modules of `usecases/base` and their layers, lowest first.
const BASE: &[(&str, u8)] = &[
    // Shared store lookups, names, file names and URL signatures: they use no other module.
    ("lookup", 0),
    ("names", 0),
    ("file_names", 0),
    ("signing", 0),
    // The memo loaders; the views of messages and activity (read stores, sign URLs).
    ("loaders", 1),
    ("views", 1),
    // Issuing tokens, then who is calling.
    ("tokens", 2),
    ("identity", 3),
    // Effective permissions (the only place they are computed) and the call limits.
    ("access", 4),
    ("rate_limit", 4),
    // Audit entries, events and closing sessions.
    ("publish", 5),
    // ecto-central synchronisation (publishes what central's answers change).
    ("central", 6),
];

/// The features: one procedure group each, using only base modules.
const FEATURES: &[&str] = &[
    "account",
    "activity",
    "audit",
    "categories",
    "central",
    "channels",
    "dms",
    "files",
    "gateway",
    "hub",
    "info",
    "invites",
    "join",
    "members_admin",
    "messages",
    "news",
    "og_image",
    "pages",
    "roles",
    "search",
    "server_admin",
    "server_config",
    "serving",
    "tenancy",
    "unfurl",
    "voice",
    "webhooks",
];

/// What a module of `usecases` is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Module {
    Base(&'static str, u8),
    Feature(&'static str),
}

/// The module that a path under `usecases` (like `["base", "access", "hub"]`) belongs to.
fn classify(path: &[String]) -> Result<Module, String> {
    let name = |i: usize| path.get(i).map(String::as_str).unwrap_or("");
    if name(0) == "base" {
        BASE.iter()
            .find(|(m, _)| *m == name(1))
            .map(|(m, layer)| Module::Base(m, *layer))
            .ok_or_else(|| format!("`base::{}` is not in the layering table", name(1)))
    } else {
        FEATURES
            .iter()
            .find(|f| **f == name(0))
            .map(|f| Module::Feature(f))
            .ok_or_else(|| format!("`{}` is not in the layering table", path.join("::")))
    }
}

/// Every path under `usecases` that `code`, written in the module at `at`, refers to through
/// `super::` or `crate::usecases::` (a `{…}` group gives one path per item).
fn references(code: &str, at: &[String]) -> Vec<Vec<String>> {
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let start = if !boundary {
            None
        } else if let Some(r) = rest.strip_prefix("crate::usecases::") {
            Some((Vec::new(), r))
        } else if rest.starts_with("super::") {
            let mut base = at.to_vec();
            let mut r = rest;
            while let Some(more) = r.strip_prefix("super::") {
                base.pop();
                r = more;
            }
            Some((base, r))
        } else {
            None
        };
        match start {
            Some((base, r)) => {
                let consumed = code.len() - i - r.len();
                let (paths, used) = tree(r, base);
                found.extend(paths);
                i += consumed + used.max(1);
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    found
}

/// The paths of a `use` tree at the start of `s`, each after `prefix`; with the bytes read.
fn tree(s: &str, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let trimmed = s.trim_start();
    let mut used = s.len() - trimmed.len();
    if let Some(mut r) = trimmed.strip_prefix('{') {
        used += 1;
        let mut paths = Vec::new();
        loop {
            let t = r.trim_start();
            used += r.len() - t.len();
            if t.starts_with('}') {
                return (paths, used + 1);
            }
            let (mut p, n) = tree(t, prefix.clone());
            paths.append(&mut p);
            // Skip what follows the item (`as name`) up to its comma or the group's end.
            let mut depth = 0;
            let mut k = n;
            for c in t[n..].chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        k += 1;
                        break;
                    }
                    _ => {}
                }
                k += c.len_utf8();
            }
            used += k;
            r = &t[k..];
            if r.is_empty() {
                return (paths, used);
            }
        }
    }
    let ident: String = trimmed
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '*')
        .collect();
    used += ident.len();
    let after = &trimmed[ident.len()..];
    let mut path = prefix;
    if ident != "self" && !ident.is_empty() {
        path.push(ident);
    }
    match after.strip_prefix("::") {
        Some(more) => {
            let (paths, n) = tree(more, path);
            (paths, used + 2 + n)
        }
        None => (vec![path], used),
    }
}

/// Why the module at `at` may not use each of `code`'s references (none when it keeps to
/// the layering).
fn violations(code: &str, at: &[String]) -> Vec<String> {
    let owner = match classify(at) {
        Ok(m) => m,
        Err(e) => return vec![e],
    };
    let mut out = Vec::new();
    for path in references(code, at) {
        // A module's own submodules and items (`super::` inside a feature's directory).
        if path.first() == at.first() && (path.first().map(String::as_str) != Some("base"))
            || (path.len() >= 2 && at.len() >= 2 && path[..2] == at[..2])
        {
            continue;
        }
        let used = match classify(&path) {
            Ok(m) => m,
            Err(e) => {
                out.push(e);
                continue;
            }
        };
        let allowed = match (owner, used) {
            (Module::Feature(_), Module::Base(..)) => true,
            (Module::Feature(a), Module::Feature(b)) => a == b,
            (Module::Base(..), Module::Feature(_)) => false,
            (Module::Base(a, la), Module::Base(b, lb)) => a == b || lb < la,
        };
        if !allowed {
            out.push(format!("{owner:?} uses {used:?} (`{}`)", path.join("::")));
        }
    }
    out
}

/// The module path of a file under `usecases` (`base/access/hub.rs` → `base::access::hub`,
/// `hub/mod.rs` → `hub`).
fn module_of(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .iter()
        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if path.last().map(String::as_str) == Some("mod") {
        path.pop();
    }
    path
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("usecases directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn features_use_only_lower_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/usecases");
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut report = String::new();
    for file in all {
        let relative = file.strip_prefix(&root).expect("under usecases");
        let at = module_of(relative);
        // The declarations of the tree, and this test.
        if at.is_empty() || at == ["base"] || at == ["layering"] {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for v in violations(code, &at) {
            let _ = writeln!(report, "{}: {v}", relative.display());
        }
    }
    assert!(report.is_empty(), "layering broken:\n{report}");
}

#[test]
fn the_check_sees_forbidden_references() {
    let at = |p: &str| p.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert!(violations(
        "use super::base::views::{self, MessagePage};",
        &at("search")
    )
    .is_empty());
    assert!(violations("use super::{delete_blobs, signed};", &at("hub::folders")).is_empty());
    assert!(violations("use super::Perms;", &at("base::access::hub")).is_empty());
    assert!(violations(
        "use super::super::identity::Caller;",
        &at("base::access::hub")
    )
    .is_empty());
    assert_eq!(
        violations("use super::messages::views;", &at("search")).len(),
        1
    );
    assert_eq!(
        violations("crate::usecases::join::x()", &at("hub::uploads")).len(),
        1
    );
    assert_eq!(
        violations("use super::super::files::Y;", &at("hub::folders")).len(),
        1
    );
    assert_eq!(
        violations(
            "use super::{access::Perms, publish::publish};",
            &at("base::views")
        )
        .len(),
        2
    );
    assert_eq!(
        violations("use super::gateway;", &at("base::publish")).len(),
        1
    );
    assert_eq!(
        violations("use crate::usecases::Caller;", &at("account")).len(),
        1
    );
    assert_eq!(violations("", &at("nowhere")).len(), 1);
}
