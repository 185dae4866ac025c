//! The sandbox over HTTP: Stripe's API under `/v1/`, the Checkout and portal pages, the
//! deliveries log. After every change, the events it emitted are delivered: in the background
//! for API calls, before the next page for page actions (so the page that follows shows their
//! effect; retries still run in the background).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::{any, get, post};

use crate::api::{Call, PortalAction, Refusal, Stripe};
use crate::pages;
use crate::webhooks::Webhooks;

/// What every request sees.
pub(crate) struct Shared {
    pub(crate) stripe: Mutex<Stripe>,
    pub(crate) webhooks: Webhooks,
    pub(crate) webhook_url: String,
}

type AppState = State<Arc<Shared>>;

/// The sandbox's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/{*rest}", any(api))
        .route("/checkout/{id}", get(checkout_page))
        .route("/checkout/{id}/pay", post(pay))
        .route("/checkout/{id}/pay-later", post(pay_later))
        .route("/checkout/{id}/cancel", post(cancel_checkout))
        .route("/payments/{id}/{outcome}", post(settle_payment))
        .route("/charges/{id}/{action}", post(charge_action))
        .route("/disputes/{id}/{outcome}", post(dispute_action))
        .route("/portal/{id}", get(portal_page))
        .route("/portal/{id}/{action}", post(portal_action))
        .route(
            "/done/{what}",
            get(|Path(what): Path<String>| async move { Html(pages::returned(&what)) }),
        )
        .route("/", get(deliveries_page))
        .route("/deliveries.json", get(deliveries_json))
        .with_state(shared)
}

/// One Stripe API call: answered by [`Stripe::answer`], after the time it executes.
async fn api(
    State(shared): AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let source = if method == Method::POST {
        &body[..]
    } else {
        uri.query().unwrap_or("").as_bytes()
    };
    let call = Call {
        method: method.to_string(),
        path: uri.path().to_owned(),
        params: form_urlencoded::parse(source).into_owned().collect(),
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
    };
    let answer = shared.stripe.lock().unwrap().answer(&call, Instant::now());
    // As at Stripe, the events of an API call are delivered apart from its answer.
    tokio::spawn(async move { deliver_emitted(&shared).await });
    tokio::time::sleep(answer.delay).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer.body)).into_response()
}

/// Delivers what the last change emitted (first attempts now, retries later).
async fn deliver_emitted(shared: &Shared) {
    let events = shared.stripe.lock().unwrap().take_events();
    if !events.is_empty() {
        shared.webhooks.deliver(events).await;
    }
}

fn refused(refusal: Refusal) -> Response {
    let (status, message) = match refusal {
        Refusal::NotFound(message) => (StatusCode::NOT_FOUND, message),
        Refusal::Conflict(message) => (StatusCode::CONFLICT, message),
    };
    (status, Html(pages::refused(&message))).into_response()
}

async fn checkout_page(State(shared): AppState, Path(id): Path<String>) -> Response {
    let stripe = shared.stripe.lock().unwrap();
    match (stripe.checkout(&id), stripe.checkout_pack(&id)) {
        (Ok(session), Some(pack)) => Html(pages::checkout_pack(&session, pack)).into_response(),
        (Ok(session), None) => {
            Html(pages::checkout(&session, stripe.checkout_plan(&id))).into_response()
        }
        (Err(refusal), _) => refused(refusal),
    }
}

/// Pay by bank debit: the session completes unpaid, its event delivered, then the success URL.
async fn pay_later(State(shared): AppState, Path(id): Path<String>) -> Response {
    let started = shared.stripe.lock().unwrap().pay_later(&id);
    match started {
        Ok(()) => {
            deliver_emitted(&shared).await;
            let session = shared.stripe.lock().unwrap().checkout_success_url(&id);
            Redirect::to(&session.unwrap_or_else(|| "/".to_owned())).into_response()
        }
        Err(refusal) => refused(refusal),
    }
}

/// A processing bank debit succeeds or fails, its event delivered, then the deliveries page.
async fn settle_payment(
    State(shared): AppState,
    Path((id, outcome)): Path<(String, String)>,
) -> Response {
    let succeeded = match outcome.as_str() {
        "succeed" => true,
        "fail" => false,
        other => return refused(Refusal::NotFound(format!("No such outcome: {other}"))),
    };
    if !shared
        .stripe
        .lock()
        .unwrap()
        .settle_delayed_payment(&id, succeeded)
    {
        return refused(Refusal::Conflict(
            "No payment of this session is processing.".into(),
        ));
    }
    deliver_emitted(&shared).await;
    Redirect::to("/").into_response()
}

