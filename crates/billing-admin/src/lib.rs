//! `billing-admin`: the operators' tool for support cases, run with the operator's own AWS
//! credentials against the deployed table and Stripe key (locally: the emulator and the
//! sandbox). Every subcommand goes through the service's own code: the ledger's adjustment,
//! the shared sync, the endpoint's staged erasure, the webhook's processing. Every write is
//! logged as one JSON line naming the operator ([`audit`]); no secret is ever printed.
//!
//! Exit codes ([`Exit`]): 0 done (or nothing to do), 1 a call failed (safe to run again), 2 a
//! usage error (bad arguments, a mistyped user id, `erase` without `--yes`, no operator named,
//! a setting missing), 3 not found, 4 refused (the change is not allowed).

pub mod cli;
mod commands;
pub mod ops;

use std::io::Write;

use serde_json::Value;

pub use cli::{Cli, Command};
pub use ops::Ops;

/// How the tool exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done, or nothing to do.
    Done = 0,
    /// A call failed (storage, Stripe, the auth service): safe to run again.
    Failed = 1,
    /// A usage error: nothing was called.
    Usage = 2,
    /// No such user or event.
    NotFound = 3,
    /// The change is not allowed (a balance would go below zero, the user is being erased).
    Refused = 4,
}

/// What a subcommand found or did: the lines for a person, the document for `--json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Human-readable lines.
    pub text: String,
    /// The same, as one JSON document.
    pub json: Value,
}

/// Why a subcommand stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// How the tool exits.
    pub exit: Exit,
    /// What to tell the operator.
    pub message: String,
}

impl Failure {
    /// A failure exiting with `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

/// A failure of the service's code: erased users are refused, the rest failed calls.
impl From<common::ApiError> for Failure {
    fn from(err: common::ApiError) -> Self {
        match err {
            common::ApiError::AccountDeleted => {
                Failure::new(Exit::Refused, "the user is being erased, or was erased")
            }
            common::ApiError::BillingNotConfigured => Failure::new(Exit::Usage, err.to_string()),
            other => Failure::new(Exit::Failed, other.to_string()),
        }
    }
}

impl From<common::store::StoreError> for Failure {
    fn from(err: common::store::StoreError) -> Self {
        Failure::from(common::ApiError::from(err))
    }
}

/// Runs the subcommand of `cli` on `ops`, writing the audit line of each write to `log`.
pub async fn run(cli: &Cli, ops: &Ops, log: &mut dyn Write) -> Result<Report, Failure> {
    commands::run(cli, ops, log).await
}

/// Writes the audit line of a write: one JSON object naming the operator, the command, the
/// user (by the hash every log line uses) and `detail`; never a secret.
pub fn audit(
    log: &mut dyn Write,
    operator: &str,
    command: &str,
    user: Option<&common::domain::UserId>,
    detail: Value,
) {
    let mut line = serde_json::json!({
        "audit": "billing-admin",
        "at": common::domain::entries::rfc3339(common::unix_now()),
        "operator": operator,
        "command": command,
        "user": user.map(common::domain::UserId::hash),
    });
    if let (Some(line), Value::Object(detail)) = (line.as_object_mut(), detail) {
        line.extend(detail);
    }
    // A log that cannot be written must not undo a write that was made: say so on stderr.
    if writeln!(log, "{line}").is_err() {
        eprintln!("billing-admin: the audit line could not be written: {line}");
    }
}
