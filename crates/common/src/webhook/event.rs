//! The parts of a Stripe event this service reads. The rest of the object is ignored, so new
//! fields in Stripe's API never break parsing.

use serde::Deserialize;
use serde_json::Value;

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

    /// The charge the event is about: a charge's own id, or the `charge` a dispute or refund
    /// names (an id, or an expanded object).
    pub fn charge(&self) -> Option<&str> {
        self.id_of("charge")
    }

    /// The customer the object belongs to (`customer` as an id or an expanded object), or the
    /// customer the object is (`customer.*` events).
    pub fn customer(&self) -> Option<&str> {
        self.id_of("customer")
    }

    /// The id of the `resource` the event is about: the object's own, if it is one, else its
    /// field of that name (an id, or an expanded object); never empty.
    fn id_of(&self, resource: &str) -> Option<&str> {
        let object = &self.data.object;
        let named = match object.get("object").and_then(Value::as_str) == Some(resource) {
            true => object.get("id")?,
            false => {
                let field = object.get(resource)?;
                field.get("id").unwrap_or(field)
            }
        };
        named.as_str().filter(|id| !id.is_empty())
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
}
