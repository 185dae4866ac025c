//! The API Gateway routes, served locally: each path goes to its Lambda's handler.

use common::App;
use common::endpoint::error_response;
use lambda_http::{Body, Request, Response};

/// Dispatches by path, as API Gateway does; each handler checks its own method (405).
pub async fn route(app: &App, req: Request) -> Response<Body> {
    match req.uri().path() {
        "/v1/user/status" => user_status::handle(app, req).await,
        "/v1/user/delete-account" => delete_account::handle(app, req).await,
        "/v1/stripe/create-checkout-session" => create_checkout_session::handle(app, req).await,
        "/v1/stripe/create-portal-session" => create_portal_session::handle(app, req).await,
        "/v1/stripe/sync-subscription" => sync_subscription::handle(app, req).await,
        "/webhooks/stripe" => stripe_webhook::handle(app, req).await,
        _ => error_response(&common::ApiError::NotFound),
    }
}
