//! The operator's commands next to `serve`: `backup`, `restore`, `export`, `import`, the
//! `admin` set and `check-config`. Each is a library function (so tests call them as the binary does); `main.rs`
//! only parses arguments, calls them and prints.

pub mod admin;
pub mod backup;
pub mod check;
pub mod health;
pub mod transfer;

use ecto_core::{CoreError, ErrorKind};

/// Why a command did not do what it was asked, as the operator should read it: what is wrong
/// and what to do, without the request-path wording of [`CoreError`]'s `Display`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<CoreError> for CliError {
    fn from(e: CoreError) -> Self {
        Self(describe(&e))
    }
}

/// A [`CoreError`] for an operator: an internal error is described by its cause alone (not
/// "Internal server error: …"), any other by its message.
pub fn describe(e: &CoreError) -> String {
    match (&e.kind, &e.source) {
        (ErrorKind::Internal, Some(cause)) => cause.to_string(),
        (ErrorKind::Unavailable, Some(cause)) => format!("{}: {cause}", e.message),
        _ => e.message.clone(),
    }
}

/// What a command's result becomes in the error path.
pub type CliResult<T> = Result<T, CliError>;
