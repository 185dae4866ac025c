//! Money that goes back: a refund or a dispute takes back the credits of the one purchase its
//! charge paid for ([`Purchase`]: a pack, or a paid invoice of the current period), never more
//! than is left of that purchase, never below zero, once per cumulative refunded amount and
//! once per dispute. A won dispute gives back exactly what its hold took.
//!
//! What is left of a purchase: a balance is spent oldest purchase first, so what a balance
//! holds belongs to its newest purchases ([`UserRecord::left_of`]); a refund of a pack already
//! spent takes nothing, even while a newer pack's credits are there.

use super::entries::{Entry, EntryKey, EntryKind};
use super::ledger::{Balance, Period};
use super::postings::Posting;
use super::user::UserRecord;

/// How long a purchase is kept to be taken back, in seconds: 180 days, beyond the 120 days in
/// which card networks accept most disputes. A refund or dispute after it takes nothing.
pub const KEPT_SECS: i64 = 180 * 86_400;

/// How often, at most, a sync lists a customer's charges for money that went back (while a
/// purchase may still be taken back): weekly. The charge's own events (`charge.refunded`,
/// `charge.dispute.*`, which Stripe retries for three days) settle it at once; the listing only
/// heals an event lost for good, so a weekly one keeps a sync of a paying subscriber to one call.
pub const CHARGES_LISTED_EVERY_SECS: i64 = 7 * 86_400;

/// How long before the last purchase stops being taken back (`refundable_until`) the charges
/// are listed a last time, so that the window's last week is looked at too.
pub const LAST_LOOK_SECS: i64 = 3600;

/// When the charges of a record refundable until `until` are listed a last time.
pub fn last_look(until: i64) -> i64 {
    until - LAST_LOOK_SECS
}

/// Whether a sync at `now` lists the customer's charges: a purchase may still be taken back
/// (`refundable_until` is ahead), and the last listing (`listed_at`) is
/// [`CHARGES_LISTED_EVERY_SECS`] old, or there was none, or it came before the [`last_look`]
/// that `now` has reached.
pub fn charges_to_list(refundable_until: Option<i64>, listed_at: Option<i64>, now: i64) -> bool {
    let Some(until) = refundable_until.filter(|until| *until > now) else {
        return false;
    };
    let last = last_look(until);
    listed_at.is_none_or(|at| now - at >= CHARGES_LISTED_EVERY_SECS || (now >= last && at < last))
}

/// What one payment bought, kept so that its money going back can take it back: the credits a
/// pack granted (found by its PaymentIntent), or those a paid invoice granted in its period
/// (found by the invoice, through Stripe's invoice payments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    /// The PaymentIntent (`pi_...`) of a pack, or the invoice (`in_...`).
    pub key: String,
    /// The balance it funded: [`Balance::Purchased`] (a pack) or [`Balance::Credits`].
    pub balance: Balance,
    /// The credits it granted.
    pub credits: i64,
    /// When it was granted, Unix seconds: older purchases are spent first.
    pub at: i64,
    /// Of an invoice, the paid period its credits belong to (they expire with it; 0 for a pack).
    pub period: Period,
    /// The credits its refunds have accounted for so far (taken back, or already spent).
    pub refunded: i64,
    /// The hold of its charge's dispute, if one was opened (a charge has at most one).
    pub dispute: Option<DisputeHold>,
    /// How many times it changed: a change is applied only on the revision it was decided on.
    pub revision: i64,
}

/// What a dispute took back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeHold {
    /// The dispute (`du_...`).
    pub id: String,
    /// The credits its hold took.
    pub taken: i64,
    /// The purchase's `refunded` when the hold was taken: a refund made while the dispute
    /// stood is not given back again when it is won.
    pub refunded_before: i64,
    /// Whether they were given back (the dispute was won).
    pub released: bool,
}

impl DisputeHold {
    /// What winning the dispute gives back of `purchase`: what the hold took, less what refunds
    /// made while it stood accounted for (those credits went back with the money).
    fn given_back(&self, purchase: &Purchase) -> i64 {
        let refunded_meanwhile = (purchase.refunded - self.refunded_before).max(0);
        (self.taken - refunded_meanwhile).max(0)
    }
}

