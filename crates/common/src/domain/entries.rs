//! The credit ledger: every change of a balance is one [`Entry`], written in the same
//! transaction as the change (see `docs/data-model.md`, "The credit ledger"). The rules that
//! decide a change live here, once: each reads a [`UserRecord`] and answers the [`Posting`] a
//! store applies only if what it read still stands ([`Seen`]), or why nothing is owed.
//!
//! For each balance, its value at the record's creation plus the sum of its entries' amounts is
//! the stored value: the invariant the conformance suite's property test checks on both stores.

use std::fmt;

use super::ledger::{Balance, CreditGrant, PaidInvoice, Period};
use super::subscription::SubscriptionStatus;
use super::user::UserRecord;

/// What an entry records. Clients must accept kinds they do not know (more come with plans and
/// credit packs); each is documented in `docs/api.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A paid period began: the plan's credits, the previous period's rest expired.
    PeriodGrant,
    /// One day's debits of one balance (count and total), never one entry per message.
    Usage,
    /// One day's refunds of failed messages to one balance.
    MessageRefund,
    /// The subscription ended: its period's credits are gone.
    SubscriptionEnded,
    /// The customer was deleted at Stripe: the subscription's credits are gone.
    CustomerDeleted,
    /// An operator granted or removed credits, with a reason.
    Adjustment,
}

impl EntryKind {
    /// Every kind, for parsing and tests.
    pub const ALL: [EntryKind; 6] = [
        EntryKind::PeriodGrant,
        EntryKind::Usage,
        EntryKind::MessageRefund,
        EntryKind::SubscriptionEnded,
        EntryKind::CustomerDeleted,
        EntryKind::Adjustment,
    ];

    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::PeriodGrant => "period_grant",
            EntryKind::Usage => "usage",
            EntryKind::MessageRefund => "message_refund",
            EntryKind::SubscriptionEnded => "subscription_ended",
            EntryKind::CustomerDeleted => "customer_deleted",
            EntryKind::Adjustment => "adjustment",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<EntryKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Balance {
    /// Every balance.
    pub const ALL: [Balance; 2] = [Balance::Credits, Balance::FreeMessages];

    /// Its name, as entries store and show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::Credits => "credits",
            Balance::FreeMessages => "free_messages",
        }
    }

    /// The balance named `name`, if any.
    pub fn parse(name: &str) -> Option<Balance> {
        Self::ALL
            .into_iter()
            .find(|balance| balance.as_str() == name)
    }
}

