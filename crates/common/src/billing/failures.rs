//! How a Stripe call fails: each attempt in its slot of the pace, retried with backoff where
//! Stripe says a retry is safe, and a final failure logged (status, type and code, never
//! Stripe's message) and mapped to our error.

use std::future::Future;

use backon::Retryable;
use stripe::{ApiErrorsCode, ApiErrorsType, StripeError};

use super::Billing;
use crate::error::ApiError;

/// Whether Stripe refused a request because its `customer` does not exist (any more): 400
/// `resource_missing` on the `customer` parameter, as for a customer deleted in the dashboard.
pub(super) fn is_missing_customer(err: &StripeError) -> bool {
    matches!(err, StripeError::Stripe(api, 400)
        if api.code == Some(ApiErrorsCode::ResourceMissing)
            && api.param.as_deref() == Some("customer"))
}

/// Whether Stripe refused a request because another one with its idempotency key is still
/// executing (409 `idempotency_error`).
pub(super) fn is_idempotency_conflict(err: &StripeError) -> bool {
    matches!(err, StripeError::Stripe(api, 409) if api.type_ == ApiErrorsType::IdempotencyError)
}

impl Billing {
    /// Runs `attempt` up to [`crate::CALL_ATTEMPTS`] times while it fails transiently, each
    /// attempt in its slot of the pace where one is set (a 429 slows it).
    /// Boxed: Stripe's objects nest so deeply (a session holds a customer holds a transfer...)
    /// that proving a caller's future `Send` through the unboxed request overflows the
    /// compiler's recursion limit; one allocation per call erases the type.
    pub(super) fn retrying<'a, T, F, Fut>(
        &'a self,
        what: &'static str,
        mut attempt: F,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<T, StripeError>> + Send + 'a>>
    where
        F: FnMut() -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, StripeError>> + Send + 'a,
        T: Send + 'a,
    {
        let pace = self.pace.get();
        let paced = move || {
            let call = attempt();
            async move {
                if let Some(pace) = pace {
                    pace.ready().await;
                }
                let result = call.await;
                if let (Some(pace), Err(StripeError::Stripe(_, 429))) = (pace, &result) {
                    pace.slow_down();
                }
                result
            }
        };
        Box::pin(
            paced
                .retry(crate::call_backoff())
                .when(is_transient)
                .notify(move |err, delay| tracing::warn!(call = what, error = %describe(err), ?delay, "Stripe call failed; retrying")),
        )
    }
}

/// Logs a final Stripe failure and maps it to ours.
pub(super) fn failed(what: &'static str, err: &StripeError) -> ApiError {
    tracing::error!(call = what, error = %describe(err), "Stripe call failed");
    crate::metrics::count(crate::metrics::Metric::StripeFailures, 1);
    to_api_error(err)
}

pub(super) fn is_transient(err: &StripeError) -> bool {
    match err {
        StripeError::Stripe(_, status) => *status == 429 || (500..=599).contains(status),
        StripeError::ClientError(_) | StripeError::Timeout => true,
        StripeError::JSONDeserialize(_) | StripeError::ConfigError(_) => false,
    }
}

/// Our error for a Stripe failure: rate limits are a 503 to retry later, everything else a 502.
fn to_api_error(err: &StripeError) -> ApiError {
    match err {
        StripeError::Stripe(_, 429) => ApiError::StripeUnavailable,
        _ => ApiError::StripeFailed,
    }
}

/// What is safe to log of a Stripe error: its status, type and code, never Stripe's message
/// (which can quote card details).
pub(super) fn describe(err: &StripeError) -> String {
    match err {
        StripeError::Stripe(api, status) => format!(
            "status {status}, type {}, code {}",
            api.type_.as_str(),
            api.code.as_ref().map_or("none", |c| c.as_str())
        ),
        StripeError::JSONDeserialize(_) => "unexpected response body".to_owned(),
        StripeError::ClientError(_) => "connection failed".to_owned(),
        StripeError::ConfigError(_) => "client misconfigured".to_owned(),
        StripeError::Timeout => "timed out".to_owned(),
    }
}