/// Pay: the subscription and its invoice, their events delivered, then the success URL.
async fn pay(State(shared): AppState, Path(id): Path<String>) -> Response {
    let paid = shared.stripe.lock().unwrap().pay(&id);
    match paid {
        Ok(success_url) => {
            deliver_emitted(&shared).await;
            Redirect::to(&success_url).into_response()
        }
        Err(refusal) => refused(refusal),
    }
}

async fn cancel_checkout(State(shared): AppState, Path(id): Path<String>) -> Response {
    let canceled = shared.stripe.lock().unwrap().cancel_checkout(&id);
    match canceled {
        Ok(Some(cancel_url)) => Redirect::to(&cancel_url).into_response(),
        Ok(None) => Html(pages::returned("checkout-canceled")).into_response(),
        Err(refusal) => refused(refusal),
    }
}

async fn portal_page(State(shared): AppState, Path(id): Path<String>) -> Response {
    let stripe = shared.stripe.lock().unwrap();
    match stripe.portal(&id) {
        Ok((session, sub)) => {
            let now = stripe.now_of(&session["customer"]);
            let page = pages::portal(&session, sub.as_ref(), stripe.plans(), now);
            Html(page).into_response()
        }
        Err(refusal) => refused(refusal),
    }
}

/// A portal action, its events delivered, then the portal page again.
async fn portal_action(
    State(shared): AppState,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let action = match action.as_str() {
        "cancel-at-period-end" => PortalAction::CancelAtPeriodEnd,
        "cancel-now" => PortalAction::CancelNow,
        "renew" => PortalAction::Renew,
        switch if let Some(Ok(index)) = switch.strip_prefix("switch-").map(str::parse) => {
            PortalAction::SwitchTo(index)
        }
        other => return refused(Refusal::NotFound(format!("No such portal action: {other}"))),
    };
    let done = shared.stripe.lock().unwrap().portal_action(&id, action);
    match done {
        Ok(()) => {
            deliver_emitted(&shared).await;
            Redirect::to(&format!("/portal/{id}")).into_response()
        }
        Err(refusal) => refused(refusal),
    }
}

async fn deliveries_page(State(shared): AppState) -> Html<String> {
    let (processing, payments) = {
        let stripe = shared.stripe.lock().unwrap();
        (stripe.processing_payments(), stripe.payments())
    };
    Html(pages::deliveries(
        &shared.webhooks.log(),
        &shared.webhook_url,
        &processing,
        &payments,
    ))
}

/// The dashboard's money back on a charge: refunded (half of what is left, or all) or
/// disputed, its events delivered, then the deliveries page.
async fn charge_action(
    State(shared): AppState,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let done = {
        let mut stripe = shared.stripe.lock().unwrap();
        match action.as_str() {
            "refund" => stripe.refund_charge(&id, None).map(drop),
            "refund-half" => stripe.refund_half(&id).map(drop),
            "dispute" => stripe
                .dispute_charge(&id)
                .map(drop)
                .ok_or_else(|| "This charge cannot be disputed.".to_owned()),
            other => return refused(Refusal::NotFound(format!("No such action: {other}"))),
        }
    };
    if let Err(message) = done {
        return refused(Refusal::Conflict(message));
    }
    deliver_emitted(&shared).await;
    Redirect::to("/").into_response()
}

/// An open dispute closes `won` or `lost`, its events delivered, then the deliveries page.
async fn dispute_action(
    State(shared): AppState,
    Path((id, outcome)): Path<(String, String)>,
) -> Response {
    let won = match outcome.as_str() {
        "won" => true,
        "lost" => false,
        other => return refused(Refusal::NotFound(format!("No such outcome: {other}"))),
    };
    if !shared.stripe.lock().unwrap().close_dispute(&id, won) {
        return refused(Refusal::Conflict("No such open dispute.".into()));
    }
    deliver_emitted(&shared).await;
    Redirect::to("/").into_response()
}

async fn deliveries_json(State(shared): AppState) -> Response {
    Json(shared.webhooks.log()).into_response()
}
