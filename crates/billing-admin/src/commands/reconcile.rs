//! `reconcile --dry-run`: the users due for a re-sync, in the order the pass visits them, and
//! what a sync would change of each one's subscription, read from Stripe; nothing is written
//! (a duplicate subscription is reported, never canceled).

use common::domain::DuePosition;
use common::domain::entries::rfc3339;
use common::sync::{decide, ours};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{changes, describe_changes};
use crate::{Exit, Failure, Ops, Report};

/// Users per page of the due index.
const PAGE: usize = 100;

pub async fn dry_run(
    ops: &Ops,
    dry_run: bool,
    limit: u64,
    progress: bool,
) -> Result<Report, Failure> {
    if !dry_run {
        return Err(Failure::new(
            Exit::Usage,
            "only --dry-run: the scheduled function makes the real pass",
        ));
    }
    let billing = ops.billing()?;
    let now = common::unix_now();
    let bar = match progress {
        true => ProgressBar::new_spinner(),
        false => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} users looked at, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let (mut text, mut listed, mut after): (String, Vec<_>, Option<DuePosition>) =
        (String::new(), Vec::new(), None);
    let mut changed_users = 0;
    'pages: loop {
        let (due, more) = ops.store.due_users(now, after.as_ref(), PAGE).await?;
        for position in &due {
            if listed.len() as u64 >= limit {
                break 'pages;
            }
            let Some(record) = ops.store.get_user(&position.user).await? else {
                continue;
            };
            let Some(customer) = record.stripe_customer_id.clone() else {
                continue;
            };
            let subscriptions = billing.list_subscriptions(&customer).await?;
            let subscriptions = ours(subscriptions, &billing.config, &position.user);
            let live = subscriptions
                .iter()
                .filter(|s| !common::billing::status_of(s).ends_paid_credits())
                .count();
            let view = decide(
                &subscriptions,
                &billing.config,
                common::unix_now_ms(),
                &record,
            );
            let would = changes(&record, &record.clone().with_subscription(&view));
            let (lines, fields) = describe_changes(&would);
            let user = position.user.as_str();
            text.push_str(&format!(
                "{user} due {}: {}\n{lines}",
                rfc3339(position.due_at),
                if would.is_empty() {
                    "no change"
                } else {
                    "would change"
                }
            ));
            if live > 1 {
                text.push_str(&format!(
                    "  {live} live subscriptions: the sync keeps one and cancels the others\n"
                ));
            }
            changed_users += usize::from(!would.is_empty());
            listed.push(json!({"user_id": user, "due_at": rfc3339(position.due_at), "changes": fields, "live_subscriptions": live}));
            bar.inc(1);
            bar.set_message(format!("{changed_users} would change"));
        }
        match (more, due.last()) {
            (true, Some(last)) => after = Some(last.clone()),
            _ => break,
        }
    }
    bar.finish_and_clear();
    text.push_str(&format!(
        "{} users due, {changed_users} would change; nothing was written\n",
        listed.len()
    ));
    Ok(Report {
        text,
        json: json!({"due": listed, "would_change": changed_users}),
    })
}
