//! Charges and the money that goes back on them, as Stripe keeps it: each successful payment (a
//! paid invoice, a pack's PaymentIntent) has one charge; refunds add up on it (`amount_refunded`
//! is cumulative, `charge.refunded` carries the previous values), a refund beyond what is left
//! or of a disputed charge is refused; a dispute withdraws the funds (`charge.dispute.created`)
//! and closes won or lost (`charge.dispute.closed`, and `charge.dispute.funds_reinstated` when
//! won). A charge has at most one dispute.

use serde_json::{Value, json};

use super::{Stripe, new_id};
use crate::objects::{self, param};

/// Stripe's largest list page.
const MAX_PAGE: usize = 100;

impl Stripe {
    /// Makes the charge of a successful payment of `amount` by PaymentIntent `intent` of
    /// `customer` (once per PaymentIntent): returns its id.
    pub(super) fn charge_payment(&mut self, intent: &str, customer: &Value, amount: i64) -> String {
        if let Some(id) = self.charge_of_intent(intent) {
            return id;
        }
        let id = new_id("ch");
        let mut charge = crate::fixtures::fixture("charge");
        for (field, value) in [
            ("id", json!(id)),
            ("amount", json!(amount)),
            ("amount_captured", json!(amount)),
            ("amount_refunded", json!(0)),
            ("refunded", json!(false)),
            ("disputed", json!(false)),
            ("captured", json!(true)),
            ("paid", json!(true)),
            ("status", json!("succeeded")),
            ("payment_intent", json!(intent)),
            ("customer", customer.clone()),
            ("created", json!(self.now_of(customer))),
        ] {
            charge[field] = value;
        }
        charge["refunds"]["url"] = json!(format!("/v1/charges/{id}/refunds"));
        self.charges.insert(0, charge);
        id
    }

    /// The charge of PaymentIntent `intent`, if it was charged.
    fn charge_of_intent(&self, intent: &str) -> Option<String> {
        let charge = self.charges.iter().find(|c| c["payment_intent"] == intent);
        charge.and_then(|c| c["id"].as_str()).map(str::to_owned)
    }

