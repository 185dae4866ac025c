//! The rules that decide each change of a balance: each reads a [`UserRecord`] and answers the
//! [`Posting`] a store applies only if what it read still stands ([`Seen`]), or why nothing is
//! owed. Each rule is stated here once; the stores only apply what it decided.

use super::entries::{Entry, EntryKind};
use super::ledger::{Balance, CreditGrant, Period};
use super::subscription::SubscriptionStatus;
use super::user::UserRecord;

/// What a record held when a change was decided on it: the store applies the change only if it
/// still does, so the rule that decided holds when it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The subscription status.
    pub status: SubscriptionStatus,
    /// The paid period.
    pub period: Period,
    /// The value of the entry's balance, before the change.
    pub before: i64,
}

/// A change of one balance with its entry, as a store applies it in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// The entry; the balance becomes its `balance_after`.
    pub entry: Entry,
    /// What the change was decided on.
    pub seen: Seen,
    /// A grant's invoice, recorded as granted, with its plan's credits as the most of the period
    /// (and, when it starts one, its period as the current one).
    pub grant: Option<CreditGrant>,
    /// An id the change is done at most once for, beyond its entry's key (adjustments, whose
    /// key holds the time of the first try).
    pub once: Option<String>,
    /// The pending pack session the change grants ([`crate::domain::packs::PendingPack`]): it
    /// leaves the record in the same write, and the change is applied only while it is there.
    pub settles: Option<String>,
}

/// What a store's posting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    /// Applied now, entry and balance together.
    Posted,
    /// Its entry (or its once-only id) was written before: nothing was done now.
    AlreadyPosted,
    /// The record no longer holds what the change was decided on: nothing was written; decide
    /// again on a fresh read.
    Moved,
}

/// Why a paid invoice grants nothing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantRefusal {
    /// It was granted before.
    #[error("this invoice's period was granted before")]
    AlreadyGranted,
    /// A newer invoice's period was granted.
    #[error("a newer period was granted")]
    Superseded,
    /// The subscription is not entitled now.
    #[error("the subscription is not active")]
    NotEntitled,
    /// A plan change that adds nothing: a downgrade, or back to a plan held in the period.
    #[error("the plan change adds no credits in this period")]
    NoUpgrade,
    /// A plan change within a period whose own invoice is not granted yet (a renewal still
    /// being finalised when the plan changed): it is granted after that one.
    #[error("the plan change is in a period not granted yet")]
    PeriodNotGranted,
}

/// Why an operator's adjustment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdjustmentRefusal {
    /// It would take the balance below zero.
    #[error("the balance is {balance}: an adjustment of {amount} would take it below zero")]
    BelowZero {
        /// The balance now.
        balance: i64,
        /// The adjustment asked for.
        amount: i64,
    },
    /// An adjustment of zero, an empty reason or operator, or an id that is not 1 to 128
    /// printable ASCII characters.
    #[error(
        "an adjustment needs a non-zero amount, a reason, an operator and an id of 1 to 128 printable ASCII characters"
    )]
    Incomplete,
}

/// An operator's adjustment of one balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment<'a> {
    /// The id it is done at most once for (the operator tool's).
    pub id: &'a str,
    /// The balance adjusted.
    pub balance: Balance,
    /// The signed change.
    pub amount: i64,
    /// Why (shown to the user).
    pub reason: &'a str,
    /// Who (kept for support).
    pub operator: &'a str,
    /// When, Unix seconds.
    pub at: i64,
}

impl UserRecord {
    /// What this record holds for a change of `balance`.
    pub(super) fn seen(&self, balance: Balance) -> Seen {
        Seen {
            status: self.subscription_status.clone(),
            period: self.last_grant_created,
            before: self.balance(balance),
        }
    }

