//! Who a user is, and the record kept of them.

use std::collections::BTreeSet;
use std::fmt;

use sha2::{Digest, Sha256};

use super::ledger::{Balance, Payment, Period, Take};
use super::subscription::{FREE_PLAN, SubscriptionStatus, SubscriptionView};

/// A user id: the `sub` claim of a verified token, always a UUID.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// Accepts `sub` only if it is a UUID (the auth provider's user id format).
    pub fn parse(sub: &str) -> Option<UserId> {
        uuid::Uuid::parse_str(sub)
            .ok()
            .map(|uuid| UserId(uuid.hyphenated().to_string()))
    }

    /// The id itself, for storage keys. Never log it: log [`UserId::hash`].
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stable pseudonym of the id (16 hex chars of its SHA-256) for logs and audit lines.
    pub fn hash(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }

    /// The full SHA-256 of the id, hex: the key of the user's tombstone after erasure.
    pub fn full_hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// Debug shows the pseudonym only, so a stray `{:?}` cannot leak the id into logs.
impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId(#{})", self.hash())
    }
}

/// Who makes a request: the user of a verified token, and whether the token is an anonymous
/// sign-in's (Supabase's `is_anonymous` claim), which gets no free messages unless allowed
/// (`ALLOW_ANONYMOUS_FREE_MESSAGES`): throwaway accounts must not farm them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`.
    pub user: UserId,
    /// The token is an anonymous sign-in's.
    pub anonymous: bool,
}

impl Caller {
    /// `user` as a signed-in account (a token without `is_anonymous`). Only for a caller known
    /// not to be anonymous: one whose token was verified takes the authenticator's `Caller`.
    pub fn signed_in(user: &UserId) -> Caller {
        Caller {
            user: user.clone(),
            anonymous: false,
        }
    }
}

/// A Checkout session this service opened for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCheckout {
    /// `cs_...`.
    pub id: String,
    /// Where the client sends the user to pay.
    pub url: String,
    /// When Stripe stops taking payment for it, Unix seconds.
    pub expires_at: i64,
    /// The price it sells (empty for a session recorded before it was kept: never reused).
    pub price_id: String,
}

impl OpenCheckout {
    /// Whether it can still be paid at `now` (Unix seconds) with time to fill it in: ten
    /// minutes to spare.
    pub fn payable_at(&self, now: i64) -> bool {
        self.expires_at > now + 600
    }

    /// Whether a checkout of `price` at `now` may answer this session instead of opening one:
    /// it sells that price and is still payable ([`OpenCheckout::payable_at`]).
    pub fn sells_at(&self, price: &str, now: i64) -> bool {
        self.price_id == price && self.payable_at(now)
    }
}

/// A user's profile and billing record (`pk = USER#<id>`, `sk = PROFILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Whose record this is.
    pub user_id: UserId,
    /// `free` or the id of the subscription's plan.
    pub plan: String,
    /// The subscription's status ([`SubscriptionStatus::None`] without one).
    pub subscription_status: SubscriptionStatus,
    /// Remaining plan credits of the current period.
    pub credits_remaining: i64,
    /// Remaining credits bought in packs (never reset by a period, a plan change or an end).
    pub purchased_credits: i64,
    /// Lifetime free messages granted at creation.
    pub free_messages_total: i64,
    /// Lifetime free messages left.
    pub free_messages_remaining: i64,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// The user's Stripe customer, once created.
    pub stripe_customer_id: Option<String>,
    /// When that customer was linked to the user, Unix seconds (`None` on records linked before
    /// it was kept).
    pub customer_linked_at: Option<i64>,
    /// The subscription the status reflects.
    pub subscription_id: Option<String>,
    /// Its price.
    pub price_id: Option<String>,
    /// End of its current period, Unix seconds.
    pub current_period_end: Option<i64>,
    /// Whether it ends at the period end.
    pub cancel_at_period_end: bool,
    /// When the Stripe view last written was observed, Unix milliseconds (0: never synced).
    /// An older view never overwrites a newer one.
    pub synced_at_ms: i64,
    /// Invoices whose credits were granted (each at most once).
    pub granted_invoices: BTreeSet<String>,
    /// Creation time of the newest granted invoice that started a period, Unix seconds (0:
    /// none): the id of the current paid period (a debit records it; a refund after the period
    /// moved gives no plan credits back).
    pub last_grant_created: i64,
    /// The start of the period last granted, Unix seconds, from its invoice's line: a period
    /// starting later is newer. `None` for a period granted before it was recorded (then
    /// creation times decide).
    pub granted_period_start: Option<i64>,
    /// The end of that period: a plan change whose proration ends there is of this period.
    pub granted_period_end: Option<i64>,
    /// The most plan credits granted in the current period (its plan's, or the highest it was
    /// upgraded to): an upgrade adds only beyond it. `None` before any grant, and for a period
    /// granted before it was recorded (no upgrade grants anything in that period).
    pub period_credits: Option<i64>,
    /// When reconciliation should next re-sync the user, Unix seconds; `None` while the user has
    /// no Stripe customer (nothing to reconcile), or once nothing moved for long
    /// ([`crate::domain::reconcile::next_check`]).
    pub next_check: Option<i64>,
    /// Since when the subscription status is what it is, Unix seconds (`None` on records from
    /// before it was kept): how long a state that pays nothing has been quiet.
    pub status_since: Option<i64>,
    /// Whether a Stripe customer may exist for the user: set before one is first created, so an
    /// erasure asks Stripe only when there can be something to close. Records from before this
    /// flag read as `true`.
    pub stripe_customer_possible: bool,
    /// The user's Checkout session that may still be open: expired before another is opened,
    /// so that at most one is payable.
    pub open_checkout: Option<OpenCheckout>,
    /// The pack Checkout sessions opened for the user and not granted yet, oldest first: only
    /// these grant a pack.
    pub pending_packs: Vec<super::packs::PendingPack>,
    /// Until when a purchase of the user (a pack, a paid invoice) may still be refunded or
    /// disputed, Unix seconds: until then the sync looks at the customer's charges for money
    /// that went back ([`crate::domain::clawbacks`]).
    pub refundable_until: Option<i64>,
    /// When a sync last listed the customer's charges for money that went back, Unix seconds
    /// ([`crate::domain::clawbacks::charges_to_list`]).
    pub charges_listed_at: Option<i64>,
    /// When the user's erasure began, Unix seconds: from then on no endpoint but the erasure
    /// serves the user, and no customer can be linked.
    pub erasing_since: Option<i64>,
}

