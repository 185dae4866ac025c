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
    let login = ops.login()?;
    let billing = ops
        .billing
        .as_ref()
        .map_err(|_| common::ApiError::BillingNotConfigured);
    let store = ops.store.as_ref();
    let erased = delete_account::erase(store, billing, login, &ops.rules, user).await;
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