    /// Why `grant` is not owed whatever the status: granted before, behind a newer period, or
    /// a change within a period not granted yet. Periods are compared by their invoices' lines
    /// when both are known (a period starting later is newer; a change is of the granted period
    /// when its proration ends where that period does), else by the invoices' creation times.
    fn had_period(&self, grant: &CreditGrant) -> Option<GrantRefusal> {
        if self.granted_invoices.contains(&grant.invoice_id) {
            return Some(GrantRefusal::AlreadyGranted);
        }
        let lines = grant.period_start.zip(grant.period_end);
        let granted = self.granted_period_start.zip(self.granted_period_end);
        let Some(((start, end), (granted_start, granted_end))) = lines.zip(granted) else {
            return (self.last_grant_created > grant.invoice_created)
                .then_some(GrantRefusal::Superseded);
        };
        match grant.starts_period {
            true if start > granted_start => None,
            true => Some(GrantRefusal::Superseded),
            false if end == granted_end && start >= granted_start => None,
            false if start < granted_start => Some(GrantRefusal::Superseded),
            false => Some(GrantRefusal::PeriodNotGranted),
        }
    }

    /// The credits a plan change of `grant` within the current period adds: the new plan's
    /// beyond the most granted in the period (`None`: nothing, a downgrade or a return to a
    /// plan held before; or a period granted before the most was recorded).
    fn upgrade_of(&self, grant: &CreditGrant) -> Option<i64> {
        let most = self.period_credits?;
        (grant.credits > most).then(|| grant.credits - most)
    }

    /// Whether `grant` is owed and has not been had yet (granted once the status is entitled:
    /// [`UserRecord::grant`]).
    pub fn lacks_grant(&self, grant: &CreditGrant) -> bool {
        self.had_period(grant).is_none()
            && (grant.starts_period || self.upgrade_of(grant).is_some())
    }

    /// The grant a paid invoice owes, once per invoice, only while entitled, never behind a
    /// newer period. An invoice that starts a period sets the credits to the plan's (what was
    /// left expires with the old period), unless it is a switch that cuts the period before
    /// short ([`CreditGrant::switches_period`]): that one keeps what is left and adds only the
    /// new plan's credits beyond the most granted, so that switching back and forth (between
    /// monthly and yearly, say) never farms a fresh balance. A plan change within the period adds the new plan's
    /// credits beyond the most granted in it ([`UserRecord::period_credits`]), so that switching
    /// back and forth never grants more than the highest plan held, and a downgrade grants
    /// nothing (the credits stand until the period ends).
    pub fn grant(&self, grant: &CreditGrant) -> Result<Posting, GrantRefusal> {
        if let Some(refusal) = self.had_period(grant) {
            return Err(refusal);
        }
        let upgrade = self.upgrade_of(grant);
        if !grant.starts_period && upgrade.is_none() {
            return Err(GrantRefusal::NoUpgrade);
        }
        if !self.subscription_status.is_entitled() {
            return Err(GrantRefusal::NotEntitled);
        }
        let seen = self.seen(Balance::Credits);
        let (kind, amount) = match upgrade {
            Some(more) if !grant.starts_period => (EntryKind::PlanUpgrade, more),
            // A switch that starts a period keeps the credits left, adding only beyond the most
            // granted in the period it cuts short (nothing for one granted before that was kept).
            _ if grant.switches_period => (EntryKind::PeriodGrant, upgrade.unwrap_or(0)),
            _ => (EntryKind::PeriodGrant, grant.credits - seen.before),
        };
        let mut recorded = grant.clone();
        if grant.switches_period {
            recorded.credits = grant.credits.max(self.period_credits.unwrap_or(0));
        }
        let mut entry = Entry::new(
            kind,
            Balance::Credits,
            amount,
            seen.before + amount,
            grant.invoice_created,
            &grant.invoice_id,
        );
        entry.granted = Some(grant.credits);
        if grant.starts_period && !grant.switches_period {
            entry.expired = Some(seen.before);
        }
        entry.plan = Some(grant.plan.as_str().to_owned());
        entry.period_end = self.current_period_end;
        Ok(Posting {
            entry,
            seen,
            grant: Some(recorded),
            once: None,
            settles: None,
        })
    }

    /// The end of the paid credits (`kind`: [`EntryKind::SubscriptionEnded`] or
    /// [`EntryKind::CustomerDeleted`], caused by the subscription or customer `cause`), if any
    /// are left: they all expire.
    pub fn paid_credits_end(&self, kind: EntryKind, cause: &str, at: i64) -> Option<Posting> {
        let seen = self.seen(Balance::Credits);
        if seen.before == 0 {
            return None;
        }
        let mut entry = Entry::new(kind, Balance::Credits, -seen.before, 0, at, cause);
        entry.expired = Some(seen.before);
        Some(Posting {
            entry,
            seen,
            grant: None,
            once: None,
            settles: None,
        })
    }

