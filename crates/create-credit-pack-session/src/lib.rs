//! `POST /v1/stripe/create-credit-pack-session`: authenticate → the pack asked for
//! (`{"pack": id}`; 400 if it is not sold, before anything is written) → load the record →
//! over the user's Stripe allowance, 429 → ensure the one Stripe customer → create a Checkout
//! session in `payment` mode for the pack's price (replacing a customer deleted at Stripe) →
//! keep it on the record as pending, the only kind of session that can grant a pack (an erasure
//! begun meanwhile: the session is expired, 410) → respond with its URL. Subscribers and free
//! users alike may buy.

use common::ApiError;
use common::app::App;
use common::billing::customers::{ensure_customer, on_live_customer};
use common::endpoint::{access_logged, bearer_request, json_body, respond};
use common::limits;
use common::store::StoreError;
use common::users;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

/// The request body; a field it does not know is refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackRequest {
    /// The id of a pack sold (required).
    pub pack: Option<String>,
}

/// The response body.
#[derive(Debug, Serialize)]
pub struct PackSession {
    /// Where the client sends the user to pay.
    pub checkout_url: String,
}

/// The API Gateway route this function serves.
pub const ROUTE: &str = "POST /v1/stripe/create-credit-pack-session";

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async {
        respond(create_credit_pack_session(app, &req).await)
    })
    .await
}

async fn create_credit_pack_session(app: &App, req: &Request) -> Result<PackSession, ApiError> {
    let caller = bearer_request(app, req, http::Method::POST).await?;
    let user = caller.user.clone();
    let billing = app.billing()?;
    let asked: PackRequest = json_body(req)?;
    let pack = asked.pack.ok_or(ApiError::InvalidBody)?;
    let pack = billing
        .config
        .packs
        .to_sell(&pack)
        .map_err(|_| ApiError::UnknownPack)?;
    let store = app.store.as_ref();
    let rules = &app.config.rules;
    let record = users::load_or_create(store, &caller, rules).await?;
    if !limits::stripe_call_allowed(store, &user, rules).await? {
        return Err(limits::over_allowance(rules));
    }
    let customer = ensure_customer(billing, store, &record).await?;
    let user_ref = &user;
    let (pending, checkout_url) =
        on_live_customer(billing, store, &user, customer, |customer| async move {
            billing.create_pack_session(user_ref, &customer, pack).await
        })
        .await?;
    if let Err(err) = store.add_pending_pack(&user, &pending).await {
        // Never leave a payable session that could not grant: expire it first.
        billing.expire_checkout_session(&pending.session_id).await?;
        return Err(match err {
            StoreError::Erasing | StoreError::NoRecord => ApiError::AccountDeleted,
            err => err.into(),
        });
    }
    tracing::info!(user = %user.hash(), pack = %pack.id, "pack checkout session opened");
    Ok(PackSession { checkout_url })
}