/// A point in time as entries show it: RFC 3339, UTC, to the second.
pub fn rfc3339(at: i64) -> String {
    let at =
        time::OffsetDateTime::from_unix_timestamp(at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The UTC day of `at` (Unix seconds), `YYYY-MM-DD`: what a day's usage entry is kept by.
pub fn day_of(at: i64) -> String {
    rfc3339(at)[..10].to_owned()
}

/// The last second of the UTC day of `at`: where a day's usage and refunds sort in the history.
fn end_of_day(at: i64) -> i64 {
    at.div_euclid(86_400) * 86_400 + 86_399
}

/// An entry's key within the user's history: `<time>#<kind>#<cause>`, unique per cause and in
/// time order, so that a retried or redelivered write meets the first one. Stable: it is also
/// the entry's id shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryKey(String);

impl EntryKey {
    /// The key of an entry of `kind` caused by `cause` at `at`.
    fn new(at: i64, kind: EntryKind, cause: &str) -> Self {
        EntryKey(format!("{}#{kind}#{cause}", rfc3339(at)))
    }

    /// A key as stored, if it has the shape of one (a cursor is checked with it).
    pub fn parse(raw: &str) -> Option<EntryKey> {
        let mut parts = raw.splitn(3, '#');
        let at = parts.next()?;
        parts.next().filter(|kind| !kind.is_empty())?;
        let cause = parts.next()?;
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let well_formed = time::OffsetDateTime::parse(at, rfc3339).is_ok();
        (well_formed && !cause.is_empty() && raw.len() <= 512).then(|| EntryKey(raw.to_owned()))
    }

    /// The key itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One change of one balance: what the history shows. It holds no message content, no model
/// output and no e-mail address; a day's debits are one entry with their count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its key (and id): see [`EntryKey`].
    pub key: EntryKey,
    /// What it records.
    pub kind: EntryKind,
    /// The balance it moved.
    pub balance: Balance,
    /// The signed change of that balance.
    pub amount: i64,
    /// That balance after the change (for a day's usage or refunds: after the day's last one).
    pub balance_after: i64,
    /// When it happened, Unix seconds (for a day's usage or refunds: the day's last second).
    pub at: i64,
    /// What caused it, the key of its idempotency: the invoice, subscription, customer or
    /// adjustment id, or the day.
    pub cause: String,
    /// How many messages (usage and refunds).
    pub messages: Option<i64>,
    /// The credits a period grant gave (its amount is this minus [`Entry::expired`]).
    pub granted: Option<i64>,
    /// What was left of the balance and expired with the change (period grants, endings).
    pub expired: Option<i64>,
    /// The plan of a period grant.
    pub plan: Option<String>,
    /// The end of a granted period, Unix seconds, if known.
    pub period_end: Option<i64>,
    /// Why an operator adjusted the balance.
    pub reason: Option<String>,
    /// Which operator did (shown to support, not to the user).
    pub operator: Option<String>,
}

impl Entry {
    /// An entry of `kind` moving `balance` by `amount` to `balance_after`, nothing else noted.
    fn new(
        kind: EntryKind,
        balance: Balance,
        amount: i64,
        balance_after: i64,
        at: i64,
        cause: &str,
    ) -> Entry {
        Entry {
            key: EntryKey::new(at, kind, cause),
            kind,
            balance,
            amount,
            balance_after,
            at,
            cause: cause.to_owned(),
            messages: None,
            granted: None,
            expired: None,
            plan: None,
            period_end: None,
            reason: None,
            operator: None,
        }
    }

    /// The UTC day of a day's entry (usage, refunds).
    pub fn day(&self) -> Option<&str> {
        matches!(self.kind, EntryKind::Usage | EntryKind::MessageRefund)
            .then_some(self.cause.as_str())
    }

    /// A line a person can read, where the kind alone does not say it all.
    pub fn description(&self) -> Option<String> {
        match self.kind {
            EntryKind::PeriodGrant => {
                let plan = self.plan.as_deref().unwrap_or("paid");
                Some(match self.period_end {
                    Some(end) => format!("{plan} plan, period to {}", day_of(end)),
                    None => format!("{plan} plan, new period"),
                })
            }
            EntryKind::Adjustment => self.reason.clone(),
            _ => None,
        }
    }
}

/// One message debited or refunded on one balance, as the day's entry adds it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyStep {
    /// The day's entry ([`EntryKind::Usage`] or [`EntryKind::MessageRefund`]), its key.
    pub key: EntryKey,
    /// Which kind.
    pub kind: EntryKind,
    /// The balance moved.
    pub balance: Balance,
    /// −1 for a debit, +1 for a refund.
    pub amount: i64,
    /// The balance after this step.
    pub balance_after: i64,
    /// The last second of its UTC day, Unix seconds.
    pub at: i64,
    /// The UTC day.
    pub day: String,
}

impl DailyStep {
    /// The step of one message of `balance`, which stood at `before`: debited (`kind`
    /// [`EntryKind::Usage`]) or refunded ([`EntryKind::MessageRefund`]) at `at`.
    pub fn new(kind: EntryKind, balance: Balance, before: i64, at: i64) -> DailyStep {
        let amount = if kind == EntryKind::Usage { -1 } else { 1 };
        let day = day_of(at);
        let cause = format!("{day}#{}", balance.as_str());
        // Shown at the day's end, never at a message's own time: the ledger keeps no trail of
        // when each message was sent.
        let at = end_of_day(at);
        DailyStep {
            key: EntryKey::new(at, kind, &cause),
            kind,
            balance,
            amount,
            balance_after: before + amount,
            at,
            day,
        }
    }

    /// The day's entry after this step, given the entry before it (`None`: the day's first).
    pub fn applied_to(&self, previous: Option<&Entry>) -> Entry {
        let (amount, messages) = previous
            .map(|entry| (entry.amount, entry.messages.unwrap_or(0)))
            .unwrap_or((0, 0));
        let mut entry = Entry::new(
            self.kind,
            self.balance,
            amount + self.amount,
            self.balance_after,
            self.at,
            &self.day,
        );
        entry.key = self.key.clone();
        entry.messages = Some(messages + 1);
        entry
    }
}

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
    /// A period grant's invoice, recorded as granted (and its period as the current one).
    pub grant: Option<CreditGrant>,
    /// An id the change is done at most once for, beyond its entry's key (adjustments, whose
    /// key holds the time of the first try).
    pub once: Option<String>,
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
    fn seen(&self, balance: Balance) -> Seen {
        Seen {
            status: self.subscription_status.clone(),
            period: self.last_grant_created,
            before: self.balance(balance),
        }
    }

    /// Whether a message taken from `balance` in `period` (`None`: a debit recorded before
    /// periods were) can no longer be given back: a credit of a paid period that has ended
    /// since, renewed or with its subscription.
    pub fn refund_lapses(&self, balance: Balance, period: Option<Period>) -> bool {
        let renewed = period.is_some_and(|period| period != self.last_grant_created);
        balance == Balance::Credits && (renewed || self.subscription_status.ends_paid_credits())
    }

    /// Why the period of invoice `id`, created at `created`, is not owed whatever the status:
    /// granted before, or behind a newer period.
    fn had_period(&self, id: &str, created: i64) -> Option<GrantRefusal> {
        if self.granted_invoices.contains(id) {
            return Some(GrantRefusal::AlreadyGranted);
        }
        (self.last_grant_created > created).then_some(GrantRefusal::Superseded)
    }

    /// Whether `invoice` pays a period this record has not had yet (granted once the status is
    /// entitled: [`UserRecord::period_grant`]).
    pub fn lacks_period(&self, invoice: &PaidInvoice) -> bool {
        invoice.starts_a_period() && self.had_period(&invoice.id, invoice.created).is_none()
    }

    /// The grant of the period `grant` pays for: credits set to `grant.credits` (what was left
    /// expires with it), once per invoice, only while entitled, never behind a newer period.
    pub fn period_grant(&self, grant: &CreditGrant) -> Result<Posting, GrantRefusal> {
        if let Some(refusal) = self.had_period(&grant.invoice_id, grant.invoice_created) {
            return Err(refusal);
        }
        if !self.subscription_status.is_entitled() {
            return Err(GrantRefusal::NotEntitled);
        }
        let seen = self.seen(Balance::Credits);
        let mut entry = Entry::new(
            EntryKind::PeriodGrant,
            Balance::Credits,
            grant.credits - seen.before,
            grant.credits,
            grant.invoice_created,
            &grant.invoice_id,
        );
        entry.granted = Some(grant.credits);
        entry.expired = Some(seen.before);
        entry.plan = Some(self.plan.clone());
        entry.period_end = self.current_period_end;
        Ok(Posting {
            entry,
            seen,
            grant: Some(grant.clone()),
            once: None,
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserId;

    fn subscriber(credits: i64) -> UserRecord {
        let user = UserId::parse("4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10").unwrap();
        let mut record = UserRecord::new_free(user, 10, 1_700_000_000);
        record.subscription_status = SubscriptionStatus::Active;
        record.plan = "pro".into();
        record.credits_remaining = credits;
        record
    }

    fn grant(invoice: &str, created: i64) -> CreditGrant {
        CreditGrant {
            invoice_id: invoice.into(),
            invoice_created: created,
            credits: 1000,
        }
    }

    #[test]
    fn a_period_grant_says_what_expired_and_sums_to_the_new_balance() {
        let posting = subscriber(37)
            .period_grant(&grant("in_1", 1_764_580_320))
            .unwrap();
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
            record.period_grant(&grant("in_1", 2_000)),
            Err(GrantRefusal::AlreadyGranted)
        );
        assert_eq!(
            record.period_grant(&grant("in_0", 1_000)),
            Err(GrantRefusal::Superseded)
        );
        record.subscription_status = SubscriptionStatus::PastDue;
        assert_eq!(
            record.period_grant(&grant("in_2", 3_000)),
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

    #[test]
    fn a_day_adds_up_its_messages_under_one_key_at_the_day_s_end() {
        let first = DailyStep::new(EntryKind::Usage, Balance::Credits, 10, 1_764_583_920);
        let second = DailyStep::new(EntryKind::Usage, Balance::Credits, 9, 1_764_590_000);
        assert_eq!(first.key, second.key);
        assert_eq!(
            first.key.as_str(),
            "2025-12-01T23:59:59Z#usage#2025-12-01#credits"
        );
        let day = second.applied_to(Some(&first.applied_to(None)));
        assert_eq!(
            (day.messages, day.amount, day.balance_after),
            (Some(2), -2, 8)
        );
        assert_eq!(day.day(), Some("2025-12-01"));
        let refund = DailyStep::new(
            EntryKind::MessageRefund,
            Balance::FreeMessages,
            0,
            1_764_590_000,
        );
        assert_eq!((refund.amount, refund.balance_after), (1, 1));
        assert_ne!(refund.key, first.key);
    }

    #[test]
    fn keys_parse_back_and_garbage_does_not() {
        let key = subscriber(0).paid_credits_end(EntryKind::SubscriptionEnded, "sub_1", 0);
        assert!(key.is_none(), "nothing left, nothing ends");
        let posting = subscriber(4)
            .paid_credits_end(EntryKind::CustomerDeleted, "cus_1", 1_800_000_000)
            .unwrap();
        let key = posting.entry.key.as_str();
        assert_eq!(EntryKey::parse(key).unwrap().as_str(), key);
        for bad in [
            "",
            "x#usage#d",
            "2026-12-01T00:00:00Z##x",
            "2026-12-01T00:00:00Z#usage#",
        ] {
            assert_eq!(EntryKey::parse(bad), None, "{bad}");
        }
    }
}
