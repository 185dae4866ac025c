//! Limits per caller (see `docs/api.md`, "Limits per caller"): each user's requests that reach
//! Stripe are counted per fixed window ([`crate::domain::StripeAllowance`]); over the allowance
//! the sync answers the stored state, checkout the user's open session, and anything else 429
//! `RATE_LIMITED` with `Retry-After`.

use crate::config::Rules;
use crate::domain::UserId;
use crate::error::ApiError;
use crate::store::CallLimits;

/// Counts one request of `user` that is about to reach Stripe; whether it may (one conditional
/// write). Over the allowance nothing is counted, and it is logged.
pub async fn stripe_call_allowed<S: CallLimits + ?Sized>(
    store: &S,
    user: &UserId,
    rules: &Rules,
) -> Result<bool, ApiError> {
    let allowance = rules.stripe_allowance;
    let window = allowance.window_of(crate::unix_now());
    let counted = store
        .count_stripe_call(user, window, allowance.calls)
        .await
        .map_err(ApiError::erased_if_missing)?;
    if !counted {
        tracing::warn!(user = %user.hash(), calls = allowance.calls, window_secs = allowance.window_secs, "Stripe allowance of the user reached");
    }
    Ok(counted)
}

/// The answer to a request over the allowance: 429 with the seconds until the next window.
pub fn over_allowance(rules: &Rules) -> ApiError {
    ApiError::RateLimited {
        retry_after: rules.stripe_allowance.retry_after(crate::unix_now()),
    }
}
