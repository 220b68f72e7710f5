//! Input parsing and bounds checks: unknown keys are ignored, and every failure is a
//! BAD_REQUEST whose message names the field and the rule it broke.

use crate::error::{ApiError, TrpcCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

/// A procedure input: deserialized from JSON, then checked against its bounds.
pub trait Input: Sized {
    fn parse(value: Value) -> Result<Self, ApiError>;
}

/// Bounds a deserialized input must meet.
pub trait Validate {
    fn validate(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

impl<T: DeserializeOwned + Validate> Input for T {
    fn parse(value: Value) -> Result<Self, ApiError> {
        let parsed: T = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                invalid(format!("Invalid input: {inner}"))
            } else {
                invalid(format!("Invalid input at `{path}`: {inner}"))
            }
        })?;
        parsed.validate()?;
        Ok(parsed)
    }
}

/// A BAD_REQUEST with `message`.
pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(TrpcCode::BadRequest, message)
}

/// `field` must be `min..=max` characters long.
pub fn length(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min {
        return Err(invalid(format!(
            "Invalid input: `{field}` must be at least {min} characters"
        )));
    }
    if n > max {
        return Err(invalid(format!(
            "Invalid input: `{field}` must be at most {max} characters"
        )));
    }
    Ok(())
}

/// Same as [`length`] for an optional field.
pub fn opt_length(
    field: &str,
    value: Option<&str>,
    min: usize,
    max: usize,
) -> Result<(), ApiError> {
    value.map_or(Ok(()), |v| length(field, v, min, max))
}

/// Accepts any input, including none (procedures without input).
#[derive(Debug, Default)]
pub struct NoInput;

impl Input for NoInput {
    fn parse(_: Value) -> Result<Self, ApiError> {
        Ok(NoInput)
    }
}

/// An optional object input: absent (`undefined`/`null`) means the default.
#[derive(Debug, Default)]
pub struct Optional<T>(pub T);

impl<T: DeserializeOwned + Validate + Default> Input for Optional<T> {
    fn parse(value: Value) -> Result<Self, ApiError> {
        if value.is_null() {
            return Ok(Optional(T::default()));
        }
        T::parse(value).map(Optional)
    }
}

/// For `#[serde(default, deserialize_with = "double_option")]`: tells an absent key (`None`)
/// from an explicit `null` (`Some(None)`).
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// `field` must lie in `min..=max`.
pub fn range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ApiError> {
    if value < min || value > max {
        return Err(invalid(format!(
            "Invalid input: `{field}` must be between {min} and {max}"
        )));
    }
    Ok(())
}

/// A UUID as the reference's schemas accept it (Zod's `.uuid()`): 36 characters, hyphenated
/// hex, a version nibble 1–8 and the RFC 4122 variant (8, 9, a or b), or the nil and max
/// UUIDs. Anything else (other versions, braces, no hyphens) is BAD_REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id(pub Uuid);

impl From<Id> for Uuid {
    fn from(id: Id) -> Uuid {
        id.0
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        ecto_core::parse_id(&text)
            .map(Id)
            .ok_or_else(|| serde::de::Error::custom("Invalid UUID"))
    }
}

/// The UUIDs of a list input.
pub fn ids(list: Vec<Id>) -> Vec<Uuid> {
    list.into_iter().map(Uuid::from).collect()
}

/// For a key the reference's schema marks `.nullable()` but not `.optional()`: it must be
/// present, and may be `null` (`#[serde(deserialize_with = "nullable")]`, no `default`).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// A URL a client may store for others to load (avatars, icons, banners, hero images): at
/// most `max` characters, empty (none), `http(s)://` with a host, or a path under this
/// server's `/files/`. Nothing else (`javascript:`, `data:`, other schemes, other paths),
/// and no white space, control characters, quotes, angle brackets or backslashes anywhere.
pub fn url(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    let Some(u) = value else {
        return Ok(());
    };
    length(field, u, 0, max)?;
    if u.is_empty() {
        return Ok(());
    }
    let clean = !u
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '\\'));
    let lower = u.to_ascii_lowercase();
    let web = ["https://", "http://"].iter().any(|scheme| {
        lower
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    });
    let own_file = u
        .strip_prefix("/files/")
        .is_some_and(|rest| !rest.is_empty() && !rest.split('/').any(|s| s == ".." || s == "."));
    if clean && (web || own_file) {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid input: `{field}` must be an http(s) URL or a /files/ path of this server"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn stored_urls_are_web_or_own_files() {
        for ok in [
            "https://example.org/a.png",
            "HTTP://example.org",
            "/files/0190a4b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b/icons/icon-x.png",
            "",
        ] {
            assert!(url("u", Some(ok), 512).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "ftp://example.org/x",
            "/etc/passwd",
            "/files/../x",
            "https://",
            "https:///x",
            "https://example.org/\"onerror=\"x",
            "https://exa mple.org",
            "//evil.example/x",
        ] {
            assert!(url("u", Some(bad), 512).is_err(), "{bad}");
        }
    }
}