impl UserRecord {
    /// The record of a user seen for the first time: free plan, nothing used.
    pub fn new_free(user_id: UserId, free_messages: i64, now: i64) -> Self {
        UserRecord {
            user_id,
            plan: FREE_PLAN.to_owned(),
            subscription_status: SubscriptionStatus::None,
            credits_remaining: 0,
            purchased_credits: 0,
            free_messages_total: free_messages,
            free_messages_remaining: free_messages,
            created_at: now,
            stripe_customer_id: None,
            customer_linked_at: None,
            subscription_id: None,
            price_id: None,
            current_period_end: None,
            cancel_at_period_end: false,
            synced_at_ms: 0,
            granted_invoices: BTreeSet::new(),
            last_grant_created: 0,
            granted_period_start: None,
            granted_period_end: None,
            period_credits: None,
            next_check: None,
            status_since: None,
            stripe_customer_possible: false,
            open_checkout: None,
            pending_packs: Vec::new(),
            refundable_until: None,
            charges_listed_at: None,
            erasing_since: None,
        }
    }

    /// Whether Stripe may hold a customer of this user: one is linked, or one was (about to be)
    /// created. An erasure asks Stripe only then.
    pub fn may_have_stripe_customer(&self) -> bool {
        self.stripe_customer_id.is_some() || self.stripe_customer_possible
    }

    /// What is left of `balance`.
    pub fn balance(&self, balance: Balance) -> i64 {
        match balance {
            Balance::Credits => self.credits_remaining,
            Balance::FreeMessages => self.free_messages_remaining,
            Balance::Purchased => self.purchased_credits,
        }
    }

    /// The credits the user can spend, as the status shows them (`credits_remaining`): the
    /// plan's and the purchased.
    pub fn credits_shown(&self) -> i64 {
        self.credits_remaining + self.purchased_credits
    }

    /// How a message costing `price` is paid. A subscriber (active, trialing) pays from the
    /// plan's credits first (they expire with the period), the rest from purchased credits;
    /// anyone else pays a message of a model priced at 1 credit with a free message while any
    /// are left, else the price from purchased credits.
    pub fn payment_for(&self, price: i64) -> Payment {
        let take = |balance, amount| Take {
            balance,
            amount,
            before: self.balance(balance),
        };
        let (first, covered) = if self.subscription_status.is_entitled() {
            (Balance::Credits, self.credits_remaining.clamp(0, price))
        } else if price == 1 {
            (
                Balance::FreeMessages,
                self.free_messages_remaining.clamp(0, 1),
            )
        } else {
            (Balance::FreeMessages, 0)
        };
        let rest = price - covered;
        if rest > self.purchased_credits {
            return Payment {
                takes: vec![take(Balance::Purchased, price)],
                affordable: false,
            };
        }
        let takes = [(first, covered), (Balance::Purchased, rest)]
            .into_iter()
            .filter(|(_, amount)| *amount > 0)
            .map(|(balance, amount)| take(balance, amount))
            .collect();
        Payment {
            takes,
            affordable: true,
        }
    }

    /// What a refund gives back of a debit that took `taken` (balance, amount) in `period`
    /// (`None`: a debit recorded before periods were), each as it stands now: all of it, but the
    /// plan's credits of a paid period that has ended since (renewed, or with its
    /// subscription), which are gone. Empty: nothing to give back.
    pub fn refund_of(&self, taken: &[(Balance, i64)], period: Option<Period>) -> Vec<Take> {
        let renewed = period.is_some_and(|period| period != self.last_grant_created);
        let ended = renewed || self.subscription_status.ends_paid_credits();
        taken
            .iter()
            .filter(|(balance, _)| !(*balance == Balance::Credits && ended))
            .map(|(balance, amount)| Take {
                balance: *balance,
                amount: *amount,
                before: self.balance(*balance),
            })
            .collect()
    }

