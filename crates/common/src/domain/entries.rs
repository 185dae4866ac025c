//! The credit ledger: every change of a balance is one [`Entry`], written in the same
//! transaction as the change (see `docs/data-model.md`, "The credit ledger"); the rules that
//! decide each change are in [`super::postings`].
//!
//! For each balance, its value at the record's creation plus the sum of its entries' amounts is
//! the stored value: the invariant the conformance suite's property test checks on both stores.

use std::fmt;

use super::ledger::{Balance, Take};

/// What an entry records. Clients must accept kinds they do not know (more come with plans and
/// credit packs); each is documented in `docs/api.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A paid period began: the plan's credits, the previous period's rest expired.
    PeriodGrant,
    /// A plan change within a period was paid: the new plan's credits beyond the most granted
    /// in the period.
    PlanUpgrade,
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
    /// A credit pack was paid: its credits onto the purchased balance.
    PackPurchase,
    /// A payment was refunded (in part or in full): its purchase's credits taken back in
    /// proportion, as far as they are left.
    PaymentRefunded,
    /// A payment was disputed: what is left of its purchase's credits held back.
    DisputeHold,
    /// A dispute was won: what its hold took given back.
    DisputeReleased,
}

impl EntryKind {
    /// Every kind, for parsing and tests.
    pub const ALL: [EntryKind; 11] = [
        EntryKind::PeriodGrant,
        EntryKind::PlanUpgrade,
        EntryKind::Usage,
        EntryKind::MessageRefund,
        EntryKind::SubscriptionEnded,
        EntryKind::CustomerDeleted,
        EntryKind::Adjustment,
        EntryKind::PackPurchase,
        EntryKind::PaymentRefunded,
        EntryKind::DisputeHold,
        EntryKind::DisputeReleased,
    ];

    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::PeriodGrant => "period_grant",
            EntryKind::PlanUpgrade => "plan_upgrade",
            EntryKind::Usage => "usage",
            EntryKind::MessageRefund => "message_refund",
            EntryKind::SubscriptionEnded => "subscription_ended",
            EntryKind::CustomerDeleted => "customer_deleted",
            EntryKind::Adjustment => "adjustment",
            EntryKind::PackPurchase => "pack_purchase",
            EntryKind::PaymentRefunded => "payment_refunded",
            EntryKind::DisputeHold => "dispute_hold",
            EntryKind::DisputeReleased => "dispute_released",
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
    pub const ALL: [Balance; 3] = [Balance::Credits, Balance::FreeMessages, Balance::Purchased];

    /// Its name, as entries store and show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::Credits => "credits",
            Balance::FreeMessages => "free_messages",
            Balance::Purchased => "purchased",
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
    pub(super) fn new(at: i64, kind: EntryKind, cause: &str) -> Self {
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
    /// What caused it, the key of its idempotency: the invoice, subscription, customer,
    /// session, charge or adjustment id, or the day.
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
    /// The pack a `pack_purchase` granted.
    pub pack: Option<String>,
    /// The Stripe PaymentIntent that paid a pack (how a refund of it is found; not shown).
    pub payment_intent: Option<String>,
    /// Of a refund or a dispute hold: the credits it owed that were spent before and so were
    /// not taken back.
    pub spent: Option<i64>,
}

impl Entry {
    /// An entry of `kind` moving `balance` by `amount` to `balance_after`, nothing else noted.
    pub(super) fn new(
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
            pack: None,
            payment_intent: None,
            spent: None,
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
            EntryKind::PlanUpgrade => {
                let plan = self.plan.as_deref().unwrap_or("paid");
                Some(format!("upgrade to the {plan} plan"))
            }
            EntryKind::Adjustment => self.reason.clone(),
            EntryKind::PackPurchase => {
                let pack = self.pack.as_deref().unwrap_or("credit");
                Some(format!("{pack} pack"))
            }
            EntryKind::PaymentRefunded | EntryKind::DisputeHold => {
                let what = match self.kind {
                    EntryKind::PaymentRefunded => "payment refunded",
                    _ => "payment disputed",
                };
                Some(match self.spent {
                    Some(spent) => format!("{what}; {spent} of its credits were spent before"),
                    None => what.to_owned(),
                })
            }
            EntryKind::DisputeReleased => Some("dispute won; held credits given back".into()),
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
    /// The message's price: negative for a debit, positive for a refund.
    pub amount: i64,
    /// The balance after this step.
    pub balance_after: i64,
    /// The last second of its UTC day, Unix seconds.
    pub at: i64,
    /// The UTC day.
    pub day: String,
    /// The messages it counts: 1, or 0 for the second balance of a message paid from two.
    pub messages: i64,
}

impl DailyStep {
    /// The step of one message costing `price` from `balance`, which stood at `before`:
    /// debited (`kind` [`EntryKind::Usage`]) or refunded ([`EntryKind::MessageRefund`]) at `at`.
    pub fn new(kind: EntryKind, balance: Balance, price: i64, before: i64, at: i64) -> DailyStep {
        let amount = if kind == EntryKind::Usage {
            -price
        } else {
            price
        };
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
            messages: 1,
        }
    }

    /// The steps of one message that took `takes` (debited, or refunded: `kind`) at `at`, one
    /// per balance; the message is counted once, on the first.
    pub fn of_message(kind: EntryKind, takes: &[Take], at: i64) -> Vec<DailyStep> {
        let steps = takes.iter().enumerate().map(|(index, take)| DailyStep {
            messages: i64::from(index == 0),
            ..DailyStep::new(kind, take.balance, take.amount, take.before, at)
        });
        steps.collect()
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
        entry.messages = Some(messages + self.messages);
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::postings::tests::subscriber;

    #[test]
    fn a_day_adds_up_its_messages_under_one_key_at_the_day_s_end() {
        let first = DailyStep::new(EntryKind::Usage, Balance::Credits, 1, 10, 1_764_583_920);
        let second = DailyStep::new(EntryKind::Usage, Balance::Credits, 3, 9, 1_764_590_000);
        assert_eq!(first.key, second.key);
        assert_eq!(
            first.key.as_str(),
            "2025-12-01T23:59:59Z#usage#2025-12-01#credits"
        );
        let day = second.applied_to(Some(&first.applied_to(None)));
        assert_eq!(
            (day.messages, day.amount, day.balance_after),
            (Some(2), -4, 6)
        );
        assert_eq!(day.day(), Some("2025-12-01"));
        let refund = DailyStep::new(
            EntryKind::MessageRefund,
            Balance::FreeMessages,
            1,
            0,
            1_764_590_000,
        );
        assert_eq!((refund.amount, refund.balance_after), (1, 1));
        assert_ne!(refund.key, first.key);
    }

    #[test]
    fn a_message_paid_from_two_balances_is_counted_once() {
        let takes = [
            Take {
                balance: Balance::Credits,
                amount: 2,
                before: 2,
            },
            Take {
                balance: Balance::Purchased,
                amount: 3,
                before: 10,
            },
        ];
        let steps = DailyStep::of_message(EntryKind::Usage, &takes, 1_764_590_000);
        let days: Vec<Entry> = steps.iter().map(|step| step.applied_to(None)).collect();
        let shown: Vec<_> = days
            .iter()
            .map(|day| (day.balance, day.amount, day.balance_after, day.messages))
            .collect();
        assert_eq!(
            shown,
            [
                (Balance::Credits, -2, 0, Some(1)),
                (Balance::Purchased, -3, 7, Some(0))
            ]
        );
        assert!(
            days[1]
                .key
                .as_str()
                .ends_with("#usage#2025-12-01#purchased")
        );
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
