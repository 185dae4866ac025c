//! `GET /v1/user/credits`: authenticate → the page asked for (`limit`, `cursor`) → load (or
//! create on first sight) → one page of the ledger, newest first, with the balances.

use common::ApiError;
use common::App;
use common::endpoint::{access_logged, bearer_request, respond};
use common::history::{self, CreditHistory, PageRequest};
use lambda_http::{Body, Request, Response};

/// The API Gateway route this function serves.
pub const ROUTE: &str = "GET /v1/user/credits";

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async { respond(credits(app, &req).await) }).await
}

async fn credits(app: &App, req: &Request) -> Result<CreditHistory, ApiError> {
    let caller = bearer_request(app, req, http::Method::GET).await?;
    let page = PageRequest::parse(req.uri().query(), &caller.user)?;
    history::credit_history(app.store.as_ref(), &caller, &app.config.rules, &page).await
}

#[cfg(test)]
mod tests;