    fn charge_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.charges.iter_mut().find(|c| c["id"] == id)
    }

    /// `GET /v1/charges/{id}`.
    pub(super) fn retrieve_charge(&self, id: &str) -> (u16, Value) {
        match self.charges.iter().find(|c| c["id"] == id) {
            Some(charge) => (200, charge.clone()),
            None => (404, objects::no_such("charge", id, "id")),
        }
    }

    /// `GET /v1/charges`, newest first, filtered by `customer`, `payment_intent` and
    /// `created[gte]`, in pages.
    pub(super) fn list_charges(&self, params: &[(String, String)]) -> Value {
        let since = param(params, "created[gte]").and_then(|at| at.parse::<i64>().ok());
        let matching: Vec<Value> = self
            .charges
            .iter()
            .filter(|charge| {
                param(params, "customer").is_none_or(|id| charge["customer"] == id)
                    && param(params, "payment_intent")
                        .is_none_or(|id| charge["payment_intent"] == id)
                    && since.is_none_or(|since| charge["created"].as_i64() >= Some(since))
            })
            .cloned()
            .collect();
        objects::page_of(&matching, params, MAX_PAGE, "/v1/charges")
    }

    /// `POST /v1/refunds` of a `charge` or a `payment_intent`, of `amount` or of all that is
    /// left: refused with 400 `charge_already_refunded` once nothing is left, `amount_too_large`
    /// beyond what is left, `charge_disputed` while disputed, and `resource_missing` for a
    /// payment never charged.
    pub(super) fn create_refund(&mut self, params: &[(String, String)]) -> (u16, Value) {
        let refusal = |code, message: &str| {
            let error = objects::error("invalid_request_error", Some(code), None, message);
            (400, error)
        };
        let charge_id = match (param(params, "charge"), param(params, "payment_intent")) {
            (Some(charge), _) => Some(charge.to_owned()),
            (None, Some(intent)) => self.charge_of_intent(intent),
            (None, None) => {
                let message = "Must provide either `payment_intent` or `charge`.";
                return refusal("parameter_missing", message);
            }
        };
        let Some(charge) = charge_id.as_deref().and_then(|id| self.charge_mut(id)) else {
            return refusal("resource_missing", "No such charge or payment_intent.");
        };
        let (amount, refunded) = (
            charge["amount"].as_i64(),
            charge["amount_refunded"].as_i64(),
        );
        let left = amount.unwrap_or(0) - refunded.unwrap_or(0);
        let asked = param(params, "amount").and_then(|a| a.parse::<i64>().ok());
        let asked = asked.unwrap_or(left);
        let id = charge["id"].clone();
        if charge["disputed"] == true {
            return refusal(
                "charge_disputed",
                &format!("Charge {id} has been charged back."),
            );
        }
        if left <= 0 {
            let message = format!("Charge {id} has already been refunded.");
            return refusal("charge_already_refunded", &message);
        }
        if asked <= 0 || asked > left {
            let message = format!(
                "Refund amount ({asked}) is greater than unrefunded amount on charge ({left})."
            );
            return refusal("amount_too_large", &message);
        }
        let previous =
            json!({"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]});
        charge["amount_refunded"] = json!(refunded.unwrap_or(0) + asked);
        charge["refunded"] = json!(asked == left);
        let charged = charge.clone();
        let intent = charged["payment_intent"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut refund = crate::fixtures::fixture("refund");
        refund["id"] = json!(new_id("re"));
        refund["charge"] = charged["id"].clone();
        refund["payment_intent"] = json!(intent);
        refund["amount"] = json!(asked);
        refund["currency"] = charged["currency"].clone();
        refund["status"] = json!("succeeded");
        refund["created"] = json!(self.now_of(&charged["customer"]));
        self.refunds.entry(intent).or_insert_with(|| refund.clone());
        self.emit("refund.created", refund.clone());
        self.emit("charge.refunded", charged);
        if let Some(event) = self.outbox.last_mut() {
            event["data"]["previous_attributes"] = previous;
        }
        (200, refund)
    }

    /// Refunds `amount` of charge `id` (all that is left: `None`), as `POST /v1/refunds` does.
    pub fn refund_charge(&mut self, id: &str, amount: Option<i64>) -> Result<Value, String> {
        let mut params = vec![("charge".to_owned(), id.to_owned())];
        params.extend(amount.map(|amount| ("amount".to_owned(), amount.to_string())));
        match self.create_refund(&params) {
            (200, refund) => Ok(refund),
            (_, error) => Err(error["error"]["message"]
                .as_str()
                .unwrap_or("refused")
                .to_owned()),
        }
    }

    /// Refunds half of what is left of charge `id` (at least 1), as the dashboard's "Refund
    /// half" does.
    pub fn refund_half(&mut self, id: &str) -> Result<Value, String> {
        let charge = self.charges.iter().find(|c| c["id"] == id);
        let left = charge.map_or(0, |c| {
            c["amount"].as_i64().unwrap_or(0) - c["amount_refunded"].as_i64().unwrap_or(0)
        });
        self.refund_charge(id, Some((left / 2).max(1)))
    }

    /// The cardholder disputes charge `id`: its funds are withdrawn and a dispute opens
    /// (`needs_response`). Returns the dispute's id; `None` for an unknown or disputed charge.
    pub fn dispute_charge(&mut self, id: &str) -> Option<String> {
        let customer = self.charges.iter().find(|c| c["id"] == id);
        let now = self.now_of(&customer.map(|c| c["customer"].clone()).unwrap_or_default());
        let charge = self
            .charge_mut(id)
            .filter(|charge| charge["disputed"] != true)?;
        charge["disputed"] = json!(true);
        let charge = charge.clone();
        let dispute_id = new_id("du");
        let mut dispute = crate::fixtures::fixture("dispute");
        for (field, value) in [
            ("id", json!(dispute_id)),
            ("amount", charge["amount"].clone()),
            ("currency", charge["currency"].clone()),
            ("charge", charge["id"].clone()),
            ("payment_intent", charge["payment_intent"].clone()),
            ("status", json!("needs_response")),
            ("reason", json!("fraudulent")),
            ("created", json!(now)),
        ] {
            dispute[field] = value;
        }
        self.disputes.insert(0, dispute.clone());
        self.emit("charge.dispute.created", dispute.clone());
        self.emit("charge.dispute.funds_withdrawn", dispute);
        Some(dispute_id)
    }

    /// Closes dispute `id`, `won` or lost (`charge.dispute.closed`; won, the funds come back:
    /// `charge.dispute.funds_reinstated`). Returns whether it was open.
    pub fn close_dispute(&mut self, id: &str, won: bool) -> bool {
        let Some(dispute) = self.disputes.iter_mut().find(|d| d["id"] == id) else {
            return false;
        };
        if !matches!(
            dispute["status"].as_str(),
            Some("needs_response" | "under_review")
        ) {
            return false;
        }
        dispute["status"] = json!(if won { "won" } else { "lost" });
        let closed = dispute.clone();
        self.emit("charge.dispute.closed", closed.clone());
        if won {
            self.emit("charge.dispute.funds_reinstated", closed);
        }
        true
    }

    /// `GET /v1/disputes`, newest first, filtered by `charge` and `payment_intent`.
    pub(super) fn list_disputes(&self, params: &[(String, String)]) -> Value {
        let matching: Vec<Value> = self
            .disputes
            .iter()
            .filter(|dispute| {
                param(params, "charge").is_none_or(|id| dispute["charge"] == id)
                    && param(params, "payment_intent")
                        .is_none_or(|id| dispute["payment_intent"] == id)
            })
            .cloned()
            .collect();
        objects::page_of(&matching, params, MAX_PAGE, "/v1/disputes")
    }

    /// The charges, newest first, with their dispute if any: what the dashboard lists.
    pub fn payments(&self) -> Vec<(Value, Option<Value>)> {
        self.charges
            .iter()
            .map(|charge| {
                let dispute = self.disputes.iter().find(|d| d["charge"] == charge["id"]);
                (charge.clone(), dispute.cloned())
            })
            .collect()
    }
}
