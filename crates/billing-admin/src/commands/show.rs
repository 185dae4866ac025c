//! `show <user>`: the record and the last 20 ledger entries, as support reads them.

use std::fmt::Write as _;

use common::domain::UserId;
use common::domain::entries::rfc3339;
use common::export;
use serde_json::json;

use super::record_of;
use crate::{Failure, Ops, Report};

/// Entries shown.
const LAST_ENTRIES: usize = 20;

pub async fn show(ops: &Ops, user: &UserId) -> Result<Report, Failure> {
    let record = record_of(ops, user).await?;
    let (entries, more) = ops.store.entries(user, None, LAST_ENTRIES).await?;
    let profile = export::profile_of(&record);
    let mut text = format!("user {}\n", user.as_str());
    let _ = writeln!(
        text,
        "  plan {} ({}), plan credits {}, purchased {}, free messages {}/{}",
        record.plan,
        record.subscription_status.as_str(),
        record.credits_remaining,
        record.purchased_credits,
        record.free_messages_remaining,
        record.free_messages_total,
    );
    let customer = record.stripe_customer_id.as_deref().unwrap_or("none");
    let subscription = record.subscription_id.as_deref().unwrap_or("none");
    let _ = writeln!(text, "  customer {customer}, subscription {subscription}");
    if let Some(since) = record.erasing_since {
        let _ = writeln!(text, "  BEING ERASED since {}", rfc3339(since));
    }
    let _ = writeln!(text, "last {} ledger entries, newest first:", entries.len());
    let mut listed = Vec::new();
    for entry in &entries {
        let by = entry
            .operator
            .as_deref()
            .map(|o| format!(" by {o}"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "  {}  {:<18} {:<13} {:>+7} -> {:<7} {}{by}",
            rfc3339(entry.at),
            entry.kind.as_str(),
            entry.balance.as_str(),
            entry.amount,
            entry.balance_after,
            entry.cause,
        );
        let mut shown = serde_json::to_value(export::entry_of(entry)).unwrap_or_default();
        shown["operator"] = json!(entry.operator);
        listed.push(shown);
    }
    let json = json!({
        "user_id": user.as_str(),
        "stripe_customer_id": record.stripe_customer_id,
        "erasing_since": record.erasing_since,
        "profile": profile,
        "entries": listed,
        "more_entries": more,
    });
    Ok(Report { text, json })
}
