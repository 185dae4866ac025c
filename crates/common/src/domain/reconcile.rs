//! Reconciliation: when a record's billing may have moved at Stripe without a webhook telling
//! us, and how far a reconciliation pass got.

use super::subscription::SubscriptionStatus;
use super::user::UserId;

/// How soon a state that may move any minute (past due, incomplete, trialing, just linked, a
/// pack session being paid) is looked at again; also the least time between two checks of one
/// record, so that a pass never syncs a user twice.
pub const RECHECK_AFTER_SECS: i64 = 3600;
/// Time after a paid period's end for Stripe to renew it: the renewal invoice is finalized
/// about an hour after the period ends, and paid then.
pub const RENEWAL_GRACE_SECS: i64 = 3600;
/// How long after its period began (the paid one ended) an unpaid renewal of an active
/// subscription is looked at hourly: Stripe's automatic collection charges it within the hour and, failing, makes the
/// subscription past due; one still active and unpaid after this is paid by invoice
/// (`send_invoice`, days to pay), and is looked at daily.
pub const RENEWAL_HOURLY_SECS: i64 = 3 * 24 * 3600;
/// The default most time between two syncs of a linked user (`RECONCILE_MAX_AGE_HOURS`).
pub const DEFAULT_MAX_SYNC_AGE_SECS: i64 = 24 * 3600;

/// What the next check of a record depends on: its subscription's state as just observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The status of the subscription that matters ([`SubscriptionStatus::None`] without one).
    pub status: SubscriptionStatus,
    /// The end of its current period, Unix seconds.
    pub current_period_end: Option<i64>,
    /// Entitled, and the current period's invoice is not granted yet: since when that period
    /// runs unpaid (the end of the period paid last, or the status's start when none was),
    /// Unix seconds. Stripe finalises and charges a renewal up to an hour after the period
    /// ends, and later on retries.
    pub renewal_unpaid_since: Option<i64>,
    /// Since when the status is what it is, Unix seconds.
    pub status_since: i64,
    /// A Checkout session this service opened (a subscription's or a pack's) may still be paid.
    pub payment_pending: bool,
    /// Until when a purchase may still be refunded or disputed, Unix seconds.
    pub refundable_until: Option<i64>,
}

/// The longest a user with a purchase that may still be refunded waits between checks: as often
/// as a sync lists the charges.
pub const REFUNDABLE_RECHECK_SECS: i64 = super::clawbacks::CHARGES_LISTED_EVERY_SECS;

/// How long a state that pays nothing (canceled, never subscribed, unpaid, paused, expired)
/// waits between checks while it does not change: a day after the change, then a week, then a
/// month.
pub const QUIET_BACKOFF_SECS: [i64; 3] = [DAY_SECS, 7 * DAY_SECS, 30 * DAY_SECS];
/// Such a state unchanged for this long leaves the due index: a checkout, a webhook or a
/// manual sync puts the user back the moment anything moves.
pub const LEAVE_INDEX_AFTER_SECS: i64 = 90 * DAY_SECS;
const DAY_SECS: i64 = 24 * 3600;

/// When reconciliation should next re-sync `standing`, observed at `observed_at` (Unix
/// seconds), or `None` to leave the due index (`docs/data-model.md`, "When a user is due"):
/// - past due or incomplete: within the hour, while it lasts;
/// - active with its renewal not paid yet: within the hour, until it is paid or the
///   subscription leaves `active`, and daily once it has run unpaid for [`RENEWAL_HOURLY_SECS`];
/// - active and paid, or trialing: at the period's (the trial's) end plus
///   [`RENEWAL_GRACE_SECS`], at most `max_age_secs` away;
/// - unpaid, paused or unknown (Stripe holds it open and may still charge it): at most
///   `max_age_secs` away, never out of the index;
/// - canceled, expired or never subscribed: after the [`QUIET_BACKOFF_SECS`] step its quiet
///   time has reached, then out of the index once quiet for [`LEAVE_INDEX_AFTER_SECS`];
/// - whatever the state: within the hour while a payment is pending (a Checkout session that
///   may still be paid), and at most [`REFUNDABLE_RECHECK_SECS`] away, never out of the index,
///   while a purchase may still be refunded, with a last check at the refund window's
///   [`super::clawbacks::last_look`].
///
/// Never sooner than [`RECHECK_AFTER_SECS`] after the observation (a pass syncs a user once).
pub fn next_check(standing: &Standing, observed_at: i64, max_age_secs: i64) -> Option<i64> {
    let soonest = observed_at + RECHECK_AFTER_SECS.min(max_age_secs);
    let by_state = next_check_of_state(standing, observed_at, max_age_secs);
    let refundable = standing
        .refundable_until
        .filter(|until| *until > observed_at);
    // Weekly while refundable, and once more at the window's last look.
    let watch = refundable.map(|until| {
        let weekly = observed_at + REFUNDABLE_RECHECK_SECS;
        match super::clawbacks::last_look(until) {
            last if last > observed_at => weekly.min(last).max(soonest),
            _ => weekly,
        }
    });
    let watched = match watch {
        Some(watch) => Some(by_state.map_or(watch, |at| at.min(watch))),
        None => by_state,
    };
    match standing.payment_pending {
        true => Some(watched.map_or(soonest, |at| at.min(soonest))),
        false => watched,
    }
}

