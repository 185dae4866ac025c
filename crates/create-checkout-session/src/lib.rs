//! `POST /v1/stripe/create-checkout-session`: authenticate → the plan asked for (`{"plan": id}`,
//! the default without a body; 400 if it is not sold) → load the record → refuse if already
//! subscribed (stored state) → over the user's Stripe allowance, the open session of that plan
//! again, else 429 → refuse if subscribed at Stripe (when a customer exists) → a subscription
//! whose payment failed gets the portal's payment-method update instead, never a second
//! subscription → ensure the one Stripe customer → expire the user's previous Checkout session
//! → create the new one for the plan's price (replacing a customer deleted at Stripe) and
//! remember it → respond with its URL.

use common::ApiError;
use common::app::App;
use common::billing::customers::{ensure_customer, on_live_customer};
use common::domain::{OpenCheckout, UserId};
use common::endpoint::{access_logged, bearer_request, json_body, respond};
use common::limits;
use common::sync::sync_subscription;
use common::users;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

/// The request body: optional, as the shipped client sends none; a field it does not know is
/// refused (a misspelt `plan` must not silently sell the default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// The id of a sold plan; the catalogue's first without it.
    pub plan: Option<String>,
}

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
    let caller = bearer_request(app, req, http::Method::POST).await?;
    let user = caller.user.clone();
    let billing = app.billing()?;
    let asked: CheckoutRequest = json_body(req)?;
    let plan = billing
        .config
        .catalogue
        .to_sell(asked.plan.as_deref())
        .map_err(|_| ApiError::UnknownPlan)?;
    let store = app.store.as_ref();
    let rules = &app.config.rules;
    let mut record = users::load_or_create(store, &caller, rules).await?;
    if record.subscription_status.is_entitled() {
        return Err(ApiError::AlreadySubscribed);
    }
    if !limits::stripe_call_allowed(store, &user, rules).await? {
        // The open session again, if it sells this plan: never another plan's.
        let open = record.open_checkout.as_ref();
        return match open.filter(|o| o.sells_at(&plan.price_id, common::unix_now())) {
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
        && let Some(fix_url) = billing.payment_fix_url(customer).await?
    {
        // Stripe is still collecting for a subscription: fix its payment, never buy a second.
        tracing::info!(user = %user.hash(), status = %record.subscription_status, "checkout of a subscriber whose payment failed: payment-method update");
        return Ok(CheckoutSession {
            checkout_url: fix_url,
        });
    }
    let customer = ensure_customer(billing, store, &record).await?;
    let previous = record.open_checkout.as_ref().map(|o| o.id.as_str());
    if let Some(previous) = previous {
        billing.expire_checkout_session(previous).await?;
    }
    let user_ref = &user;
    let session = on_live_customer(billing, store, &user, customer, |customer| async move {
        billing
            .create_checkout_session(user_ref, &customer, plan)
            .await
    })
    .await?;
    let checkout_url = remember(app, &user, previous, session).await?;
    Ok(CheckoutSession { checkout_url })
}

/// Records `session` as the user's one open session, and answers its URL. If a concurrent
/// checkout recorded its own first (a double tap), `session` is expired and theirs answered if
/// it sells the same plan, so one stays payable; if an erasure began, it is expired and the answer is 410.
async fn remember(
    app: &App,
    user: &UserId,
    previous: Option<&str>,
    session: OpenCheckout,
) -> Result<String, ApiError> {
    let price = session.price_id.clone();
    let (billing, store) = (app.billing()?, app.store.as_ref());
    let recorded = store
        .set_open_checkout(user, previous, Some(&session))
        .await;
    if recorded == Ok(true) {
        return Ok(session.url);
    }
    billing.expire_checkout_session(&session.id).await?;
    recorded.map_err(ApiError::erased_if_missing)?;
    let record = store
        .get_user(user)
        .await?
        .ok_or(ApiError::AccountDeleted)?;
    record
        .open_checkout
        .filter(|open| open.sells_at(&price, common::unix_now()))
        .map(|open| open.url)
        .ok_or(ApiError::StripeFailed)
}
