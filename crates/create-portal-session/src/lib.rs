//! `POST /v1/stripe/create-portal-session`: authenticate → load the record → 404 without a
//! Stripe customer → 429 over the user's Stripe allowance → create the portal session (404 for
//! a customer deleted at Stripe, then forgotten) → respond with its URL.

use common::ApiError;
use common::app::App;
use common::endpoint::{access_logged, bearer_request, respond};
use common::limits;
use common::users;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// The response body.
#[derive(Debug, Serialize)]
pub struct PortalSession {
    /// Where the client sends the user to manage the subscription.
    pub portal_url: String,
}

/// The API Gateway route this function serves.
pub const ROUTE: &str = "POST /v1/stripe/create-portal-session";

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async {
        respond(create_portal_session(app, &req).await)
    })
    .await
}

async fn create_portal_session(app: &App, req: &Request) -> Result<PortalSession, ApiError> {
    let caller = bearer_request(app, req, http::Method::POST).await?;
    let user = caller.user.clone();
    let billing = app.billing()?;
    let (store, rules) = (app.store.as_ref(), &app.config.rules);
    let record = users::load_or_create(store, &caller, rules).await?;
    let customer = record.stripe_customer_id.ok_or(ApiError::NoSubscription)?;
    if !limits::stripe_call_allowed(store, &user, rules).await? {
        return Err(limits::over_allowance(rules));
    }
    let Some(portal_url) = billing.create_portal_session(&customer, false).await? else {
        // Deleted at Stripe (e.g. in the dashboard): forgotten here too; nothing to manage.
        app.store.unlink_customer(&user, &customer).await?;
        return Err(ApiError::NoSubscription);
    };
    Ok(PortalSession { portal_url })
}
