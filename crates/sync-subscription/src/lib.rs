//! `POST /v1/stripe/sync-subscription`: authenticate → load the record → over the user's Stripe
//! allowance, the stored state → else pull the subscription state from Stripe with the shared
//! sync (the webhook's too) → respond with the status body.

use common::ApiError;
use common::app::App;
use common::endpoint::{access_logged, bearer_request, respond};
use common::limits;
use common::sync::sync_subscription;
use common::users::{self, UserStatus};
use lambda_http::{Body, Request, Response};

/// The API Gateway route this function serves.
pub const ROUTE: &str = "POST /v1/stripe/sync-subscription";

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async { respond(sync(app, &req).await) }).await
}

async fn sync(app: &App, req: &Request) -> Result<UserStatus, ApiError> {
    let caller = bearer_request(app, req, http::Method::POST).await?;
    let user = caller.user.clone();
    let billing = app.billing()?;
    let store = app.store.as_ref();
    let rules = &app.config.rules;
    let record = users::load_or_create(store, &caller, rules).await?;
    if record.stripe_customer_id.is_none()
        || !limits::stripe_call_allowed(store, &user, rules).await?
    {
        return Ok(UserStatus::from(&record));
    }
    let record = sync_subscription(billing, store, record).await?;
    Ok(UserStatus::from(&record))
}