impl Purchase {
    /// A purchase of `credits` onto `balance`, granted at `at` (of `period`), nothing taken.
    pub fn new(key: &str, balance: Balance, credits: i64, at: i64, period: Period) -> Purchase {
        Purchase {
            key: key.to_owned(),
            balance,
            credits,
            at,
            period,
            refunded: 0,
            dispute: None,
            revision: 0,
        }
    }

    /// Its credits not accounted for by a refund or a standing hold.
    fn live(&self) -> i64 {
        let held = self
            .dispute
            .as_ref()
            .filter(|hold| !hold.released)
            .map_or(0, |hold| hold.taken);
        (self.credits - self.refunded - held).max(0)
    }

    /// When it is no longer taken back: [`KEPT_SECS`] after it was granted, or, once its charge
    /// was disputed, [`KEPT_SECS`] more, so that a dispute decided months later still finds its
    /// hold to give back.
    pub fn expires_at(&self) -> i64 {
        let disputed = i64::from(self.dispute.is_some());
        self.at + KEPT_SECS * (1 + disputed)
    }
}

/// A charge as Stripe answers it, as far as its money going back is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyBack {
    /// The charge (`ch_...`): the cause of every entry it leads to.
    pub charge: String,
    /// What it charged, in the currency's smallest unit.
    pub amount: i64,
    /// What was refunded of it so far (cumulative, as Stripe keeps it).
    pub amount_refunded: i64,
}

/// Where a charge's dispute stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeStatus {
    /// The funds were withdrawn and the dispute is open (`needs_response`, `under_review`).
    Open,
    /// Closed for the seller: the funds came back.
    Won,
    /// Closed for the cardholder: the funds are gone.
    Lost,
    /// An inquiry or a prevented dispute (`warning_*`, `prevented`): no funds moved.
    NoFundsMoved,
}

/// Why money going back takes nothing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClawbackRefusal {
    /// No purchase of this key is kept: not sold here, past [`KEPT_SECS`], or an invoice of a
    /// period that has ended (those credits expired with it).
    #[error("no purchase kept for this payment")]
    NoPurchase,
    /// What is owed was taken before (a redelivery, a dispute held or released before, a
    /// won dispute without a hold, an inquiry).
    #[error("nothing more is owed")]
    NothingMore,
}

impl UserRecord {
    /// Whether `purchase` still counts: kept ([`KEPT_SECS`]), and, of an invoice, of the paid
    /// period that stands (the credits of an ended period or subscription are gone).
    fn counts(&self, purchase: &Purchase, now: i64) -> bool {
        let period_stands = match purchase.balance {
            Balance::Credits => {
                purchase.period == self.last_grant_created && self.subscription_status.is_entitled()
            }
            _ => true,
        };
        period_stands && now < purchase.expires_at()
    }

    /// What is left in its balance of the purchase `key` among `purchases` (the user's): the
    /// balance is spent oldest purchase first, so it holds the newest purchases' credits first.
    pub fn left_of(&self, purchases: &[Purchase], key: &str, now: i64) -> i64 {
        let Some(target) = purchases.iter().find(|p| p.key == key) else {
            return 0;
        };
        let mut newest_first: Vec<&Purchase> = purchases
            .iter()
            .filter(|p| p.balance == target.balance && self.counts(p, now))
            .collect();
        newest_first.sort_by(|a, b| (b.at, &b.key).cmp(&(a.at, &a.key)));
        let mut pool = self.balance(target.balance).max(0);
        for purchase in newest_first {
            let share = purchase.live().min(pool);
            if purchase.key == key {
                return share;
            }
            pool -= share;
        }
        0
    }

