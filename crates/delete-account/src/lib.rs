//! `DELETE /v1/user/delete-account`: authenticate → load the record → close the Stripe customer
//! (cancel subscriptions, delete customer; a failure is a 502 with nothing of ours touched) →
//! erase every stored item behind a tombstone (a failure midway is a 503; a retry finishes) →
//! audit log line → `{"deleted": true}`. Repeating it after success answers 200 again.

use std::time::Instant;

use common::ApiError;
use common::app::App;
use common::erasure::{close_stripe_customer, erase_stored};
use common::http::{access_logged, bearer_request, respond};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// The response body.
#[derive(Debug, Serialize)]
pub struct Deleted {
    /// Always true.
    pub deleted: bool,
}

/// The API Gateway route this function serves.
pub const ROUTE: &str = "DELETE /v1/user/delete-account";

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async {
        respond(delete_account(app, &req).await)
    })
    .await
}

async fn delete_account(app: &App, req: &Request) -> Result<Deleted, ApiError> {
    let user = bearer_request(app, req, http::Method::DELETE).await?;
    let started = Instant::now();
    let store = app.store.as_ref();
    let customer = store
        .get_user(&user)
        .await?
        .and_then(|record| record.stripe_customer_id);
    if let Some(customer) = &customer {
        close_stripe_customer(app.billing()?, customer).await?;
    }
    let items = erase_stored(store, &user, customer.as_deref(), &app.config.rules).await?;
    tracing::info!(
        audit = "erasure",
        user = %user.hash(),
        items,
        stripe_customer = customer.is_some(),
        duration_ms = started.elapsed().as_millis() as u64,
        "account erased"
    );
    Ok(Deleted { deleted: true })
}
