//! The scheduled reconciliation (EventBridge, hourly by default; no route): resume the pass under
//! way or begin one → read the users due by the pass's start from the `due` index, a page at a
//! time → re-sync them through the shared sync, a few at once (it grants a paid period that is
//! owed, once per invoice) → a resumed pass that ends with time left begins this run's own, so
//! that a backlog never halves the runs → stop before the deadline, leaving a cursor, or end the
//! pass → report, and count it in the billing metrics.
//!
//! A user's failure (Stripe or storage) is logged and counted, and never stops the run; the user
//! stays due for the next pass. Every write is the sync's own: conditional, single-item.

use std::time::{Duration, Instant};

use common::ApiError;
use common::app::App;
use common::billing::Billing;
use common::config::ReconcileConfig;
use common::domain::{ReconcileCursor, UserId, UserRecord};
use common::metrics::{self, Metric};
use common::store::Store;
use common::sync::sync_subscription;
use futures_util::future::join_all;
use serde::Serialize;

/// Due users read per index page.
const PAGE: usize = 100;
/// Pause after a batch in which Stripe rate-limited a call beyond the client's own retries.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(2);

/// What one run did: the function's result, and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Users re-synced.
    pub checked: usize,
    /// Of those, users whose record changed: what a lost webhook should have told us.
    pub repaired: usize,
    /// Users that could not be re-synced (they stay due).
    pub failed: usize,
    /// Users found subscribed (active or trialing) after their re-sync.
    pub subscribers: usize,
    /// Whether the pass ended in this run (else the cursor is left for the next).
    pub pass_complete: bool,
}

/// Runs reconciliation until the pass ends or `deadline` comes near.
pub async fn reconcile(
    app: &App,
    settings: &ReconcileConfig,
    deadline: Instant,
) -> Result<Report, ApiError> {
    let billing = app.billing()?;
    billing.pace(settings.stripe_rps);
    let store = app.store.as_ref();
    let fresh = || ReconcileCursor {
        pass_started_at: common::unix_now(),
        after: None,
    };
    let resumed = store.reconcile_cursor().await?;
    let mut resuming = resumed.is_some();
    let mut cursor = resumed.unwrap_or_else(fresh);
    let mut report = Report::default();
    let time_left = || deadline.saturating_duration_since(Instant::now());
    'pass: loop {
        let due_by = cursor.pass_started_at;
        let (page, more) = store.due_users(due_by, cursor.after.as_ref(), PAGE).await?;
        for batch in page.chunks(settings.concurrency) {
            if time_left() <= settings.reserve {
                break 'pass;
            }
            let syncs = join_all(batch.iter().map(|due| resync(billing, store, &due.user)));
            // Bounded by the deadline less the reserve, so that the cursor is always stored.
            let batch_time = time_left().saturating_sub(settings.reserve);
            let Ok(outcomes) = tokio::time::timeout(batch_time, syncs).await else {
                break 'pass; // the batch is left for the next run
            };
            let rate_limited = outcomes.contains(&Outcome::RateLimited);
            for outcome in outcomes {
                report.count(outcome);
            }
            cursor.after = batch.last().cloned();
            if rate_limited {
                tokio::time::sleep(RATE_LIMIT_PAUSE.min(time_left())).await;
            }
        }
        if !more && resuming && report.failed == 0 && time_left() > settings.reserve {
            // The users synced in the pass that ended are not due again within the hour
            // (`RECHECK_AFTER_SECS`), so the new pass syncs none of them twice. A user whose sync
            // failed keeps its due time: after a failure the new pass waits for the next run,
            // so that a failing Stripe is not asked twice in one run.
            resuming = false;
            cursor = fresh();
            continue;
        }
        if !more {
            report.pass_complete = true;
            break;
        }
    }
    let left = (!report.pass_complete).then_some(&cursor);
    store.save_reconcile_cursor(left).await?;
    tracing::info!(
        ?report,
        pass_started_at = cursor.pass_started_at,
        stripe_calls_per_second = billing.calls_per_second(),
        "reconciliation run"
    );
    metrics::count(Metric::ReconcileChecked, report.checked as u64);
    metrics::count(Metric::ReconcileRepaired, report.repaired as u64);
    metrics::count(Metric::ReconcileFailed, report.failed as u64);
    metrics::count(Metric::ReconcileSubscribers, report.subscribers as u64);
    let pass_age = match report.pass_complete {
        true => 0,
        false => common::unix_now() - cursor.pass_started_at,
    };
    metrics::count(Metric::ReconcilePassAge, pass_age.max(0) as u64);
    Ok(report)
}

/// What the re-sync of one user came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The record changed; `true` if subscribed now.
    Repaired(bool),
    /// Nothing had moved; `true` if subscribed.
    Unchanged(bool),
    /// No record (erased meanwhile) or no customer: nothing to sync.
    Gone,
    /// Stripe rate-limited the sync beyond the client's retries.
    RateLimited,
    /// Stripe or storage failed.
    Failed,
}

impl Report {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Repaired(subscribed) | Outcome::Unchanged(subscribed) => {
                self.checked += 1;
                self.repaired += usize::from(matches!(outcome, Outcome::Repaired(_)));
                self.subscribers += usize::from(subscribed);
            }
            Outcome::Gone => {}
            Outcome::RateLimited | Outcome::Failed => self.failed += 1,
        }
    }
}

/// Re-syncs `user` through the shared sync.
async fn resync(billing: &Billing, store: &dyn Store, user: &UserId) -> Outcome {
    let result = async {
        let Some(before) = store.get_user(user).await? else {
            return Ok(None);
        };
        if before.stripe_customer_id.is_none() {
            return Ok(None);
        }
        let after = sync_subscription(billing, store, before.clone()).await?;
        Ok::<_, ApiError>(Some((before, after)))
    }
    .await;
    match result {
        Ok(None) => Outcome::Gone,
        Ok(Some((before, after))) => {
            let subscribed = after.subscription_status.is_entitled();
            if moved(&before, &after) {
                tracing::warn!(user = %user.hash(), status = %after.subscription_status, "reconciliation repaired a record");
                Outcome::Repaired(subscribed)
            } else {
                Outcome::Unchanged(subscribed)
            }
        }
        Err(err) => {
            tracing::warn!(user = %user.hash(), error = %err.code(), "reconciliation could not re-sync a user");
            if err == ApiError::StripeUnavailable {
                Outcome::RateLimited
            } else {
                Outcome::Failed
            }
        }
    }
}

/// Whether the billing state differs: what a webhook should have brought. (Credits spent in the
/// meantime are not a change of billing.)
fn moved(before: &UserRecord, after: &UserRecord) -> bool {
    before.subscription_status != after.subscription_status
        || before.plan != after.plan
        || before.current_period_end != after.current_period_end
        || before.cancel_at_period_end != after.cancel_at_period_end
        || before.granted_invoices != after.granted_invoices
}

/// One scheduled invocation: reconciles until the invocation's deadline comes near.
pub async fn handle(
    app: &App,
    settings: &ReconcileConfig,
    event: lambda_runtime::LambdaEvent<serde_json::Value>,
) -> Result<Report, ApiError> {
    let deadline = Instant::now() + common::time_until(event.context.deadline);
    reconcile(app, settings, deadline).await
}
