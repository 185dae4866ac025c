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
/// The default most time between two syncs of a linked user (`RECONCILE_MAX_AGE_HOURS`).
pub const DEFAULT_MAX_SYNC_AGE_SECS: i64 = 24 * 3600;

/// When reconciliation should next re-sync a state observed at `observed_at` (Unix seconds):
/// at the end of an entitled period plus [`RENEWAL_GRACE_SECS`]; after [`RECHECK_AFTER_SECS`]
/// for a past due, incomplete or trialing subscription; otherwise once `max_age_secs` old.
/// Never sooner than [`RECHECK_AFTER_SECS`] after the observation, never later than `max_age_secs`.
pub fn next_check(
    status: &SubscriptionStatus,
    current_period_end: Option<i64>,
    observed_at: i64,
    max_age_secs: i64,
) -> i64 {
    let latest = observed_at + max_age_secs;
    let soonest = observed_at + RECHECK_AFTER_SECS.min(max_age_secs);
    let wanted = match status {
        SubscriptionStatus::PastDue
        | SubscriptionStatus::Incomplete
        | SubscriptionStatus::Trialing => soonest,
        entitled if entitled.is_entitled() => {
            current_period_end.map_or(latest, |end| end + RENEWAL_GRACE_SECS)
        }
        _ => latest,
    };
    wanted.clamp(soonest, latest)
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

    fn check(status: &str, period_end: Option<i64>) -> i64 {
        next_check(&SubscriptionStatus::parse(status), period_end, NOW, DAY) - NOW
    }

    #[test]
    fn an_active_period_is_checked_after_its_end_within_the_max_age() {
        assert_eq!(check("active", Some(NOW + 5 * HOUR)), 6 * HOUR);
        assert_eq!(check("active", Some(NOW + 30 * DAY)), DAY);
        // A period Stripe has not renewed yet: an hour later, never at once.
        assert_eq!(check("active", Some(NOW - DAY)), HOUR);
    }

    #[test]
    fn unsettled_states_are_checked_within_the_hour_the_rest_once_a_day() {
        for status in ["past_due", "incomplete", "trialing"] {
            assert_eq!(check(status, Some(NOW + 10 * DAY)), HOUR, "{status}");
        }
        for status in ["none", "canceled", "incomplete_expired", "unpaid", "paused"] {
            assert_eq!(check(status, None), DAY, "{status}");
        }
    }

    #[test]
    fn a_max_age_under_an_hour_bounds_the_recheck_too() {
        let status = SubscriptionStatus::PastDue;
        assert_eq!(next_check(&status, None, NOW, 600), NOW + 600);
    }
}