/// [`next_check`] by the subscription's state alone.
fn next_check_of_state(standing: &Standing, observed_at: i64, max_age_secs: i64) -> Option<i64> {
    let soonest = observed_at + RECHECK_AFTER_SECS.min(max_age_secs);
    let latest = observed_at + max_age_secs;
    let status = &standing.status;
    let unsettled = matches!(
        status,
        SubscriptionStatus::PastDue | SubscriptionStatus::Incomplete
    );
    if unsettled {
        return Some(soonest);
    }
    if let Some(since) = standing.renewal_unpaid_since
        && *status == SubscriptionStatus::Active
    {
        let by_invoice = observed_at - since >= RENEWAL_HOURLY_SECS;
        return Some(if by_invoice { latest } else { soonest });
    }
    if status.is_entitled() {
        let renewal = standing
            .current_period_end
            .map_or(latest, |end| end + RENEWAL_GRACE_SECS);
        return Some(renewal.clamp(soonest, latest));
    }
    if status.awaits_payment() {
        return Some(latest);
    }
    let quiet = observed_at - standing.status_since;
    if quiet >= LEAVE_INDEX_AFTER_SECS {
        return None;
    }
    let step = match quiet {
        q if q < QUIET_BACKOFF_SECS[0] => QUIET_BACKOFF_SECS[0],
        q if q < QUIET_BACKOFF_SECS[0] + QUIET_BACKOFF_SECS[1] => QUIET_BACKOFF_SECS[1],
        _ => QUIET_BACKOFF_SECS[2],
    };
    let last = standing.status_since + LEAVE_INDEX_AFTER_SECS;
    Some((observed_at + step).min(last).max(soonest))
}

/// The most Stripe calls one reconciliation run makes: its budget of calls per second over the
/// time it may sync (the function's timeout less the reserve that stores the cursor).
pub fn calls_per_run(per_second: u32, timeout_secs: u64, reserve_secs: u64) -> u64 {
    u64::from(per_second) * timeout_secs.saturating_sub(reserve_secs)
}

/// A user's place in the order reconciliation visits due users: by due time, then by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePosition {
    /// When the user's record became due, Unix seconds.
    pub due_at: i64,
    /// Whose record.
    pub user: UserId,
}

