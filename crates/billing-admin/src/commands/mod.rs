//! The subcommands, one module each, and what they share: the operator, the user's record,
//! and what changed on it.

mod adjust;
mod erase;
mod event;
mod reconcile;
mod show;
mod sync;

use std::io::Write;

use common::domain::{UserId, UserRecord};
use serde_json::{Value, json};

use crate::{Cli, Command, Exit, Failure, Ops, Report};

/// Runs the subcommand of `cli`.
pub async fn run(cli: &Cli, ops: &Ops, log: &mut dyn Write) -> Result<Report, Failure> {
    match &cli.command {
        Command::Show { user } => show::show(ops, user).await,
        Command::Grant(args) => adjust::adjust(ops, operator(cli)?, args, 1, log).await,
        Command::Revoke(args) => adjust::adjust(ops, operator(cli)?, args, -1, log).await,
        Command::Sync { user } => sync::sync(ops, operator(cli)?, user, log).await,
        Command::Erase { user, yes } => erase::erase(ops, operator(cli)?, user, *yes, log).await,
        Command::Event { id, replay: false } => event::show(ops, id).await,
        Command::Event { id, replay: true } => event::replay(ops, operator(cli)?, id, log).await,
        Command::Reconcile { dry_run, limit } => {
            reconcile::dry_run(ops, *dry_run, *limit, !cli.json).await
        }
    }
}

/// Who is acting: every write names them.
fn operator(cli: &Cli) -> Result<&str, Failure> {
    let named = cli.operator.as_deref().map(str::trim);
    named.filter(|o| !o.is_empty()).ok_or_else(|| {
        Failure::new(
            Exit::Usage,
            "name the operator: --operator, or BILLING_OPERATOR (for example \
             `export BILLING_OPERATOR=$(aws sts get-caller-identity --query Arn --output text)`)",
        )
    })
}

/// The record of `user`: not found (exit 3) without one, saying whether the user was erased.
async fn record_of(ops: &Ops, user: &UserId) -> Result<UserRecord, Failure> {
    if let Some(record) = ops.store.get_user(user).await? {
        return Ok(record);
    }
    let message = match ops.store.tombstone(user).await? {
        Some(tombstone) => format!(
            "the user was erased (stage {}, began {})",
            tombstone.stage.as_str(),
            common::domain::entries::rfc3339(tombstone.erased_at)
        ),
        None => "no such user: nothing is stored for this id".to_owned(),
    };
    Err(Failure::new(Exit::NotFound, message))
}

/// Each field of the record an operator reads that differs between `before` and `after`, as
/// (field, before, after).
fn changes(before: &UserRecord, after: &UserRecord) -> Vec<(&'static str, Value, Value)> {
    let fields = |r: &UserRecord| {
        [
            ("subscription_status", json!(r.subscription_status.as_str())),
            ("plan", json!(r.plan)),
            ("plan_credits", json!(r.credits_remaining)),
            ("purchased_credits", json!(r.purchased_credits)),
            ("free_messages_remaining", json!(r.free_messages_remaining)),
            ("current_period_end", json!(r.current_period_end)),
            ("cancel_at_period_end", json!(r.cancel_at_period_end)),
            ("stripe_customer_id", json!(r.stripe_customer_id)),
        ]
    };
    let (before, after) = (fields(before), fields(after));
    before
        .into_iter()
        .zip(after)
        .filter(|((_, b), (_, a))| b != a)
        .map(|((name, b), (_, a))| (name, b, a))
        .collect()
}

/// The lines and the JSON of `changes`.
fn describe_changes(changes: &[(&'static str, Value, Value)]) -> (String, Value) {
    let text = changes
        .iter()
        .map(|(name, before, after)| format!("  {name}: {before} -> {after}\n"))
        .collect();
    let json = changes
        .iter()
        .map(|(name, before, after)| json!({"field": name, "before": before, "after": after}))
        .collect();
    (text, json)
}
