//! `POST /webhooks/stripe` (no bearer token): verify the signature on the raw body → parse the
//! event → claim its id (exactly-once) → re-read Stripe through the shared sync, which grants
//! paid periods from the invoices it reads → record the outcome → `{"received": true}`.
//!
//! A refund or a dispute (`charge.refunded`, `charge.dispute.*`) re-reads its charge and takes
//! back what the purchase it paid for owes (`common::clawbacks`).
//!
//! Only the event's type and customer (or charge) id are read: every state change, and every grant, comes
//! from Stripe re-read, so events arriving late, twice, out of order or forged with a leaked
//! secret cannot corrupt the record, and no event links a customer to a user (only this
//! service's own checkout does). A customer linked to no one is closed if Stripe says it was
//! made for a user who is being or was erased; otherwise it is acknowledged and changes nothing.

use common::ApiError;
use common::app::App;
use common::billing::Billing;
use common::clawbacks::{self, CHARGE_EVENTS};
use common::domain::{EventClaim, EventOutcome};
use common::endpoint::{access_logged, require_route, respond};
use common::erasure;
use common::metrics::{self, Metric};
use common::store::Store;
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
    let outcome = process(store, billing, &event).await;
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

/// The event types that re-sync the customer (the others are acknowledged and ignored).
const SYNCED: [&str; 9] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "customer.created",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
];

/// What an event changes, re-read from Stripe: the webhook's own processing, also what an
/// operator's replay (`billing-admin event --replay`) runs. Idempotent: every change it makes
/// is once per cause, so processing an event again changes nothing more.
pub async fn process(store: &dyn Store, billing: &Billing, event: &Event) -> Result<(), ApiError> {
    if CHARGE_EVENTS.contains(&event.kind.as_str()) {
        // A refund or a dispute: the charge re-read decides what is taken back, if anything.
        return match event.charge() {
            Some(charge) => clawbacks::settle_charge_event(billing, store, charge).await,
            None => Ok(()),
        };
    }
    let Some(customer) = event.customer() else {
        tracing::debug!(kind = %event.kind, "event without a customer; ignored");
        return Ok(());
    };
    if event.kind == "customer.deleted" {
        // Deleted at Stripe (e.g. in the dashboard): forget it, with its subscription.
        if let Some(user) = store.user_for_customer(customer).await? {
            store.unlink_customer(&user, customer).await?;
        }
        return Ok(());
    }
    if !SYNCED.contains(&event.kind.as_str()) {
        tracing::debug!(kind = %event.kind, "event type not handled; ignored");
        return Ok(());
    }
    let Some(record) = sync_customer(billing, store, customer).await? else {
        // Linked to no one: perhaps made for a user whose erasure was under way.
        erasure::close_if_erased(billing, store, customer).await?;
        return Ok(());
    };
    if event.kind == "invoice.paid" && record.subscription_status.may_become_entitled() {
        // Paid, but Stripe has not activated the subscription yet: the sync that finds it
        // active grants the period; fail, so that Stripe's redelivery brings that sync.
        tracing::warn!(user = %record.user_id.hash(), "invoice paid before its subscription is active; redelivery expected");
        return Err(ApiError::SubscriptionNotActive);
    }
    Ok(())
}
