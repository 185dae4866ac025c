//! `erase <user> --yes`: the endpoint's own staged, resumable erasure, for a user who cannot
//! sign in.

use std::io::Write;

use common::domain::{ErasureStage, UserId};
use serde_json::json;

use crate::{Exit, Failure, Ops, Report, audit};

pub async fn erase(
    ops: &Ops,
    operator: &str,
    user: &UserId,
    yes: bool,
    log: &mut dyn Write,
) -> Result<Report, Failure> {
    if !yes {
        return Err(Failure::new(
            Exit::Usage,
            "erase deletes everything of this user, at Stripe, here and at the auth service, \
             for good: run it again with --yes",
        ));
    }
    // Every setting first: the erasure marks the record before it calls anyone, and an operator's
    // shell without Stripe settings must not skip the customers Stripe holds.
    let (login, billing) = (ops.login()?, ops.billing()?);
    let store = ops.store.as_ref();
    if store.get_user(user).await?.is_none() && store.tombstone(user).await?.is_none() {
        return Err(Failure::new(
            Exit::NotFound,
            "no such user: nothing is stored for this id (check it: an erasure is for good)",
        ));
    }
    let erased = delete_account::erase(store, Ok(billing), login, &ops.rules, user).await;
    let stage = |s: Option<ErasureStage>| s.map_or("none", ErasureStage::as_str);
    let detail = match &erased {
        Ok(e) => {
            json!({"outcome": "erased", "resumed_from": stage(e.resumed_from), "stage": stage(e.stage), "items": e.items, "stripe_customers": e.stripe_customers, "login": e.login})
        }
        Err(err) => json!({"outcome": "failed", "error": err.code()}),
    };
    audit(log, operator, "erase", Some(user), detail.clone());
    let erased = erased?;
    let text = format!(
        "erased {}: {} items, {} Stripe customers; login {}; stage {}\n",
        user.as_str(),
        erased.items,
        erased.stripe_customers,
        erased.login,
        stage(erased.stage)
    );
    Ok(Report { text, json: detail })
}
