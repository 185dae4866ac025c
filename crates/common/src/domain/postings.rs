//! The rules that decide each change of a balance: each reads a [`UserRecord`] and answers the
//! [`Posting`] a store applies only if what it read still stands ([`Seen`]), or why nothing is
//! owed. Each rule is stated here once; the stores only apply what it decided.

use super::clawbacks::Purchase;
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
    /// The purchase the change makes or changes ([`crate::domain::clawbacks::Purchase`]), as it
    /// stands after it: written in the same transaction, only if it is still at the revision
    /// before (revision 1: it must not exist yet).
    pub purchase: Option<super::clawbacks::Purchase>,
    /// When the record's purchases stop being taken back, if a new one moves it
    /// ([`UserRecord::refundable_until`]).
    pub refundable_until: Option<i64>,
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
        let lines = grant.period();
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
        let reset = grant.credits - seen.before;
        let cut = (-reset).max(0);
        // A switch that starts a period keeps the credits left up to the new plan's: it adds the
        // new plan's beyond the most granted in the period it cuts short (Stripe credited that
        // period's unused time), and a switch to fewer credits cuts the balance to the new
        // plan's, the rest expiring (the unused time went back to the customer). A record from
        // before the most was kept is reset as by a renewal.
        let (kind, amount, expired) = match (upgrade, self.period_credits) {
            (Some(more), _) if !grant.starts_period => (EntryKind::PlanUpgrade, more, None),
            (upgrade, Some(most)) if grant.switches_period && grant.credits >= most => {
                (EntryKind::PeriodGrant, upgrade.unwrap_or(0), None)
            }
            (_, Some(_)) if grant.switches_period => (
                EntryKind::PeriodGrant,
                -cut,
                Some(cut).filter(|cut| *cut > 0),
            ),
            _ => (EntryKind::PeriodGrant, reset, Some(seen.before)),
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
        entry.expired = expired;
        entry.plan = Some(grant.plan.as_str().to_owned());
        entry.period_end = self.current_period_end;
        // What the invoice's money bought, for a refund or a dispute of it: a period's plan
        // credits, or an upgrade's difference, in the period they belong to.
        let (funded, period) = match grant.starts_period {
            true => (grant.credits, grant.invoice_created),
            false => (amount, seen.period),
        };
        let purchase = Purchase::new(
            &grant.invoice_id,
            Balance::Credits,
            funded,
            grant.invoice_created,
            period,
        );
        Ok(Posting {
            entry,
            seen,
            grant: Some(recorded),
            once: None,
            settles: None,
            refundable_until: self.refundable_with(&purchase),
            purchase: Some(Purchase {
                revision: 1,
                ..purchase
            }),
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
            purchase: None,
            refundable_until: None,
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
            purchase: None,
            refundable_until: None,
        })
    }
}

#[cfg(test)]
pub(super) mod tests;
