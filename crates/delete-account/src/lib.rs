//! `DELETE /v1/user/delete-account`: authenticate → read how far an earlier attempt got (the
//! tombstone) → mark the record (from now on every other endpoint answers 410 and no customer
//! can be linked) → close what Stripe holds of the user, if anything can be there (a failure is a
//! 502; run again on every resume, so a customer made meanwhile is closed too) → tombstone →
//! erase every stored item (a failure midway is a 503) → delete the login at the auth service (a
//! failure is a 502) → audit line → `{"deleted": true}`. Each step is recorded as done, so the
//! next call with the same token resumes; after a complete erasure it answers 200 and calls
//! nothing. The order and why: `common::erasure`.

use std::time::Instant;

use common::ApiError;
use common::app::App;
use common::billing::Billing;
use common::config::Rules;
use common::domain::{ErasureStage, UserId};
use common::endpoint::{access_logged, bearer_request, respond};
use common::erasure::{advance, close_stripe, erase_stored};
use common::login::LoginAdmin;
use common::store::Store;
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
    let user = bearer_request(app, req, http::Method::DELETE).await?.user;
    erase(
        app.store.as_ref(),
        app.billing(),
        app.login(),
        &app.config.rules,
        &user,
    )
    .await?;
    Ok(Deleted { deleted: true })
}

/// How far an erasure got, and what it removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The stage an earlier attempt had reached, if this one resumed it.
    pub resumed_from: Option<ErasureStage>,
    /// The stage reached now.
    pub stage: Option<ErasureStage>,
    /// The Stripe customers closed now.
    pub stripe_customers: usize,
    /// The stored items deleted now.
    pub items: usize,
    /// What became of the login at the auth service.
    pub login: &'static str,
}

/// Erases `user`, resuming where an earlier attempt stopped (the flow above, after the
/// token): the endpoint's, and an operator's for a user who cannot sign in
/// (`billing-admin erase`). Writes the audit line. `login` is `None` where logins are kept.
pub async fn erase(
    store: &dyn Store,
    billing: Result<&Billing, ApiError>,
    login: Option<&LoginAdmin>,
    rules: &Rules,
    user: &UserId,
) -> Result<Erasure, ApiError> {
    let started = Instant::now();
    let tombstone = store.tombstone(user).await?;
    let erased_at = tombstone.map_or_else(common::unix_now, |t| t.erased_at);
    let resumed_from = tombstone.map(|t| t.stage);
    let mut stage = resumed_from;
    let (mut stripe_customers, mut items, mut login_outcome) = (0, 0, "not needed");

    if stage < Some(ErasureStage::StoredErased) {
        store.mark_erasing(user, erased_at).await?;
        let profile = store.get_user(user).await?;
        let resumed = stage.is_some();
        let closed = close_stripe(billing, user, profile.as_ref(), resumed).await?;
        stripe_customers = closed.len();
        if !resumed {
            advance(store, user, ErasureStage::StripeClosed, erased_at, rules).await?;
        }
        items = erase_stored(store, user, &closed).await?;
        stage = Some(advance(store, user, ErasureStage::StoredErased, erased_at, rules).await?);
    }
    if stage < Some(ErasureStage::LoginDeleted) {
        login_outcome = "kept: AUTH_USER_DELETION is off";
        if let Some(admin) = login {
            login_outcome = match admin.delete_user(user).await? {
                common::login::LoginDeleted::Now => "deleted",
                common::login::LoginDeleted::AlreadyGone => "already gone",
            };
            stage = Some(advance(store, user, ErasureStage::LoginDeleted, erased_at, rules).await?);
        }
    }

    tracing::info!(
        audit = "erasure",
        user = %user.hash(),
        resumed_from = resumed_from.map_or("start", ErasureStage::as_str),
        stage = stage.map_or("none", ErasureStage::as_str),
        stripe_customers,
        items,
        login = login_outcome,
        duration_ms = started.elapsed().as_millis() as u64,
        "account erased"
    );
    Ok(Erasure {
        resumed_from,
        stage,
        stripe_customers,
        items,
        login: login_outcome,
    })
}
