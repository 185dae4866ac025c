//! `grant` and `revoke`: an operator's adjustment through the ledger's own rule
//! (`common::credits::adjust`), once per adjustment id, never below zero.

use std::io::Write;

use common::credits::{self, AdjustError, AdjustOutcome};
use common::domain::{AdjustmentRefusal, Balance};
use serde_json::json;

use crate::cli::Adjust;
use crate::{Exit, Failure, Ops, Report, audit};

/// Adds (`sign` 1) or takes (`sign` -1) `args.credits` of the balance named.
pub async fn adjust(
    ops: &Ops,
    operator: &str,
    args: &Adjust,
    sign: i64,
    log: &mut dyn Write,
) -> Result<Report, Failure> {
    let (command, balance) = (
        if sign > 0 { "grant" } else { "revoke" },
        Balance::from(args.balance),
    );
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("adm_{}", uuid::Uuid::new_v4().simple()));
    let amount = sign * args.credits;
    let record = super::record_of(ops, &args.user).await?;
    if record.erasing_since.is_some() {
        return Err(Failure::new(
            Exit::Refused,
            "the user is being erased: nothing changed",
        ));
    }
    let store = ops.store.as_ref();
    let done = credits::adjust(
        store,
        &args.user,
        balance,
        amount,
        &args.reason,
        operator,
        &id,
    )
    .await;
    let (outcome, result) = match done {
        Ok(AdjustOutcome::Adjusted(now)) => ("adjusted", Ok(Some(now))),
        Ok(AdjustOutcome::AlreadyApplied) => ("already applied", Ok(None)),
        Err(AdjustError::Refused(AdjustmentRefusal::BelowZero { balance, .. })) => (
            "refused",
            Err(Failure::new(
                Exit::Refused,
                format!(
                    "the balance is {balance}: revoking {} would take it below zero; nothing changed",
                    args.credits
                ),
            )),
        ),
        Err(AdjustError::Refused(refusal)) => (
            "refused",
            Err(Failure::new(Exit::Usage, refusal.to_string())),
        ),
        Err(AdjustError::NoUser) => (
            "not found",
            Err(Failure::new(
                Exit::NotFound,
                "no such user: nothing is stored for this id",
            )),
        ),
        Err(AdjustError::Unavailable(err)) => {
            let failed = Failure::from(err);
            let message = format!(
                "{}: it may have been applied; run it again with --id {id} (never without: that \
                 would adjust twice)",
                failed.message
            );
            ("failed", Err(Failure::new(failed.exit, message)))
        }
    };
    let detail = json!({
        "adjustment": id, "balance": balance.as_str(), "amount": amount,
        "reason": args.reason, "outcome": outcome,
    });
    audit(log, operator, command, Some(&args.user), detail);
    let now = result?;
    let text = match now {
        Some(now) => format!(
            "{command}: {amount:+} {} for {} (adjustment {id}); the balance is now {now}\n",
            balance.as_str(),
            args.user.as_str()
        ),
        None => format!("adjustment {id} was applied before; nothing changed\n"),
    };
    let json = json!({"adjustment": id, "applied": now.is_some(), "balance": balance.as_str(), "amount": amount, "balance_after": now});
    Ok(Report { text, json })
}
