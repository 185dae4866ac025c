//! The API's error type and its JSON body (see `docs/api.md`):
//! `{"detail": msg, "error": {"code": CODE, "message": msg, "details"?: {...}}}`.

use http::StatusCode;
use serde_json::{Value, json};

use crate::store::StoreError;

/// Seconds a client is asked to wait after a 503 from storage or the JWKS.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 1;
/// Seconds a client is asked to wait after Stripe rate-limited us.
pub const STRIPE_RETRY_AFTER_SECS: u64 = 5;
/// Seconds a client is asked to wait after an export too large to answer.
pub const EXPORT_RETRY_AFTER_SECS: u64 = 60;

/// Every failure the API reports. Each variant fixes its status, code and human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` credentials were sent (401 `UNAUTHORIZED`).
    #[error("Authentication required.")]
    MissingToken,
    /// The token is malformed, badly signed, or has wrong claims (401 `INVALID_TOKEN`).
    #[error("Invalid access token.")]
    InvalidToken,
    /// The token's `exp` has passed (401 `TOKEN_EXPIRED`).
    #[error("Access token has expired.")]
    TokenExpired,
    /// The signing keys could not be fetched (503 `AUTH_UNAVAILABLE`).
    #[error("Authentication is temporarily unavailable. Please retry.")]
    AuthUnavailable,
    /// Storage failed or throttled (503 `SERVICE_UNAVAILABLE`). Never reported as a zero balance.
    #[error("The service is temporarily unavailable. Please retry.")]
    StorageUnavailable,
    /// The user already has an active or trialing subscription (409 `ALREADY_SUBSCRIBED`).
    #[error("You already have an active subscription.")]
    AlreadySubscribed,
    /// The user has no Stripe customer (404 `NO_SUBSCRIPTION`).
    #[error("No subscription found. Please subscribe first.")]
    NoSubscription,
    /// Stripe refused or failed the call (502 `STRIPE_ERROR`); Stripe's own message is only logged.
    #[error("The payment provider could not complete the request. Please try again later.")]
    StripeFailed,
    /// Stripe rate-limited us beyond our retries (503 `STRIPE_UNAVAILABLE`).
    #[error("The payment provider is busy. Please retry shortly.")]
    StripeUnavailable,
    /// The auth service did not delete the login (502 `AUTH_SERVICE_ERROR`): it failed, timed
    /// out, or refused our key; the erasure resumes on the next call.
    #[error("The sign-in service could not delete the login. Please try again later.")]
    AuthServiceFailed,
    /// The request ran out of its time before the function's deadline (503 `DEADLINE_EXCEEDED`):
    /// a dependency hung or kept failing; nothing is lost and a retry resumes.
    #[error("The request took too long and was stopped; nothing was lost. Please retry.")]
    DeadlineExceeded,
    /// The app has no Stripe settings, or the webhook no signing secret (503
    /// `BILLING_NOT_CONFIGURED`; only where settings are optional: the local API with Stripe's
    /// test mode, apps built in tests).
    #[error(
        "Billing is not configured: set STRIPE_SECRET_KEY, STRIPE_PRICE_ID and PLAN_CREDITS, and STRIPE_WEBHOOK_SECRET for webhooks."
    )]
    BillingNotConfigured,
    /// A debit or refund named its message with an id that is empty, over 128 characters, or not
    /// printable ASCII (400 `INVALID_DEBIT_ID`): a caller's bug, never worth a retry.
    #[error("The message's debit id must be 1 to 128 printable ASCII characters.")]
    InvalidDebitId,
    /// A history page's `limit` is not a whole number from 1 to 100 (400 `INVALID_LIMIT`).
    #[error("The limit must be a whole number from 1 to 100.")]
    InvalidLimit,
    /// A history page's `cursor` was not given by this endpoint to this account, or was altered
    /// (400 `INVALID_CURSOR`).
    #[error("The cursor is not valid: use the next_cursor of the previous page, unchanged.")]
    InvalidCursor,
    /// A request body that is not the JSON object the endpoint takes (400 `INVALID_BODY`).
    #[error("The request body must be empty or a JSON object with the documented fields.")]
    InvalidBody,
    /// A checkout asked for a plan that is not sold: unknown, or retired (400 `UNKNOWN_PLAN`).
    #[error("No such plan is sold. GET /v1/billing/plans lists the plans.")]
    UnknownPlan,
    /// A pack checkout asked for a pack that is not sold (400 `UNKNOWN_PACK`).
    #[error("No such credit pack is sold. GET /v1/billing/plans lists the packs.")]
    UnknownPack,
    /// Nothing left to pay a message with (402 `INSUFFICIENT_CREDITS`).
    #[error(
        "No credits or free messages left. Please subscribe or wait for your next billing period."
    )]
    InsufficientCredits,
    /// A webhook whose `Stripe-Signature` is missing, malformed, stale or wrong (400 `INVALID_SIGNATURE`).
    #[error("Invalid webhook signature.")]
    InvalidSignature,
    /// A signed webhook whose body is not a Stripe event (400 `INVALID_PAYLOAD`).
    #[error("Invalid webhook payload.")]
    InvalidPayload,
    /// A paid invoice's credits are owed but the subscription is not active or trialing yet
    /// (409 `SUBSCRIPTION_NOT_ACTIVE`): the webhook event fails and Stripe redelivers it.
    #[error("The subscription is not active yet. Please retry later.")]
    SubscriptionNotActive,
    /// Another delivery of this event is being processed (409 `EVENT_IN_PROGRESS`); Stripe retries.
    #[error("This event is being processed. Please retry later.")]
    EventInProgress,
    /// The account was erased; its still-valid token gets nothing (410 `ACCOUNT_DELETED`).
    #[error("This account has been deleted.")]
    AccountDeleted,
    /// The caller's allowance of requests that reach Stripe is used up for this window (429
    /// `RATE_LIMITED`, with `Retry-After`).
    #[error("Too many billing requests. Please retry in a moment.")]
    RateLimited {
        /// Seconds until the next window.
        retry_after: u64,
    },
    /// The route exists but not for this method (405 `METHOD_NOT_ALLOWED`).
    #[error("Method not allowed.")]
    MethodNotAllowed {
        /// The method the route accepts, for the `Allow` header.
        allow: http::Method,
    },
    /// The request body is over the endpoint's cap (413 `PAYLOAD_TOO_LARGE`).
    #[error("Request body too large.")]
    PayloadTooLarge,
    /// No such route (404 `NOT_FOUND`).
    #[error("Not found.")]
    NotFound,
    /// A user's export is larger than one answer holds, or was not read in time (503
    /// `EXPORT_TOO_LARGE`, with `Retry-After`); nothing is cut off.
    #[error(
        "Your data could not be exported in one request. Please retry later; if it keeps failing, contact support."
    )]
    ExportTooLarge,
    /// An unexpected internal failure (500 `INTERNAL_ERROR`); details go to the log only.
    #[error("Internal error.")]
    Internal,
}

