//! Checkout sessions: created, expired, read, and paid or canceled from their pages (a pack's
//! one-time payment is in `packs`).

use serde_json::{Value, json};

use super::{Checkout, Plan, Refusal, Stripe, metadata, new_id};
use crate::objects::{self, collapsed, param};

/// Longest a Checkout session stays payable (Stripe's default, and its maximum).
const SESSION_LIFETIME_SECS: i64 = 24 * 3600;
/// Shortest `expires_at` Stripe accepts, from the session's creation.
const SESSION_MIN_LIFETIME_SECS: i64 = 30 * 60;

impl Stripe {
    pub(super) fn create_checkout(&mut self, params: &[(String, String)]) -> (u16, Value) {
        let customer = match self.live_customer(params) {
            Ok(customer) => customer,
            Err(refusal) => return refusal,
        };
        let price = param(params, "line_items[0][price]").unwrap_or_default();
        let mode = param(params, "mode").unwrap_or_default().to_owned();
        let sold = match mode.as_str() {
            "subscription" => self
                .plan_of(price)
                .map(|p| (p.unit_amount, p.currency.clone())),
            "payment" => self
                .pack_of(price)
                .map(|p| (p.unit_amount, p.currency.clone())),
            _ => {
                let message = "Invalid mode: must be one of payment, setup, or subscription.";
                let body = objects::error("invalid_request_error", None, Some("mode"), message);
                return (400, body);
            }
        };
        let Some((amount, currency)) = sold else {
            // A recurring price in payment mode, a one-time one in subscription mode, or none.
            let wrong_mode = match mode.as_str() {
                "payment" => self.plan_of(price).is_some(),
                _ => self.pack_of(price).is_some(),
            };
            if wrong_mode {
                let message = match mode.as_str() {
                    "payment" => {
                        "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices."
                    }
                    _ => {
                        "You must provide at least one recurring price in `subscription` mode when using prices."
                    }
                };
                let body =
                    objects::error("invalid_request_error", None, Some("line_items"), message);
                return (400, body);
            }
            return (
                400,
                objects::no_such("price", price, "line_items[0][price]"),
            );
        };
        let Some(success_url) = param(params, "success_url") else {
            let message = "Missing required param: success_url.";
            let body = objects::error(
                "invalid_request_error",
                Some("parameter_missing"),
                Some("success_url"),
                message,
            );
            return (400, body);
        };
        let now = self.now_of(&json!(param(params, "customer")));
        let expires_at = match param(params, "expires_at").map(str::parse::<i64>) {
            None => now + SESSION_LIFETIME_SECS,
            Some(Ok(at))
                if (now + SESSION_MIN_LIFETIME_SECS..=now + SESSION_LIFETIME_SECS)
                    .contains(&at) =>
            {
                at
            }
            Some(_) => {
                let message = "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.";
                let body =
                    objects::error("invalid_request_error", None, Some("expires_at"), message);
                return (400, body);
            }
        };
        let id = format!("cs_test_{}", uuid::Uuid::new_v4().simple());
        let mut session = crate::fixtures::fixture("checkout.session");
        for (field, value) in [
            ("id", json!(id)),
            ("url", json!(format!("{}/checkout/{id}", self.pages_base))),
            ("mode", json!(mode)),
            ("customer", json!(customer)),
            (
                "client_reference_id",
                json!(param(params, "client_reference_id")),
            ),
            ("metadata", metadata(params, "metadata")),
            ("success_url", json!(success_url)),
            ("cancel_url", json!(param(params, "cancel_url"))),
            ("status", json!("open")),
            ("payment_status", json!("unpaid")),
            ("created", json!(now)),
            ("expires_at", json!(expires_at)),
            ("amount_subtotal", json!(amount)),
            ("amount_total", json!(amount)),
            ("currency", json!(currency)),
            ("subscription", Value::Null),
            ("invoice", Value::Null),
            // Since API version 2022-08-01 the PaymentIntent is made when the payment is.
            ("payment_intent", Value::Null),
        ] {
            session[field] = value;
        }
        let subscription_metadata = metadata(params, "subscription_data[metadata]");
        let checkout = Checkout {
            session: session.clone(),
            subscription_metadata,
            intent_metadata: metadata(params, "payment_intent_data[metadata]"),
            price: price.to_owned(),
        };
        self.checkouts.insert(id, checkout);
        (200, session)
    }

    /// Only an open session can be expired (Stripe answers 400 for a paid or expired one).
    pub(super) fn expire_checkout(&mut self, id: &str) -> (u16, Value) {
        let customer = self
            .checkouts
            .get(id)
            .map(|c| c.session["customer"].clone());
        let now = self.now_of(&customer.unwrap_or_default());
        let Some(checkout) = self.checkouts.get_mut(id) else {
            return (404, objects::no_such("checkout.session", id, "session"));
        };
        let session = &mut checkout.session;
        let lapsed = session["expires_at"].as_i64().unwrap_or(0) <= now;
        if session["status"] != "open" || lapsed {
            let message = "Only Checkout Sessions with a status in [\"open\"] can be expired.";
            return (
                400,
                objects::error("invalid_request_error", None, None, message),
            );
        }
        session["status"] = json!("expired");
        session["expires_at"] = json!(now);
        session["url"] = Value::Null;
        let expired = session.clone();
        self.emit("checkout.session.expired", expired.clone());
        (200, expired)
    }

