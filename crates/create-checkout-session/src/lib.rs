//! `POST /v1/stripe/create-checkout-session`: authenticate → load the record → refuse if already
//! subscribed (stored state) → over the user's Stripe allowance, the open session again, else
//! 429 → refuse if subscribed at Stripe (when a customer exists) → a subscription whose payment
//! failed gets the portal's payment-method update instead, never a second subscription → ensure
//! the one Stripe customer → expire the user's previous Checkout session → create the new one
//! (replacing a customer deleted at Stripe) and remember it → respond with its URL.

use common::ApiError;
use common::app::App;
use common::billing::customers::{ensure_customer, replace_customer};
use common::endpoint::{access_logged, bearer_request, respond};
use common::limits;
use common::sync::sync_subscription;
use common::users;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// The response body.
#[derive(Debug, Serialize)]
pub struct CheckoutSession {
    /// Where the client sends the user to pay.
    pub checkout_url: String,
}

/// Replacements of a customer Stripe no longer has, before giving up: a concurrent request may
/// re-link the deleted one once (its first key replays it) before the new one stands.
const CUSTOMER_REPLACEMENTS: usize = 3;

/// The API Gateway route this function serves.
pub const ROUTE: &str = "POST /v1/stripe/create-checkout-session";

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async {
        respond(create_checkout_session(app, &req).await)
    })
    .await
}

async fn create_checkout_session(app: &App, req: &Request) -> Result<CheckoutSession, ApiError> {
    let user = bearer_request(app, req, http::Method::POST).await?;
    let billing = app.billing()?;
    let store = app.store.as_ref();
    let rules = &app.config.rules;
    let mut record = users::load_or_create(store, &user, rules).await?;
    if record.subscription_status.is_entitled() {
        return Err(ApiError::AlreadySubscribed);
    }
    if !limits::stripe_call_allowed(store, &user, rules).await? {
        let open = record.open_checkout.as_ref();
        return match open.filter(|o| o.payable_at(common::unix_now())) {
            Some(open) => Ok(CheckoutSession {
                checkout_url: open.url.clone(),
            }),
            None => Err(limits::over_allowance(rules)),
        };
    }
    if record.stripe_customer_id.is_some() {
        // Stored state says no, but a webhook may not have arrived yet: ask Stripe.
        record = sync_subscription(billing, store, record).await?;
    }
    if record.subscription_status.is_entitled() {
        return Err(ApiError::AlreadySubscribed);
    }
    if let Some(customer) = record.stripe_customer_id.as_deref()
        && record.subscription_status.awaits_payment()
        && let Some(fix_url) = billing.create_portal_session(customer, true).await?
    {
        // Stripe is still collecting for a subscription: fix its payment, never buy a second.
        tracing::info!(user = %user.hash(), status = %record.subscription_status, "checkout of a subscriber whose payment failed: payment-method update");
        return Ok(CheckoutSession {
            checkout_url: fix_url,
        });
    }
    let mut customer = ensure_customer(billing, store, &record).await?;
    if let Some(previous) = &record.open_checkout {
        billing.expire_checkout_session(&previous.id).await?;
    }
    for _ in 0..CUSTOMER_REPLACEMENTS {
        if let Some(session) = billing.create_checkout_session(&user, &customer).await? {
            let remembered = store.set_open_checkout(&user, Some(&session)).await;
            remembered.map_err(ApiError::erased_if_missing)?;
            return Ok(CheckoutSession {
                checkout_url: session.url,
            });
        }
        // The customer was deleted at Stripe (e.g. in the dashboard): a new one, then again.
        customer = replace_customer(billing, store, &user, &customer).await?;
    }
    Err(ApiError::StripeFailed)
}