/// How far a reconciliation pass got: it visits, in order, the users due by the time it began;
/// a run that stops before its deadline leaves it for the next run to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileCursor {
    /// When the pass began, Unix seconds: it visits the users due by then, and no user synced
    /// in it is due again before it ends (see [`RECHECK_AFTER_SECS`]).
    pub pass_started_at: i64,
    /// The last user visited, if any.
    pub after: Option<DuePosition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;
    const DAY: i64 = 24 * HOUR;
    const NOW: i64 = 1_700_000_000;

    fn standing(status: &str, period_end: Option<i64>, unpaid: bool, since: i64) -> Standing {
        Standing {
            status: SubscriptionStatus::parse(status),
            current_period_end: period_end,
            // A renewal unpaid since its period began, an hour ago.
            renewal_unpaid_since: unpaid.then_some(NOW - HOUR),
            status_since: since,
            payment_pending: false,
            refundable_until: None,
        }
    }

    /// Seconds from now to the next check of `status` observed now (`None`: out of the index).
    fn check(status: &str, period_end: Option<i64>, unpaid: bool, since: i64) -> Option<i64> {
        next_check(&standing(status, period_end, unpaid, since), NOW, DAY).map(|at| at - NOW)
    }

    #[test]
    fn a_paid_period_is_checked_after_its_end_within_the_max_age() {
        assert_eq!(
            check("active", Some(NOW + 5 * HOUR), false, NOW),
            Some(6 * HOUR)
        );
        assert_eq!(check("active", Some(NOW + 30 * DAY), false, NOW), Some(DAY));
        // A period Stripe has not renewed yet: an hour later, never at once.
        assert_eq!(check("active", Some(NOW - DAY), false, NOW), Some(HOUR));
    }

    #[test]
    fn a_renewal_not_paid_yet_is_checked_hourly_until_it_is() {
        let renewed = Some(NOW + 30 * DAY);
        assert_eq!(check("active", renewed, true, NOW - 40 * DAY), Some(HOUR));
        assert_eq!(check("active", renewed, false, NOW - 40 * DAY), Some(DAY));
        // Still unpaid three days after its period began: paid by invoice, checked daily.
        let mut by_invoice = standing("active", renewed, true, NOW - 40 * DAY);
        by_invoice.renewal_unpaid_since = Some(NOW - RENEWAL_HOURLY_SECS);
        assert_eq!(next_check(&by_invoice, NOW, DAY), Some(NOW + DAY));
        by_invoice.renewal_unpaid_since = Some(NOW - RENEWAL_HOURLY_SECS + 1);
        assert_eq!(next_check(&by_invoice, NOW, DAY), Some(NOW + HOUR));
        // A trial pays nothing until it ends: checked as a paid period is.
        assert_eq!(
            check("trialing", Some(NOW + 5 * HOUR), true, NOW),
            Some(6 * HOUR)
        );
    }

    #[test]
    fn unsettled_states_are_checked_hourly_while_they_last() {
        for status in ["past_due", "incomplete"] {
            let since = NOW - 20 * DAY;
            assert_eq!(
                check(status, Some(NOW + 10 * DAY), false, since),
                Some(HOUR),
                "{status}"
            );
        }
    }

    #[test]
    fn states_that_pay_nothing_back_off_a_day_a_week_a_month_then_leave_the_index() {
        for status in ["none", "canceled", "incomplete_expired"] {
            // Observed at each check the backoff makes, from the change on: a day, then a
            // week, then a month twice, then the last check at 90 days, after which none.
            let (since, mut at, mut checks) = (NOW, NOW, vec![]);
            while let Some(next) = next_check(&standing(status, None, false, since), at, DAY) {
                checks.push((next - since) / DAY);
                at = next;
            }
            assert_eq!(checks, [1, 8, 38, 68, 90], "{status}");
        }
        assert_eq!(check("canceled", None, false, NOW - 90 * DAY), None);
        assert_eq!(check("canceled", None, false, NOW - 89 * DAY), Some(DAY));
    }

    #[test]
    fn a_subscription_stripe_may_still_charge_is_checked_daily_and_never_leaves() {
        for status in ["unpaid", "paused", "something_new"] {
            assert_eq!(
                check(status, None, false, NOW - 400 * DAY),
                Some(DAY),
                "{status}"
            );
        }
    }

    #[test]
    fn a_pending_payment_or_a_refundable_purchase_keeps_a_quiet_user_watched() {
        let mut quiet = standing("canceled", None, false, NOW - 100 * DAY);
        assert_eq!(next_check(&quiet, NOW, DAY), None);
        quiet.refundable_until = Some(NOW + 170 * DAY);
        assert_eq!(next_check(&quiet, NOW, DAY), Some(NOW + 7 * DAY));
        // The refund window's last week: a last check an hour before it closes.
        quiet.refundable_until = Some(NOW + 3 * DAY);
        assert_eq!(next_check(&quiet, NOW, DAY), Some(NOW + 3 * DAY - HOUR));
        // Closing within the hour or two: an hour on, still inside the window.
        quiet.refundable_until = Some(NOW + 90 * 60);
        assert_eq!(next_check(&quiet, NOW, DAY), Some(NOW + HOUR));
        quiet.refundable_until = Some(NOW + 170 * DAY);
        quiet.payment_pending = true;
        assert_eq!(next_check(&quiet, NOW, DAY), Some(NOW + HOUR));
        quiet.refundable_until = Some(NOW - 1);
        assert_eq!(
            next_check(&quiet, NOW, DAY),
            Some(NOW + HOUR),
            "a checkout still open"
        );
        let paying = Standing {
            payment_pending: true,
            ..standing("active", Some(NOW + 20 * DAY), false, NOW)
        };
        assert_eq!(next_check(&paying, NOW, DAY), Some(NOW + HOUR));
    }

    #[test]
    fn a_max_age_under_an_hour_bounds_the_recheck_too() {
        let past_due = standing("past_due", None, false, NOW);
        assert_eq!(next_check(&past_due, NOW, 600), Some(NOW + 600));
    }
}
