//! `GET /v1/user/export`: authenticate → 410 once the erasure removed everything → read the
//! caller's partition page by page, within the request's time and the document's size
//! (`common::export::MAX_EXPORT_ITEMS`; beyond either, 503 `EXPORT_TOO_LARGE`, never a cut-off
//! document) → one JSON document of everything this service holds about the caller, as a
//! download. Nothing is created or changed: an account never seen gets a document without a
//! profile.

use common::ApiError;
use common::App;
use common::endpoint::{access_logged, bearer_request, respond, time_budget};
use common::export::{self, UserExport};
use lambda_http::{Body, Request, Response};

/// The API Gateway route this function serves.
pub const ROUTE: &str = "GET /v1/user/export";

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async {
        let exported = user_export(app, &req).await;
        let day = exported
            .as_ref()
            .ok()
            .map(|e| e.exported_at[..10].to_owned());
        let mut response = respond(exported);
        if let Some(day) = day {
            let disposition = format!("attachment; filename=\"chuk-chat-billing-{day}.json\"");
            if let Ok(value) = http::HeaderValue::from_str(&disposition) {
                let headers = response.headers_mut();
                headers.insert(http::header::CONTENT_DISPOSITION, value);
            }
        }
        response
    })
    .await
}

async fn user_export(app: &App, req: &Request) -> Result<UserExport, ApiError> {
    let caller = bearer_request(app, req, http::Method::GET).await?;
    let store = app.store.as_ref();
    let export = export::export(store, &caller.user, &app.config.rules, time_budget(req)).await?;
    tracing::info!(
        audit = "export",
        user = %caller.user.hash(),
        entries = export.ledger.len(),
        "data exported"
    );
    Ok(export)
}

#[cfg(test)]
mod tests;
