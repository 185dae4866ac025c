//! The parts of a Stripe event this service reads. The rest of the object is ignored, so new
//! fields in Stripe's API never break parsing.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::{PaidInvoice, UserId};
use crate::error::ApiError;

/// A Stripe event envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// `evt_...`: the unit of exactly-once processing.
    pub id: String,
    /// The event type, e.g. `invoice.paid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The object the event is about.
    pub data: EventData,
}

/// The event's payload.
#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    /// The Stripe object (session, subscription, invoice, ...).
    pub object: Value,
}

impl Event {
    /// Parses a webhook body.
    pub fn parse(payload: &[u8]) -> Result<Event, ApiError> {
        let event: Event = serde_json::from_slice(payload).map_err(|_| ApiError::InvalidPayload)?;
        if event.id.is_empty() || event.id.len() > 255 || !event.data.object.is_object() {
            return Err(ApiError::InvalidPayload);
        }
        Ok(event)
    }

    /// The customer the object belongs to (`customer` as an id or an expanded object), or the
    /// customer the object is (`customer.*` events).
    pub fn customer(&self) -> Option<&str> {
        let object = &self.data.object;
        if object.get("object").and_then(Value::as_str) == Some("customer") {
            return object.get("id")?.as_str().filter(|id| !id.is_empty());
        }
        let customer = object.get("customer")?;
        customer
            .as_str()
            .or_else(|| customer.get("id")?.as_str())
            .filter(|id| !id.is_empty())
    }

    /// The user a Checkout session was opened for: `client_reference_id`, else `metadata.user_id`.
    pub fn user_reference(&self) -> Option<UserId> {
        let object = &self.data.object;
        [
            object.get("client_reference_id"),
            object.get("metadata").and_then(|m| m.get("user_id")),
        ]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(UserId::parse)
    }

    /// The invoice of an `invoice.*` event, if it bills a subscription.
    pub fn subscription_invoice(&self) -> Option<PaidInvoice> {
        let invoice = &self.data.object;
        let subscription = invoice
            .pointer("/parent/subscription_details/subscription")
            .and_then(Value::as_str)
            .or_else(|| invoice.get("subscription").and_then(Value::as_str))
            .filter(|s| !s.is_empty());
        subscription?;
        Some(PaidInvoice {
            id: invoice.get("id")?.as_str()?.to_owned(),
            created: invoice.get("created")?.as_i64()?,
            billing_reason: invoice
                .get("billing_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(object: Value) -> Event {
        Event::parse(
            json!({"id": "evt_1", "type": "x", "data": {"object": object}})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn malformed_bodies_are_invalid_payloads() {
        for body in [
            &b"not json"[..],
            b"{}",
            br#"{"id":"evt_1","type":"x"}"#,
            br#"{"id":"","type":"x","data":{"object":{}}}"#,
            br#"{"id":"evt_1","type":"x","data":{"object":"str"}}"#,
        ] {
            assert_eq!(Event::parse(body).unwrap_err(), ApiError::InvalidPayload);
        }
    }

    #[test]
    fn customer_is_read_as_id_or_expanded_object() {
        assert_eq!(
            event(json!({"customer": "cus_1"})).customer(),
            Some("cus_1")
        );
        assert_eq!(
            event(json!({"customer": {"id": "cus_2"}})).customer(),
            Some("cus_2")
        );
        assert_eq!(event(json!({"customer": null})).customer(), None);
    }

    #[test]
    fn user_reference_prefers_client_reference_id_and_requires_a_uuid() {
        let a = "4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10";
        let b = "0d6f7e9a-1111-4222-8333-444455556666";
        let both = event(json!({"client_reference_id": a, "metadata": {"user_id": b}}));
        assert_eq!(both.user_reference().unwrap().as_str(), a);
        let metadata_only = event(json!({"client_reference_id": null, "metadata": {"user_id": b}}));
        assert_eq!(metadata_only.user_reference().unwrap().as_str(), b);
        assert!(
            event(json!({"client_reference_id": "admin"}))
                .user_reference()
                .is_none()
        );
    }

    #[test]
    fn only_subscription_invoices_count() {
        let new_style = event(
            json!({"id": "in_1", "created": 5, "billing_reason": "subscription_cycle",
                   "parent": {"subscription_details": {"subscription": "sub_1"}}}),
        );
        assert_eq!(
            new_style.subscription_invoice(),
            Some(PaidInvoice {
                id: "in_1".into(),
                created: 5,
                billing_reason: Some("subscription_cycle".into()),
            })
        );
        let legacy = event(json!({"id": "in_2", "created": 6, "subscription": "sub_1"}));
        assert_eq!(legacy.subscription_invoice().unwrap().id, "in_2");
        let one_off =
            event(json!({"id": "in_3", "created": 7, "subscription": null, "parent": null}));
        assert_eq!(one_off.subscription_invoice(), None);
    }
}
