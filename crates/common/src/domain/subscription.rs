//! The subscription's status, typed, with the rules that read it, and the state of a customer's
//! subscription as read from Stripe at one instant.

use std::fmt;

/// Plan shown to users without a subscription.
pub const FREE_PLAN: &str = "free";

/// A subscription's status: Stripe's, or [`SubscriptionStatus::None`] for a user who has no
/// subscription. Stored and shown by its Stripe name ([`SubscriptionStatus::as_str`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// No subscription at all (`none`).
    None,
    /// Paid and running (`active`).
    Active,
    /// In its trial (`trialing`).
    Trialing,
    /// A renewal payment failed; Stripe is retrying it (`past_due`).
    PastDue,
    /// The first payment has not succeeded yet (`incomplete`).
    Incomplete,
    /// The first payment never succeeded within 23 hours (`incomplete_expired`).
    IncompleteExpired,
    /// Ended (`canceled`).
    Canceled,
    /// Payment retries are exhausted; the subscription stays open (`unpaid`).
    Unpaid,
    /// A trial ended without a payment method (`paused`).
    Paused,
    /// A status this code does not know yet (Stripe may add some), kept by its name: neither
    /// entitled nor ended.
    Other(String),
}

impl SubscriptionStatus {
    /// The statuses that entitle the user to the paid plan: its credits, and `has_subscription`.
    pub const ENTITLED: [SubscriptionStatus; 2] =
        [SubscriptionStatus::Active, SubscriptionStatus::Trialing];

    /// The statuses of a subscription that is over for good (canceled, expired before its first
    /// payment, or none at all): unused paid credits lapse, and nothing is left to cancel.
    pub const ENDED: [SubscriptionStatus; 3] = [
        SubscriptionStatus::None,
        SubscriptionStatus::IncompleteExpired,
        SubscriptionStatus::Canceled,
    ];

    /// Every known status but [`SubscriptionStatus::Other`], for parsing and tests.
    pub const KNOWN: [SubscriptionStatus; 9] = [
        SubscriptionStatus::None,
        SubscriptionStatus::Active,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Incomplete,
        SubscriptionStatus::IncompleteExpired,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Unpaid,
        SubscriptionStatus::Paused,
    ];