/// A storage failure as the API reports it: the state is unknown, so a 503 to retry, or a
/// 500 when what is stored cannot be read.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Throttled | StoreError::Unavailable(_) => ApiError::StorageUnavailable,
            StoreError::Corrupt(_) | StoreError::NoRecord => ApiError::Internal,
            StoreError::Erasing => ApiError::AccountDeleted,
        }
    }
}

impl ApiError {
    /// A storage failure of a write to the record of a user read moments before: a record found
    /// missing then was deleted meanwhile, which only an erasure does (410); else as always.
    pub fn erased_if_missing(err: StoreError) -> ApiError {
        match err {
            StoreError::NoRecord => ApiError::AccountDeleted,
            other => other.into(),
        }
    }

    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidToken | ApiError::TokenExpired => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::AuthUnavailable
            | ApiError::StorageUnavailable
            | ApiError::StripeUnavailable
            | ApiError::DeadlineExceeded
            | ApiError::ExportTooLarge
            | ApiError::BillingNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::AlreadySubscribed
            | ApiError::EventInProgress
            | ApiError::SubscriptionNotActive => StatusCode::CONFLICT,
            ApiError::InsufficientCredits => StatusCode::PAYMENT_REQUIRED,
            ApiError::InvalidSignature
            | ApiError::InvalidPayload
            | ApiError::InvalidDebitId
            | ApiError::InvalidLimit
            | ApiError::InvalidCursor
            | ApiError::InvalidBody
            | ApiError::UnknownPlan
            | ApiError::UnknownPack => StatusCode::BAD_REQUEST,
            ApiError::NoSubscription => StatusCode::NOT_FOUND,
            ApiError::AccountDeleted => StatusCode::GONE,
            ApiError::StripeFailed | ApiError::AuthServiceFailed => StatusCode::BAD_GATEWAY,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable UPPER_SNAKE code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "UNAUTHORIZED",
            ApiError::InvalidToken => "INVALID_TOKEN",
            ApiError::TokenExpired => "TOKEN_EXPIRED",
            ApiError::AuthUnavailable => "AUTH_UNAVAILABLE",
            ApiError::StorageUnavailable => "SERVICE_UNAVAILABLE",
            ApiError::AlreadySubscribed => "ALREADY_SUBSCRIBED",
            ApiError::InsufficientCredits => "INSUFFICIENT_CREDITS",
            ApiError::InvalidDebitId => "INVALID_DEBIT_ID",
            ApiError::InvalidLimit => "INVALID_LIMIT",
            ApiError::InvalidCursor => "INVALID_CURSOR",
            ApiError::InvalidBody => "INVALID_BODY",
            ApiError::UnknownPlan => "UNKNOWN_PLAN",
            ApiError::UnknownPack => "UNKNOWN_PACK",
            ApiError::InvalidSignature => "INVALID_SIGNATURE",
            ApiError::InvalidPayload => "INVALID_PAYLOAD",
            ApiError::EventInProgress => "EVENT_IN_PROGRESS",
            ApiError::SubscriptionNotActive => "SUBSCRIPTION_NOT_ACTIVE",
            ApiError::NoSubscription => "NO_SUBSCRIPTION",
            ApiError::AccountDeleted => "ACCOUNT_DELETED",
            ApiError::StripeFailed => "STRIPE_ERROR",
            ApiError::StripeUnavailable => "STRIPE_UNAVAILABLE",
            ApiError::AuthServiceFailed => "AUTH_SERVICE_ERROR",
            ApiError::DeadlineExceeded => "DEADLINE_EXCEEDED",
            ApiError::ExportTooLarge => "EXPORT_TOO_LARGE",
            ApiError::BillingNotConfigured => "BILLING_NOT_CONFIGURED",
            ApiError::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            ApiError::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::NotFound => "NOT_FOUND",
            ApiError::Internal => "INTERNAL_ERROR",
        }
    }

    /// Seconds the client should wait before retrying, where a retry makes sense.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::AuthUnavailable
            | ApiError::StorageUnavailable
            | ApiError::DeadlineExceeded => Some(STORAGE_RETRY_AFTER_SECS),
            ApiError::StripeUnavailable => Some(STRIPE_RETRY_AFTER_SECS),
            ApiError::ExportTooLarge => Some(EXPORT_RETRY_AFTER_SECS),
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Extra response headers this error requires (RFC 6750 `WWW-Authenticate`, `Allow`, `Retry-After`).
    pub fn headers(&self) -> Vec<(http::HeaderName, String)> {
        let mut headers = Vec::new();
        let challenge = match self {
            ApiError::MissingToken => Some(r#"Bearer realm="api""#.to_owned()),
            ApiError::InvalidToken | ApiError::TokenExpired => Some(format!(
                r#"Bearer realm="api", error="invalid_token", error_description="{self}""#
            )),
            _ => None,
        };
        if let Some(challenge) = challenge {
            headers.push((http::header::WWW_AUTHENTICATE, challenge));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            headers.push((http::header::ALLOW, allow.to_string()));
        }
        if let Some(secs) = self.retry_after() {
            headers.push((http::header::RETRY_AFTER, secs.to_string()));
        }
        headers
    }

    /// The JSON error body of the contract.
    pub fn body(&self) -> Value {
        let message = self.to_string();
        let mut error = json!({ "code": self.code(), "message": message });
        if let Some(secs) = self.retry_after() {
            error["details"] = json!({ "retry_after": secs });
        }
        json!({ "detail": message, "error": error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_carries_detail_code_and_message() {
        let body = ApiError::InvalidToken.body();
        assert_eq!(body["detail"], "Invalid access token.");
        assert_eq!(body["error"]["code"], "INVALID_TOKEN");
        assert_eq!(body["error"]["message"], body["detail"]);
        assert!(body["error"].get("details").is_none());
    }

    #[test]
    fn unavailable_errors_ask_for_a_retry() {
        let err = ApiError::StorageUnavailable;
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.body()["error"]["details"]["retry_after"], 1);
        assert!(
            err.headers()
                .contains(&(http::header::RETRY_AFTER, "1".into()))
        );
    }

    #[test]
    fn auth_errors_carry_a_bearer_challenge() {
        for err in [
            ApiError::MissingToken,
            ApiError::InvalidToken,
            ApiError::TokenExpired,
        ] {
            assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
            let headers = err.headers();
            let (_, challenge) = headers
                .iter()
                .find(|(n, _)| n == http::header::WWW_AUTHENTICATE)
                .unwrap();
            assert!(challenge.starts_with("Bearer "));
        }
        assert_eq!(ApiError::TokenExpired.code(), "TOKEN_EXPIRED");
    }

    #[test]
    fn method_not_allowed_names_the_allowed_method() {
        let err = ApiError::MethodNotAllowed {
            allow: http::Method::GET,
        };
        assert_eq!(err.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(err.headers().contains(&(http::header::ALLOW, "GET".into())));
    }
}