    /// An operator's adjustment: never below zero, at most once per id.
    pub fn adjustment(&self, adjustment: &Adjustment<'_>) -> Result<Posting, AdjustmentRefusal> {
        let complete = [adjustment.reason, adjustment.operator]
            .iter()
            .all(|text| !text.trim().is_empty())
            && super::ledger::DebitId::parse(adjustment.id).is_ok();
        if adjustment.amount == 0 || !complete {
            return Err(AdjustmentRefusal::Incomplete);
        }
        let seen = self.seen(adjustment.balance);
        let after = seen
            .before
            .checked_add(adjustment.amount)
            .filter(|after| *after >= 0);
        let Some(after) = after else {
            return Err(AdjustmentRefusal::BelowZero {
                balance: seen.before,
                amount: adjustment.amount,
            });
        };
        let mut entry = Entry::new(
            EntryKind::Adjustment,
            adjustment.balance,
            adjustment.amount,
            after,
            adjustment.at,
            adjustment.id,
        );
        entry.reason = Some(adjustment.reason.to_owned());
        entry.operator = Some(adjustment.operator.to_owned());
        Ok(Posting {
            entry,
            seen,
            grant: None,
            once: Some(adjustment.id.to_owned()),
            settles: None,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::UserId;

    /// An active `pro` subscriber with `credits` left.
    pub(in crate::domain) fn subscriber(credits: i64) -> UserRecord {
        let user = UserId::parse("4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10").unwrap();
        let mut record = UserRecord::new_free(user, 10, 1_700_000_000);
        record.subscription_status = SubscriptionStatus::Active;
        record.plan = "pro".into();
        record.credits_remaining = credits;
        record
    }

    fn grant(invoice: &str, created: i64) -> CreditGrant {
        change(invoice, created, "pro", 1000, true)
    }

    fn change(invoice: &str, created: i64, plan: &str, credits: i64, starts: bool) -> CreditGrant {
        CreditGrant {
            invoice_id: invoice.into(),
            invoice_created: created,
            plan: crate::domain::PlanId::parse(plan).unwrap(),
            credits,
            starts_period: starts,
            period_start: None,
            period_end: None,
            switches_period: false,
        }
    }

    /// `grant` paying into the period from `start` (of a change: its time) to `end`.
    fn over(grant: CreditGrant, start: i64, end: i64) -> CreditGrant {
        CreditGrant {
            period_start: Some(start),
            period_end: Some(end),
            ..grant
        }
    }

    /// `record` with `posting` applied, as a store does.
    fn applied(mut record: UserRecord, posting: &Posting) -> UserRecord {
        record.credits_remaining = posting.entry.balance_after;
        let grant = posting.grant.as_ref().unwrap();
        record.granted_invoices.insert(grant.invoice_id.clone());
        record.period_credits = Some(grant.credits);
        if grant.starts_period {
            record.last_grant_created = grant.invoice_created;
            record.granted_period_start = grant.period_start;
            record.granted_period_end = grant.period_end;
        }
        record
    }

    #[test]
    fn a_plan_change_in_a_period_not_granted_yet_waits_for_that_period_s_own_invoice() {
        let plus = subscriber(0);
        let first = over(change("in_c", 100, "plus", 1000, true), 100, 1_000);
        let plus = applied(plus.clone(), &plus.grant(&first).unwrap());
        // The period ended at 1,000; its renewal, created then, is finalised an hour late, and
        // the plan changed (and was paid) within that hour.
        let renewal = over(change("in_r", 1_000, "plus", 1000, true), 1_000, 2_000);
        let upgrade = over(change("in_u", 1_600, "pro", 5000, false), 1_600, 2_000);
        assert_eq!(plus.grant(&upgrade), Err(GrantRefusal::PeriodNotGranted));
        assert!(!plus.lacks_grant(&upgrade));
        let renewed = applied(plus.clone(), &plus.grant(&renewal).unwrap());
        assert_eq!(renewed.credits_remaining, 1000);
        let up = renewed.grant(&upgrade).unwrap();
        assert_eq!(
            (up.entry.kind, up.entry.amount),
            (EntryKind::PlanUpgrade, 4000)
        );
        let pro = applied(renewed, &up);
        assert_eq!(pro.credits_remaining, 5000);
        assert_eq!(
            pro.grant(&renewal),
            Err(GrantRefusal::AlreadyGranted),
            "the renewal never resets the upgrade"
        );
        let old_change = over(change("in_old", 900, "team", 9000, false), 900, 1_000);
        assert_eq!(pro.grant(&old_change), Err(GrantRefusal::Superseded));
        let same_period = over(change("in_again", 1_000, "pro", 5000, true), 1_000, 2_000);
        assert_eq!(
            pro.grant(&same_period),
            Err(GrantRefusal::Superseded),
            "a second invoice starting the same period grants nothing"
        );
    }

    /// A period that starts later is newer even when it ends sooner (yearly to monthly, a long
    /// trial ended early); a switch that cuts a paid period short adds only beyond the most
    /// granted, so switching back and forth farms nothing.
    #[test]
    fn a_switch_that_resets_the_cycle_grants_only_beyond_the_most_granted() {
        let year = 365 * 86_400;
        let month = 30 * 86_400;
        let yearly = subscriber(0);
        let first = over(change("in_y", 0, "pro_y", 60_000, true), 0, year);
        let yearly = applied(yearly.clone(), &yearly.grant(&first).unwrap());
        let yearly = UserRecord {
            credits_remaining: 50_000,
            ..yearly
        };
        let switch = |id: &str, at: i64, plan: &str, credits: i64| CreditGrant {
            switches_period: true,
            ..over(change(id, at, plan, credits, true), at, at + month)
        };
        let monthly = switch("in_m", 86_400, "pro", 5000);
        let posting = yearly.grant(&monthly).unwrap();
        assert_eq!(
            (
                posting.entry.amount,
                posting.entry.balance_after,
                posting.entry.expired
            ),
            (0, 50_000, None),
            "a cheaper cycle adds nothing and expires nothing"
        );
        let monthly_record = applied(yearly, &posting);
        assert_eq!(monthly_record.granted_period_end, Some(86_400 + month));
        let back = switch("in_y2", 2 * 86_400, "pro_y", 60_000);
        let again = monthly_record.grant(&back).unwrap();
        assert_eq!(
            again.entry.amount, 0,
            "back to yearly: the most was granted already"
        );
        let renewal = over(
            change("in_m2", 86_400 + month, "pro", 5000, true),
            86_400 + month,
            86_400 + 2 * month,
        );
        let renewed = monthly_record.grant(&renewal).unwrap();
        assert_eq!(
            renewed.entry.balance_after, 5000,
            "the next renewal grants in full"
        );

        // A trial ended early credits no unused time: its first paid period, in full.
        let trial = subscriber(0);
        let trial_grant = over(change("in_t", 0, "pro", 5000, true), 0, 60 * 86_400);
        let trial = applied(trial.clone(), &trial.grant(&trial_grant).unwrap());
        let paid = over(
            change("in_p", 5 * 86_400, "pro", 5000, true),
            5 * 86_400,
            35 * 86_400,
        );
        let posting = UserRecord {
            credits_remaining: 100,
            ..trial
        }
        .grant(&paid)
        .unwrap();
        assert_eq!(
            (posting.entry.amount, posting.entry.balance_after),
            (4900, 5000)
        );
    }

    #[test]
    fn an_upgrade_grants_the_difference_once_and_switching_back_and_forth_grants_no_more() {
        let plus = subscriber(0);
        let first = plus
            .grant(&change("in_c", 100, "plus", 1000, true))
            .unwrap();
        let spent = UserRecord {
            credits_remaining: 400,
            ..applied(plus, &first)
        };
        let up = spent
            .grant(&change("in_u1", 200, "pro", 5000, false))
            .unwrap();
        assert_eq!(up.entry.kind, EntryKind::PlanUpgrade);
        assert_eq!((up.entry.amount, up.entry.balance_after), (4000, 4400));
        assert_eq!(up.entry.description().unwrap(), "upgrade to the pro plan");
        let pro = applied(spent, &up);
        assert_eq!(pro.last_grant_created, 100, "an upgrade keeps the period");
        assert_eq!(
            pro.grant(&change("in_u1", 200, "pro", 5000, false)),
            Err(GrantRefusal::AlreadyGranted)
        );
        for (invoice, plan, credits) in [("in_d", "plus", 1000), ("in_u2", "pro", 5000)] {
            assert_eq!(
                pro.grant(&change(invoice, 300, plan, credits, false)),
                Err(GrantRefusal::NoUpgrade),
                "{invoice}"
            );
        }
        let renewed = pro.grant(&change("in_r", 400, "plus", 1000, true)).unwrap();
        assert_eq!(renewed.entry.kind, EntryKind::PeriodGrant);
        assert_eq!(renewed.entry.balance_after, 1000);
        assert_eq!(renewed.entry.expired, Some(4400));
        let next = applied(pro, &renewed);
        assert_eq!(next.period_credits, Some(1000));
        assert_eq!(
            next.grant(&change("in_old", 300, "team", 9000, false)),
            Err(GrantRefusal::Superseded),
            "a change of the period before grants nothing in this one"
        );
    }

    #[test]
    fn a_period_granted_before_plans_were_recorded_gets_no_upgrade_in_it() {
        let legacy = subscriber(10);
        assert_eq!(legacy.period_credits, None);
        let upgrade = change("in_u", 200, "pro", 5000, false);
        assert_eq!(legacy.grant(&upgrade), Err(GrantRefusal::NoUpgrade));
        assert!(!legacy.lacks_grant(&upgrade));
    }

    #[test]
    fn a_period_grant_says_what_expired_and_sums_to_the_new_balance() {
        let posting = subscriber(37).grant(&grant("in_1", 1_764_580_320)).unwrap();
        let entry = &posting.entry;
        assert_eq!((entry.amount, entry.balance_after), (963, 1000));
        assert_eq!((entry.granted, entry.expired), (Some(1000), Some(37)));
        assert_eq!(posting.seen.before + entry.amount, entry.balance_after);
        assert_eq!(entry.key.as_str(), "2025-12-01T09:12:00Z#period_grant#in_1");
        assert_eq!(entry.description().unwrap(), "pro plan, new period");
    }

    #[test]
    fn a_grant_is_refused_when_granted_superseded_or_not_entitled() {
        let mut record = subscriber(5);
        record.granted_invoices.insert("in_1".into());
        record.last_grant_created = 2_000;
        assert_eq!(
            record.grant(&grant("in_1", 2_000)),
            Err(GrantRefusal::AlreadyGranted)
        );
        assert_eq!(
            record.grant(&grant("in_0", 1_000)),
            Err(GrantRefusal::Superseded)
        );
        record.subscription_status = SubscriptionStatus::PastDue;
        assert_eq!(
            record.grant(&grant("in_2", 3_000)),
            Err(GrantRefusal::NotEntitled)
        );
    }

    #[test]
    fn adjustments_never_go_below_zero_and_need_a_reason() {
        let record = subscriber(3);
        let adjustment = |amount, reason| Adjustment {
            id: "adj_1",
            balance: Balance::Credits,
            amount,
            reason,
            operator: "ops:alice",
            at: 1_800_000_000,
        };
        let taken = record
            .adjustment(&adjustment(-3, "duplicate grant"))
            .unwrap();
        assert_eq!(taken.entry.balance_after, 0);
        assert_eq!(taken.once.as_deref(), Some("adj_1"));
        assert_eq!(
            record.adjustment(&adjustment(-4, "too much")),
            Err(AdjustmentRefusal::BelowZero {
                balance: 3,
                amount: -4
            })
        );
        assert_eq!(
            record.adjustment(&adjustment(0, "none")),
            Err(AdjustmentRefusal::Incomplete)
        );
        assert_eq!(
            record.adjustment(&adjustment(5, " ")),
            Err(AdjustmentRefusal::Incomplete)
        );
    }
}
