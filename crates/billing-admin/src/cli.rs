//! The command line: subcommands, their arguments, and the checks made before any call (a
//! mistyped user id or event id is refused by the parser, exit 2).

use clap::{Args, Parser, Subcommand, ValueEnum};
use common::domain::{Balance, UserId};

/// Support's tool for the billing backend. Settings come from the environment, as the
/// functions read them: TABLE_NAME, AWS_REGION, AWS credentials (and DYNAMODB_ENDPOINT
/// locally); STRIPE_SECRET_KEY and the catalogue for the subcommands that call Stripe;
/// SUPABASE_URL and the service-role key for `erase`. Exit codes: 0 done, 1 a call failed
/// (safe to run again), 2 usage, 3 not found, 4 refused.
#[derive(Debug, Clone, Parser)]
#[command(name = "billing-admin", version)]
pub struct Cli {
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting, named in every write's ledger entry and audit line, e.g. the ARN of
    /// `aws sts get-caller-identity`.
    #[arg(long, global = true, env = "BILLING_OPERATOR")]
    pub operator: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// The profile, balances, subscription, linked customer and last 20 ledger entries of a
    /// user, ids in full.
    Show {
        /// The user id (the token's `sub`, a UUID).
        #[arg(value_parser = user_id)]
        user: UserId,
    },
    /// Adds credits to a user, with an `adjustment` entry naming the operator and the reason.
    Grant(Adjust),
    /// Takes credits from a user, with an `adjustment` entry; never below zero.
    Revoke(Adjust),
    /// Re-reads Stripe for a user (the shared sync, grants included) and prints what changed.
    Sync {
        /// The user id.
        #[arg(value_parser = user_id)]
        user: UserId,
    },
    /// Erases a user everywhere, as DELETE /v1/user/delete-account does: for a user who cannot
    /// sign in. Resumable: run it again after a failure.
    Erase {
        /// The user id.
        #[arg(value_parser = user_id)]
        user: UserId,
        /// Confirms the erasure: without it nothing is done.
        #[arg(long)]
        yes: bool,
    },
    /// Shows Stripe's copy of an event and whether it was processed here.
    Event {
        /// The event id (`evt_...`).
        #[arg(value_parser = event_id)]
        id: String,
        /// Processes it again through the webhook's own code (idempotent: a second replay
        /// changes nothing).
        #[arg(long)]
        replay: bool,
    },
    /// Lists the users due for reconciliation and what a sync would change, writing nothing.
    Reconcile {
        /// Required: the scheduled function makes the real pass.
        #[arg(long, required = true)]
        dry_run: bool,
        /// The most users to look at.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        limit: u64,
    },
}

/// The arguments of `grant` and `revoke`.
#[derive(Debug, Clone, Args)]
pub struct Adjust {
    /// The user id.
    #[arg(value_parser = user_id)]
    pub user: UserId,
    /// How many credits (or free messages).
    #[arg(value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub credits: i64,
    /// Why, as the user's history shows it (at most 200 characters).
    #[arg(long, value_parser = reason)]
    pub reason: String,
    /// Which balance.
    #[arg(long, value_enum, default_value_t = BalanceArg::Purchased)]
    pub balance: BalanceArg,
    /// The adjustment's id: running the command again with the same id changes nothing (a
    /// fresh one is made without it, and printed).
    #[arg(long)]
    pub id: Option<String>,
}

/// A balance, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BalanceArg {
    /// Purchased credits: never expire.
    Purchased,
    /// The plan's credits of the current period: expire with it.
    Credits,
    /// Free messages.
    FreeMessages,
}

impl From<BalanceArg> for Balance {
    fn from(arg: BalanceArg) -> Self {
        match arg {
            BalanceArg::Purchased => Balance::Purchased,
            BalanceArg::Credits => Balance::Credits,
            BalanceArg::FreeMessages => Balance::FreeMessages,
        }
    }
}

fn user_id(value: &str) -> Result<UserId, String> {
    UserId::parse(value).ok_or_else(|| "not a user id: a user id is a UUID".to_owned())
}

fn event_id(value: &str) -> Result<String, String> {
    let valid = value.starts_with("evt_")
        && value.len() <= 255
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match valid {
        true => Ok(value.to_owned()),
        false => Err("not an event id: one starts with evt_".to_owned()),
    }
}

fn reason(value: &str) -> Result<String, String> {
    match value.trim() {
        "" => Err("a reason is needed: the user's history shows it".to_owned()),
        reason if reason.chars().count() > 200 => {
            Err("a reason is at most 200 characters".to_owned())
        }
        reason => Ok(reason.to_owned()),
    }
}
