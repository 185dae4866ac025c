//! `POST /v1/stripe/create-checkout-session`: authenticate → load the record → refuse if already
//! subscribed (stored state, then Stripe when a customer exists) → ensure the one Stripe
//! customer → create the Checkout session → respond with its URL.

use common::ApiError;
use common::app::App;
use common::billing::customers::ensure_customer;
use common::billing::sync::sync_subscription;
use common::http::{access_logged, bearer_request, respond};
use common::users::{self, is_subscribed};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// The response body.
#[derive(Debug, Serialize)]
pub struct CheckoutSession {
    /// Where the client sends the user to pay.
    pub checkout_url: String,
}

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
    let mut record = users::load_or_create(store, &user, &app.config.rules).await?;
    if !is_subscribed(&record.subscription_status) && record.stripe_customer_id.is_some() {
        // Stored state says no, but a webhook may not have arrived yet: ask Stripe.
        record = sync_subscription(billing, store, record).await?;
    }
    if is_subscribed(&record.subscription_status) {
        return Err(ApiError::AlreadySubscribed);
    }
    let customer = ensure_customer(billing, store, &record).await?;
    let checkout_url = billing.create_checkout_session(&user, &customer).await?;
    Ok(CheckoutSession { checkout_url })
}
