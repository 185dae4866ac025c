//! Stripe, through `async-stripe`: the client ([`client`]), its retries and error mapping
//! ([`failures`]), Checkout and portal sessions ([`sessions`]), one customer per user
//! ([`customers`]), the prices of the plans sold ([`prices`]), charges whose money went back
//! ([`charges`]), Stripe's copy of an event ([`events`]), and a budget of calls per second
//! ([`pace`]). The subscription sync that reads it
//! is the `sync` module, a layer above.

pub mod charges;
pub mod client;
pub mod customers;
pub mod events;
pub mod failures;
pub mod pace;
pub mod prices;
pub mod sessions;

pub use client::Billing;

use crate::domain::SubscriptionStatus;

/// The status of a Stripe subscription, as the domain reads it.
pub fn status_of(subscription: &stripe_billing::Subscription) -> SubscriptionStatus {
    SubscriptionStatus::parse(subscription.status.as_str())
}
