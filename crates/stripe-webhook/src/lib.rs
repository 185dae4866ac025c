//! `POST /webhooks/stripe` (no bearer token): verify the signature on the raw body → parse the
//! event → claim its id (exactly-once) → re-read Stripe through the shared sync and grant paid
//! periods → record the outcome → `{"received": true}`.
//!
//! Every state change re-reads Stripe, so events arriving late, twice or out of order cannot
//! corrupt the record. Unknown customers and erased users are acknowledged and change nothing.

use common::ApiError;
use common::app::App;
use common::billing::Billing;
use common::credits;
use common::domain::{EventClaim, EventOutcome};
use common::endpoint::{access_logged, require_route, respond};
use common::metrics::{self, Metric};
use common::sync::sync_customer;
use common::webhook::event::Event;
use common::webhook::{MAX_WEBHOOK_BYTES, signature};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// The acknowledgement Stripe expects.
#[derive(Debug, Serialize)]
pub struct Received {
    /// Always true.
    pub received: bool,
}

/// The API Gateway route this function serves.
pub const ROUTE: &str = "POST /webhooks/stripe";

/// Handles one delivery.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async { respond(receive(app, &req).await) }).await
}

async fn receive(app: &App, req: &Request) -> Result<Received, ApiError> {
    require_route(req, http::Method::POST)?;
    let billing = app.billing()?;
    let secret = billing
        .config
        .webhook_secret
        .as_deref()
        .ok_or(ApiError::BillingNotConfigured)?;
    let payload: &[u8] = req.body().as_ref();
    if payload.len() > MAX_WEBHOOK_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let header = req.headers().get("stripe-signature").map(|v| v.as_bytes());
    signature::verify(header, payload, secret, common::unix_now()).map_err(|err| {
        tracing::warn!(reason = %err, "webhook signature refused");
        ApiError::InvalidSignature
    })?;
    let event = Event::parse(payload)?;

    let store = app.store.as_ref();
    match store.begin_event(&event.id, common::unix_now()).await? {
        EventClaim::AlreadyDone => {
            tracing::info!(event = %event.id, kind = %event.kind, "duplicate event; already processed");
            metrics::count_event(Metric::WebhookEventsDuplicate, &event.kind);
            return Ok(Received { received: true });
        }
        EventClaim::InProgress => return Err(ApiError::EventInProgress),
        EventClaim::Claimed => {}
    }
    let outcome = process(app, billing, &event).await;
    let (finished, metric) = match outcome {
        Ok(()) => (EventOutcome::Done, Metric::WebhookEventsDone),
        Err(_) => (EventOutcome::Failed, Metric::WebhookEventsFailed),
    };
    metrics::count_event(metric, &event.kind);
    store
        .finish_event(&event.id, finished, common::unix_now())
        .await?;
    outcome?;
    tracing::info!(event = %event.id, kind = %event.kind, "event processed");
    Ok(Received { received: true })
}

async fn process(app: &App, billing: &Billing, event: &Event) -> Result<(), ApiError> {
    let store = app.store.as_ref();
    let Some(customer) = event.customer() else {
        tracing::debug!(kind = %event.kind, "event without a customer; ignored");
        return Ok(());
    };
    match event.kind.as_str() {
        "checkout.session.completed" => {
            // Link the customer if checkout was the first we heard of it, then sync.
            if store.user_for_customer(customer).await?.is_none()
                && let Some(user) = event.user_reference()
                && store.get_user(&user).await?.is_some()
            {
                store.link_customer(&user, customer).await?;
            }
            sync_customer(billing, store, customer).await?;
        }
        "customer.deleted" => {
            // Deleted at Stripe (e.g. in the dashboard): forget it, with its subscription.
            if let Some(user) = store.user_for_customer(customer).await? {
                store.unlink_customer(&user, customer).await?;
            }
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "invoice.payment_failed" => {
            sync_customer(billing, store, customer).await?;
        }
        "invoice.paid" => {
            let Some(record) = sync_customer(billing, store, customer).await? else {
                return Ok(());
            };
            if let Some(invoice) = event.subscription_invoice() {
                let credits = billing.config.plan_credits;
                credits::grant_for_invoice(store, &record.user_id, &invoice, credits).await?;
            }
        }
        other => tracing::debug!(kind = other, "event type not handled; ignored"),
    }
    Ok(())
}
