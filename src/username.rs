//! Local usernames (DECISIONS §2): 2–32 characters of ASCII letters, digits, `_`, `.`, `-`.

use crate::{CoreError, EctoCode, ErrorKind};

/// A username that passed validation. Uniqueness is per server and case-insensitive; the store
/// enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Validates `raw` (surrounding whitespace is not trimmed: it is an error like any other).
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let n = raw.chars().count();
        let bad = |why: &str| {
            CoreError::ecto(
                ErrorKind::BadRequest,
                EctoCode::InvalidUsername,
                format!("Invalid username: {why}"),
            )
        };
        if n < 2 {
            return Err(bad("must be at least 2 characters"));
        }
        if n > 32 {
            return Err(bad("must be at most 32 characters"));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(bad("only letters, digits, '_', '.' and '-' are allowed"));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Username;

    #[test]
    fn accepts_the_allowed_alphabet() {
        for ok in ["ab", "Alice_01", "a.b-c", &"x".repeat(32)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_lengths_and_characters() {
        for bad in [
            "a",
            "",
            &"x".repeat(33),
            "has space",
            "émile",
            "semi;colon",
            "at@sign",
        ] {
            let err = Username::parse(bad).expect_err(bad);
            assert_eq!(err.ecto.map(|c| c.number()), Some(1001));
        }
    }
}
