//! Server-issued identities: argon2id password hashing and HS256 JWTs (reference §4.1, §4.3).

mod jwt;
mod password;

pub use jwt::JwtTokenIssuer;
pub use password::Argon2PasswordHasher;