    /// This record with `view` applied (what a store's `apply_subscription` writes). A view
    /// whose subscription has ended also drops the paid credits to 0; free messages stay.
    pub fn with_subscription(mut self, view: &SubscriptionView) -> Self {
        if view.status.ends_paid_credits() {
            self.credits_remaining = 0;
        }
        self.plan = view.plan.clone();
        self.subscription_status = view.status.clone();
        self.subscription_id = view.subscription_id.clone();
        self.price_id = view.price_id.clone();
        self.current_period_end = view.current_period_end;
        self.cancel_at_period_end = view.cancel_at_period_end;
        self.synced_at_ms = view.observed_at_ms;
        self.next_check = view.next_check;
        self.status_since = Some(view.status_since);
        self.charges_listed_at = view.charges_listed_at;
        self
    }

    /// Whether the paid period on record reaches `current_period_end` (a subscription's current
    /// period): its invoice was granted. A record granted before periods were recorded counts
    /// as paid (it cannot tell); one never granted, as unpaid.
    pub fn period_paid(&self, current_period_end: Option<i64>) -> bool {
        match (self.granted_period_end, current_period_end) {
            (_, None) => true,
            (Some(paid_until), Some(current)) => current <= paid_until,
            (None, Some(_)) => self.last_grant_created > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `status` holding `plan`, `free` and `purchased`.
    fn holding(status: SubscriptionStatus, plan: i64, free: i64, purchased: i64) -> UserRecord {
        let user = UserId::parse("4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10").unwrap();
        UserRecord {
            subscription_status: status,
            credits_remaining: plan,
            free_messages_remaining: free,
            purchased_credits: purchased,
            ..UserRecord::new_free(user, 10, 0)
        }
    }

    /// The parts of a payment, as (balance, amount).
    fn parts(payment: &Payment) -> Vec<(Balance, i64)> {
        let takes = payment.takes.iter();
        takes.map(|take| (take.balance, take.amount)).collect()
    }

    #[test]
    fn subscribers_pay_from_the_plan_first_then_from_purchased_credits() {
        use Balance::{Credits, Purchased};
        let active = SubscriptionStatus::Active;
        let cases = [
            (10, 0, 5, vec![(Credits, 5)]),
            (2, 10, 5, vec![(Credits, 2), (Purchased, 3)]),
            (0, 10, 5, vec![(Purchased, 5)]),
        ];
        for (plan, purchased, price, expected) in cases {
            let payment = holding(active.clone(), plan, 7, purchased).payment_for(price);
            assert!(payment.affordable, "{plan} + {purchased} pays {price}");
            assert_eq!(parts(&payment), expected);
            assert_eq!(payment.takes.iter().map(|t| t.amount).sum::<i64>(), price);
        }
        let short = holding(active, 2, 7, 2).payment_for(5);
        assert!(
            !short.affordable,
            "free messages never pay a subscriber's message"
        );
        assert!(short.takes.iter().any(|take| take.before < take.amount));
    }

    #[test]
    fn others_pay_with_a_free_message_then_with_purchased_credits() {
        use Balance::{FreeMessages, Purchased};
        let none = SubscriptionStatus::None;
        let cases = [
            (3, 0, 1, vec![(FreeMessages, 1)]),
            (0, 4, 1, vec![(Purchased, 1)]),
            (3, 4, 4, vec![(Purchased, 4)]),
        ];
        for (free, purchased, price, expected) in cases {
            let payment = holding(none.clone(), 99, free, purchased).payment_for(price);
            assert!(payment.affordable);
            assert_eq!(parts(&payment), expected, "{free} free, {purchased} bought");
        }
        let ended = SubscriptionStatus::Canceled;
        assert!(
            !holding(ended, 99, 3, 3).payment_for(4).affordable,
            "never the plan's"
        );
        assert!(!holding(none, 0, 0, 0).payment_for(1).affordable);
    }

    #[test]
    fn user_ids_must_be_uuids_and_are_normalised() {
        let id = UserId::parse("4B3C1D7E-8F1A-4C1E-9A55-2F0E2D9C1A10").unwrap();
        assert_eq!(id.as_str(), "4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10");
        for bad in [
            "",
            "admin",
            "../4b3c1d7e",
            "USER#4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10",
        ] {
            assert!(UserId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_and_hash_never_show_the_raw_id() {
        let id = UserId::parse("4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10").unwrap();
        assert!(!format!("{id:?}").contains("4b3c1d7e"));
        assert_eq!(id.hash().len(), 16);
        assert_ne!(
            id.hash(),
            UserId::parse("00000000-0000-4000-8000-000000000000")
                .unwrap()
                .hash()
        );
    }
}
