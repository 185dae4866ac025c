//! Stripe's own copy of an event (`GET /v1/events/{id}`; Stripe keeps events 30 days), for an
//! operator who asks whether a webhook arrived, and replays it.

use stripe_core::event::RetrieveEvent;

use super::Billing;
use crate::error::ApiError;

/// An event as Stripe holds it: the parts a delivery of it carries that the webhook reads.
#[derive(Debug, Clone)]
pub struct StripeEvent {
    /// `evt_...`.
    pub id: String,
    /// Its type, e.g. `invoice.paid`.
    pub kind: String,
    /// The object it is about.
    pub object: serde_json::Value,
    /// When Stripe created it, Unix seconds.
    pub created: i64,
    /// Deliveries Stripe has not yet seen answered with a 2xx.
    pub pending_webhooks: i64,
}

impl Billing {
    /// Event `id` as Stripe holds it; `None` if Stripe has none (unknown, or past its 30 days).
    pub async fn event(&self, id: &str) -> Result<Option<StripeEvent>, ApiError> {
        let found = self
            .send_unless_gone("retrieve event", &RetrieveEvent::new(id))
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        let object = miniserde::json::to_string(&found.data.object);
        let object = serde_json::from_str(&object).map_err(|_| ApiError::StripeFailed)?;
        Ok(Some(StripeEvent {
            id: found.id.to_string(),
            kind: found.type_.as_str().to_owned(),
            object,
            created: found.created,
            pending_webhooks: found.pending_webhooks,
        }))
    }
}