    /// The purchase `key` among `purchases`, if it still counts.
    fn kept<'p>(
        &self,
        purchases: &'p [Purchase],
        key: &str,
        now: i64,
    ) -> Result<&'p Purchase, ClawbackRefusal> {
        purchases
            .iter()
            .find(|p| p.key == key && self.counts(p, now))
            .ok_or(ClawbackRefusal::NoPurchase)
    }

    /// What the refunds of `money` owe, for the purchase `key` it paid: its credits ×
    /// `amount_refunded` ÷ `amount`, rounded down, beyond what earlier refunds accounted for;
    /// taken from what is left of the purchase (the rest was spent: the entry's `spent`), at
    /// `now`. Idempotent per cumulative amount: a redelivery owes nothing more.
    pub fn refund_clawback(
        &self,
        purchases: &[Purchase],
        key: &str,
        money: &MoneyBack,
        now: i64,
    ) -> Result<Posting, ClawbackRefusal> {
        let purchase = self.kept(purchases, key, now)?;
        let owed = proportion(purchase.credits, money.amount_refunded, money.amount);
        let more = owed - purchase.refunded;
        if more <= 0 {
            return Err(ClawbackRefusal::NothingMore);
        }
        let take = more.min(self.left_of(purchases, key, now));
        let cause = format!("{}#{}", money.charge, money.amount_refunded);
        let after = Purchase {
            refunded: owed,
            ..purchase.clone()
        };
        Ok(self.clawback(
            EntryKind::PaymentRefunded,
            -take,
            more,
            &cause,
            money,
            after,
            now,
        ))
    }

    /// The hold of dispute `dispute` (of `status`) on the purchase `key` its charge paid, or
    /// its release: an open or lost dispute takes back what is left of the purchase beyond its
    /// refunds, like a full refund (once per dispute); a won one gives back exactly what its hold
    /// took (once). A lost dispute after its hold, and an inquiry, change nothing.
    pub fn dispute_clawback(
        &self,
        purchases: &[Purchase],
        key: &str,
        dispute: &str,
        status: DisputeStatus,
        money: &MoneyBack,
        now: i64,
    ) -> Result<Posting, ClawbackRefusal> {
        let purchase = self.kept(purchases, key, now)?;
        match (status, &purchase.dispute) {
            (DisputeStatus::Open | DisputeStatus::Lost, None) => {
                let owed = purchase.live();
                let take = owed.min(self.left_of(purchases, key, now));
                let after = Purchase {
                    dispute: Some(DisputeHold {
                        id: dispute.to_owned(),
                        taken: take,
                        refunded_before: purchase.refunded,
                        released: false,
                    }),
                    ..purchase.clone()
                };
                let kind = EntryKind::DisputeHold;
                Ok(self.clawback(kind, -take, owed, dispute, money, after, now))
            }
            (DisputeStatus::Won, Some(hold))
                if hold.id == dispute && !hold.released && hold.given_back(purchase) > 0 =>
            {
                let after = Purchase {
                    dispute: Some(DisputeHold {
                        released: true,
                        ..hold.clone()
                    }),
                    ..purchase.clone()
                };
                let (kind, given) = (EntryKind::DisputeReleased, hold.given_back(purchase));
                Ok(self.clawback(kind, given, given, dispute, money, after, now))
            }
            _ => Err(ClawbackRefusal::NothingMore),
        }
    }

    /// The posting of `amount` (signed) onto the balance of `after`, where `owed` was owed
    /// (the difference was spent before), caused by `money`'s charge and keyed by `cause`.
    #[allow(clippy::too_many_arguments)]
    fn clawback(
        &self,
        kind: EntryKind,
        amount: i64,
        owed: i64,
        cause: &str,
        money: &MoneyBack,
        after: Purchase,
        now: i64,
    ) -> Posting {
        let seen = self.seen(after.balance);
        let mut entry = Entry::new(
            kind,
            after.balance,
            amount,
            seen.before + amount,
            now,
            &money.charge,
        );
        entry.key = EntryKey::new(now, kind, cause);
        entry.spent = Some(owed - amount.abs()).filter(|spent| *spent > 0);
        let once = Some(format!("{kind}#{cause}"));
        let purchase = Purchase {
            revision: after.revision + 1,
            ..after
        };
        // A dispute keeps the purchase, and the sync's look at the charges, for longer.
        let refundable_until = match kind {
            EntryKind::DisputeHold => self.refundable_with(&purchase),
            _ => None,
        };
        Posting {
            entry,
            seen,
            grant: None,
            once,
            settles: None,
            purchase: Some(purchase),
            refundable_until,
        }
    }

    /// When the purchases of this record, with `purchase` new among them, stop being taken
    /// back: the sync looks for refunds and disputes of the user's charges until then.
    pub(super) fn refundable_with(&self, purchase: &Purchase) -> Option<i64> {
        Some(
            purchase
                .expires_at()
                .max(self.refundable_until.unwrap_or(0)),
        )
    }
}

/// `credits × part ÷ whole`, rounded down, within 0 and `credits` (a whole of 0 is all).
fn proportion(credits: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return credits;
    }
    let share = i128::from(credits) * i128::from(part.clamp(0, whole)) / i128::from(whole);
    i64::try_from(share).unwrap_or(credits).clamp(0, credits)
}

#[cfg(test)]
mod tests;
