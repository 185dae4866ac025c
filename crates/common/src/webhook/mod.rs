//! Stripe webhooks: the `Stripe-Signature` check ([`signature`]) and the event envelope
//! ([`event`]). The processing flow is in `crates/stripe-webhook`.

pub mod event;
pub mod signature;

/// Largest webhook body accepted (Stripe's events are far smaller).
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;