    /// The status of a stored or Stripe name; an unknown name is [`SubscriptionStatus::Other`].
    pub fn parse(name: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|known| known.as_str() == name)
            .unwrap_or_else(|| SubscriptionStatus::Other(name.to_owned()))
    }

    /// The status's name, as Stripe spells it (`none` without a subscription).
    pub fn as_str(&self) -> &str {
        match self {
            SubscriptionStatus::None => "none",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::IncompleteExpired => "incomplete_expired",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Unpaid => "unpaid",
            SubscriptionStatus::Paused => "paused",
            SubscriptionStatus::Other(name) => name,
        }
    }

    /// Whether the status entitles the user to the paid plan ([`SubscriptionStatus::ENTITLED`]).
    pub fn is_entitled(&self) -> bool {
        Self::ENTITLED.contains(self)
    }

    /// Whether the subscription is over for good ([`SubscriptionStatus::ENDED`]): unused paid
    /// credits lapse, and nothing is left to cancel.
    pub fn ends_paid_credits(&self) -> bool {
        Self::ENDED.contains(self)
    }

    /// Whether a subscription that is not entitled now may still become so without a new
    /// checkout: only `incomplete`, whose first payment is still being made. A paid invoice
    /// that finds the subscription in any other status is owed nothing, and no redelivery of
    /// its event can change that.
    pub fn may_become_entitled(&self) -> bool {
        *self == SubscriptionStatus::Incomplete
    }

    /// Whether the subscription is live but not entitled (past due, unpaid, incomplete, paused,
    /// or a status this code does not know): Stripe still holds it open and may still charge
    /// for it, so the user must fix its payment, never be sold a second one.
    pub fn awaits_payment(&self) -> bool {
        !self.is_entitled() && !self.ends_paid_credits()
    }

    /// Which subscription of a customer matters most: entitled (0) before past due (1) before
    /// any other (2).
    pub fn rank(&self) -> u8 {
        match self {
            _ if self.is_entitled() => 0,
            SubscriptionStatus::PastDue => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for SubscriptionStatus {
    fn from(name: &str) -> Self {
        SubscriptionStatus::parse(name)
    }
}

impl PartialEq<&str> for SubscriptionStatus {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

/// The subscription state of a customer as read from Stripe at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    /// `free` or the paid plan's name.
    pub plan: String,
    /// The status of the subscription that matters, or [`SubscriptionStatus::None`].
    pub status: SubscriptionStatus,
    /// The subscription that matters, if any.
    pub subscription_id: Option<String>,
    /// Its price.
    pub price_id: Option<String>,
    /// End of its current period, Unix seconds.
    pub current_period_end: Option<i64>,
    /// Whether it ends at the period end.
    pub cancel_at_period_end: bool,
    /// When Stripe was asked, Unix milliseconds: the view's version.
    pub observed_at_ms: i64,
    /// Since when the status is what it is, Unix seconds (the observation that first saw it).
    pub status_since: i64,
    /// When reconciliation should next re-sync the user, Unix seconds
    /// ([`super::reconcile::next_check`]); `None` takes the user out of reconciliation (no
    /// Stripe customer, or nothing has moved for long: any sync puts the user back).
    pub next_check: Option<i64>,
    /// When the customer's charges were last listed for money that went back, Unix seconds
    /// ([`super::clawbacks::charges_to_list`]); carried over from the record when this sync
    /// does not list them.
    pub charges_listed_at: Option<i64>,
}

impl SubscriptionView {
    /// The view of a customer without any subscription, observed at `observed_at_ms`.
    pub fn none(observed_at_ms: i64) -> Self {
        SubscriptionView {
            plan: FREE_PLAN.to_owned(),
            status: SubscriptionStatus::None,
            subscription_id: None,
            price_id: None,
            current_period_end: None,
            cancel_at_period_end: false,
            observed_at_ms,
            status_since: observed_at_ms / 1000,
            next_check: None,
            charges_listed_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_and_trialing_are_entitled() {
        for status in SubscriptionStatus::KNOWN {
            let entitled = matches!(status.as_str(), "active" | "trialing");
            assert_eq!(status.is_entitled(), entitled, "{status}");
        }
        assert!(!SubscriptionStatus::parse("something_new").is_entitled());
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_kept() {
        for status in SubscriptionStatus::KNOWN {
            assert_eq!(SubscriptionStatus::parse(status.as_str()), status);
        }
        let new = SubscriptionStatus::parse("something_new");
        assert_eq!(new, SubscriptionStatus::Other("something_new".into()));
        assert_eq!(new.as_str(), "something_new");
        assert!(!new.ends_paid_credits());
    }

    #[test]
    fn credits_lapse_only_when_the_subscription_is_over() {
        let lapsing: Vec<&str> = SubscriptionStatus::KNOWN
            .iter()
            .filter(|s| s.ends_paid_credits())
            .map(SubscriptionStatus::as_str)
            .collect();
        assert_eq!(lapsing, ["none", "incomplete_expired", "canceled"]);
    }

    #[test]
    fn live_unpaid_subscriptions_await_payment_and_only_incomplete_may_still_activate() {
        let awaiting: Vec<&str> = SubscriptionStatus::KNOWN
            .iter()
            .filter(|s| s.awaits_payment())
            .map(SubscriptionStatus::as_str)
            .collect();
        assert_eq!(awaiting, ["past_due", "incomplete", "unpaid", "paused"]);
        assert!(SubscriptionStatus::parse("something_new").awaits_payment());
        let activating: Vec<&str> = SubscriptionStatus::KNOWN
            .iter()
            .filter(|s| s.may_become_entitled())
            .map(SubscriptionStatus::as_str)
            .collect();
        assert_eq!(activating, ["incomplete"]);
    }

    #[test]
    fn entitled_ranks_before_past_due_before_the_rest() {
        let rank = |name: &str| SubscriptionStatus::parse(name).rank();
        assert_eq!((rank("active"), rank("trialing")), (0, 0));
        assert_eq!(rank("past_due"), 1);
        assert_eq!((rank("canceled"), rank("unpaid"), rank("none")), (2, 2, 2));
    }
}
