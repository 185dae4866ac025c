//! Shared mechanics of the user & billing Lambdas.
//!
//! Layered: each module uses only the ones in the rows above it (the domain at the bottom uses
//! none of them), so the module graph has no cycle.
//!
//! | layer | module | holds |
//! |---|---|---|
//! | leaves | [`metrics`] | billing metrics as CloudWatch Embedded Metric Format lines |
//! | | [`https`] | the HTTPS client of the auth service's calls: hyper on rustls, compiled-in roots |
//! | model | [`domain`] | users, the typed subscription status and its rules, paid periods, debits, events, erasure stages |
//! | settings | [`config`] | environment configuration, validated at cold start |
//! | storage | [`store`] | one trait per capability; the DynamoDB and embedded implementations |
//! | errors | [`error`] | the API error type and its JSON body |
//! | services | [`auth`] | bearer-token verification (HS256 or JWKS) |
//! | | [`billing`] | Stripe: the client, one customer per user |
//! | | [`login`] | the login at the hosted auth service: its deletion through the admin API |
//! | | [`webhook`] | Stripe webhook signature and event envelope |
//! | rules | [`users`] | the status view, first-sight record creation |
//! | | [`credits`] | the credit rules: grants per paid invoice, the atomic debit and its refund, adjustments |
//! | | [`history`] | the credit history a user sees: entries newest first, page by page |
//! | | [`limits`] | limits per caller: each user's Stripe calls per window |
//! | | [`sync`] | the subscription sync: Stripe's state into the record, and the period owed |
//! | | [`clawbacks`] | refunds and disputes: the credits of the purchase whose money went back |
//! | | [`erasure`] | GDPR erasure, resumable step by step: Stripe, tombstone, stored items, login |
//! | | [`export`] | a user's own copy of what this service holds about them (GDPR access) |
//! | entry | [`app`] | what a Lambda builds once at init |
//! | | [`endpoint`] | what every endpoint does around its flow: route checks, deadline, access log, responses |
//! | | [`telemetry`] | JSON logs |
//! | tests | `testing` | test tokens and settings (feature `test-util`; no Lambda enables it) |

pub mod app;
pub mod auth;
pub mod billing;
pub mod clawbacks;
pub mod config;
pub mod credits;
pub mod domain;
pub mod endpoint;
pub mod erasure;
pub mod error;
pub mod export;
pub mod history;
pub mod https;
pub mod limits;
pub mod login;
pub mod metrics;
pub mod secrets;
pub mod store;
pub mod sync;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod users;
pub mod webhook;

pub use app::App;
pub use error::ApiError;

/// Attempts of a call to another service (Stripe, the auth service's admin API), the first
/// included, while it fails transiently.
pub const CALL_ATTEMPTS: usize = 3;

/// The pause between those attempts: 200 ms, then doubling, jittered.
pub(crate) fn call_backoff() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(200))
        .with_max_times(CALL_ATTEMPTS - 1)
        .with_jitter()
}

/// Attempts of a change decided on a read whose record moved before its write (another change
/// of the same user won the race), each on a fresh read.
pub const RACE_ATTEMPTS: usize = 12;

/// The pause before each of those attempts: none before the first, then 5 ms doubling up to
/// 200 ms, jittered, so that one user's concurrent changes spread out rather than meet again
/// (about 1.3 s in all).
pub(crate) fn race_pauses() -> impl Iterator<Item = std::time::Duration> {
    use backon::BackoffBuilder;
    let pauses = backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(5))
        .with_max_delay(std::time::Duration::from_millis(200))
        .with_max_times(RACE_ATTEMPTS - 1)
        .with_jitter()
        .build();
    std::iter::once(std::time::Duration::ZERO).chain(pauses)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Time left until `deadline_ms` (Unix milliseconds, as Lambda gives an invocation's deadline);
/// zero once it has passed.
pub fn time_until(deadline_ms: u64) -> std::time::Duration {
    let left_ms = i64::try_from(deadline_ms).unwrap_or(i64::MAX) - unix_now_ms();
    std::time::Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
