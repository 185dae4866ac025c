//! `GET /v1/user/status`: authenticate → load (or create on first sight) → respond with the six
//! status fields. A storage failure is a 503, never a made-up zero balance.

use common::ApiError;
use common::App;
use common::endpoint::{access_logged, bearer_request, respond};
use common::users::{self, UserStatus};
use lambda_http::{Body, Request, Response};

/// The API Gateway route this function serves.
pub const ROUTE: &str = "GET /v1/user/status";

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async { respond(status(app, &req).await) }).await
}

async fn status(app: &App, req: &Request) -> Result<UserStatus, ApiError> {
    let caller = bearer_request(app, req, http::Method::GET).await?;
    let record = users::load_or_create(app.store.as_ref(), &caller, &app.config.rules).await?;
    Ok(UserStatus::from(&record))
}

#[cfg(test)]
mod tests;
