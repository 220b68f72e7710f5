//! Password rules beyond length: the most common passwords are refused (a short deny-list of
//! the passwords that lead every published leak ranking, restricted to the 8 characters and
//! more that the length rule already requires).

use crate::{CoreError, CoreResult};

/// The deny-list, lower case; compared case-insensitively.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "pa$$word",
    "password!",
    "12345678",
    "123456789",
    "1234567890",
    "0123456789",
    "87654321",
    "987654321",
    "9876543210",
    "11111111",
    "111111111",
    "00000000",
    "000000000",
    "22222222",
    "12121212",
    "11223344",
    "12341234",
    "12344321",
    "88888888",
    "66666666",
    "55555555",
    "99999999",
    "77777777",
    "13131313",
    "147258369",
    "123123123",
    "123321123",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "zaq12wsx",
    "1qazxsw2",
    "qwerty123",
    "qwerty12",
    "qwerty1234",
    "qwertyuiop",
    "qwertyui",
    "qweasdzxc",
    "asdfghjkl",
    "asdfghjk",
    "asdf1234",
    "zxcvbnm1",
    "zxcvbnm123",
    "abc12345",
    "abcd1234",
    "abcdefgh",
    "abc123456",
    "a1b2c3d4",
    "aa123456",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "princess1",
    "football",
    "football1",
    "baseball",
    "basketball",
    "welcome1",
    "welcome123",
    "trustno1",
    "superman",
    "starwars",
    "whatever",
    "dragon123",
    "monkey123",
    "letmein1",
    "letmein123",
    "admin123",
    "admin1234",
    "administrator",
    "changeme",
    "changeme123",
    "computer",
    "internet",
    "michelle",
    "jennifer",
    "charlie1",
    "shadow123",
    "master123",
    "mustang1",
    "liverpool",
    "chelsea1",
    "arsenal1",
    "jordan23",
    "hello123",
    "freedom1",
    "whatever1",
    "qazwsxedc",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "1234qwer",
    "123qwe123",
    "qwe123qwe",
    "samsung1",
    "google123",
    "secret123",
    "default1",
    "test1234",
    "testtest",
    "guest123",
    "loveyou1",
    "lovely123",
    "fuckyou1",
    "babygirl",
    "butterfly",
    "chocolate",
    "elephant",
    "pokemon1",
    "minecraft",
    "midnight",
    "1password",
    "mypassword",
    "yourpassword",
    "letmeinnow",
    "ecto1234",
    "ectochat",
    "ectochat1",
];

/// BAD_REQUEST when `password` is one of the most common ones.
pub fn check_not_common(password: &str) -> CoreResult<()> {
    let lower = password.trim().to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(CoreError::bad_request(
            "This password is among the most common ones; choose another",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for p in [
            "password",
            "Password1",
            "QWERTY123",
            "iloveyou",
            " 12345678 ",
        ] {
            assert!(check_not_common(p).is_err(), "{p}");
        }
        for p in [
            "correct horse battery",
            "x7#kQ!p2vL",
            "password-1-but-longer",
        ] {
            assert!(check_not_common(p).is_ok(), "{p}");
        }
        assert!(COMMON
            .iter()
            .all(|p| p.chars().count() >= 8 && *p == p.to_lowercase()));
    }
}