    /// How many Checkout sessions of `customer` can still be paid.
    pub fn payable_checkouts_of(&self, customer: &str) -> usize {
        self.checkouts
            .values()
            .filter(|c| c.session["customer"] == customer)
            .filter_map(|c| c.session["id"].as_str())
            .filter(|id| self.checkout_status(id).as_deref() == Some("open"))
            .count()
    }

    /// The status of Checkout session `id` (`open`, `complete` or `expired`), if it exists.
    pub fn checkout_status(&self, id: &str) -> Option<String> {
        let session = &self.checkouts.get(id)?.session;
        let lapsed =
            session["expires_at"].as_i64().unwrap_or(0) <= self.now_of(&session["customer"]);
        match session["status"].as_str() {
            Some("open") if lapsed => Some("expired".to_owned()),
            other => other.map(str::to_owned),
        }
    }

    /// The open Checkout session `id`, with its plan, for its page.
    pub fn checkout(&self, id: &str) -> Result<Value, Refusal> {
        let checkout = self
            .checkouts
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("No such Checkout session: {id}")))?;
        let session = &checkout.session;
        if session["status"] == "complete" {
            return Err(Refusal::Conflict(
                "This Checkout session is already paid.".into(),
            ));
        }
        if session["expires_at"].as_i64().unwrap_or(0) <= self.now_of(&session["customer"]) {
            return Err(Refusal::Conflict(
                "This Checkout session has expired.".into(),
            ));
        }
        Ok(session.clone())
    }

    /// Pays Checkout session `id`: creates the subscription and its paid first invoice, emits
    /// `checkout.session.completed`, `customer.subscription.created` and `invoice.paid`
    /// (`subscription_create`). Returns the success URL. Paying a paid, expired or unknown
    /// session changes nothing.
    pub fn pay(&mut self, id: &str) -> Result<String, Refusal> {
        let session = self.checkout(id)?;
        let customer = session["customer"].as_str().unwrap_or_default().to_owned();
        if self
            .customers
            .get(&customer)
            .is_none_or(objects::is_deleted)
        {
            return Err(Refusal::Conflict(
                "This session's customer was deleted.".into(),
            ));
        }
        if session["mode"] == "payment" {
            return Ok(self.pay_pack_by_card(id));
        }
        let now = self.now_of(&session["customer"]);
        let sub_id = new_id("sub");
        let plan = self.checkout_plan(id).clone();
        let mut sub = objects::subscription(
            &sub_id,
            &customer,
            &plan.price_id,
            "active",
            now,
            now + plan.period_secs,
        );
        sub["metadata"] = self.checkouts[id].subscription_metadata.clone();
        sub["currency"] = json!(plan.currency);
        let invoice = self.paid_invoice(&sub, now, "subscription_create");
        sub["latest_invoice"] = invoice.clone();
        let checkout = self.checkouts.get_mut(id).expect("checked above");
        let session = &mut checkout.session;
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["subscription"] = json!(sub_id);
        session["invoice"] = invoice["id"].clone();
        let session = session.clone();
        self.subscriptions.insert(0, sub.clone());
        self.emit("checkout.session.completed", session.clone());
        self.emit("customer.subscription.created", collapsed(&sub));
        self.emit("invoice.paid", invoice);
        Ok(session["success_url"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// `GET /v1/checkout/sessions/{id}`, its PaymentIntent expanded when asked
    /// (`expand[]=payment_intent`); 404 `resource_missing` for an unknown one.
    pub(super) fn retrieve_checkout(&self, id: &str, params: &[(String, String)]) -> (u16, Value) {
        let Some(checkout) = self.checkouts.get(id) else {
            return (404, objects::no_such("checkout.session", id, "session"));
        };
        let mut session = checkout.session.clone();
        if let Some("expired") = self.checkout_status(id).as_deref() {
            session["status"] = json!("expired");
            session["url"] = Value::Null;
        }
        let expand = objects::asks_to_expand(params, "payment_intent");
        let intent = session["payment_intent"]
            .as_str()
            .and_then(|i| self.payment_intents.get(i));
        if let (true, Some(intent)) = (expand, intent) {
            session["payment_intent"] = intent.clone();
        }
        (200, session)
    }

    /// Where Checkout session `id` leads once paid.
    pub fn checkout_success_url(&self, id: &str) -> Option<String> {
        let session = &self.checkouts.get(id)?.session;
        session["success_url"].as_str().map(str::to_owned)
    }

    /// The plan Checkout session `id` sells (the first, for an unknown session).
    pub fn checkout_plan(&self, id: &str) -> &Plan {
        let price = self.checkouts.get(id).map(|c| c.price.as_str());
        let plan = price.and_then(|price| self.plan_of(price));
        plan.unwrap_or(&self.plans[0])
    }

    /// Where Cancel on Checkout session `id` leads: its cancel URL (the session stays open).
    pub fn cancel_checkout(&self, id: &str) -> Result<Option<String>, Refusal> {
        let session = self.checkout(id)?;
        Ok(session["cancel_url"].as_str().map(str::to_owned))
    }
}
