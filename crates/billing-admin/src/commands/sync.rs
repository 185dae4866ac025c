//! `sync <user>`: the shared sync (Stripe's state, and any period, pack or clawback owed), and
//! what it changed.

use std::collections::BTreeSet;
use std::io::Write;

use common::domain::UserId;
use common::export;
use serde_json::json;

use super::{changes, describe_changes, record_of};
use crate::{Exit, Failure, Ops, Report, audit};

/// Entries compared before and after, to name the new ones.
const ENTRIES_COMPARED: usize = 100;

pub async fn sync(
    ops: &Ops,
    operator: &str,
    user: &UserId,
    log: &mut dyn Write,
) -> Result<Report, Failure> {
    let billing = ops.billing()?;
    let before = record_of(ops, user).await?;
    if before.erasing_since.is_some() {
        return Err(Failure::new(
            Exit::Refused,
            "the user is being erased: nothing to sync",
        ));
    }
    let store = ops.store.as_ref();
    let (earlier, _) = store.entries(user, None, ENTRIES_COMPARED).await?;
    let synced = common::sync::sync_subscription(billing, store, before.clone()).await;
    let outcome = if synced.is_ok() { "synced" } else { "failed" };
    audit(
        log,
        operator,
        "sync",
        Some(user),
        json!({"outcome": outcome}),
    );
    synced?;
    let after = record_of(ops, user).await?;
    let known: BTreeSet<_> = earlier.iter().map(|e| e.key.clone()).collect();
    let (later, _) = store.entries(user, None, ENTRIES_COMPARED).await?;
    let new: Vec<_> = later.iter().filter(|e| !known.contains(&e.key)).collect();
    let changed = changes(&before, &after);
    let (mut text, fields) = describe_changes(&changed);
    for entry in &new {
        text.push_str(&format!(
            "  new entry: {} {:+} {} ({})\n",
            entry.kind.as_str(),
            entry.amount,
            entry.balance.as_str(),
            entry.cause
        ));
    }
    if text.is_empty() {
        text = "nothing changed: the record already matched Stripe\n".to_owned();
    }
    let entries: Vec<_> = new.iter().map(|e| export::entry_of(e)).collect();
    let json = json!({"user_id": user.as_str(), "changes": fields, "new_entries": entries});
    Ok(Report { text, json })
}
