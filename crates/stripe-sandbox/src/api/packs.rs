//! The one-time payment of a pack Checkout session: by card at once, or by a delayed bank
//! debit that succeeds or fails later, with its PaymentIntent and the events Stripe sends.

use serde_json::{Value, json};

use super::{Checkout, Pack, Refusal, Stripe, new_id};

/// How a pack session is paid in the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PackPaymentMethod {
    /// At once.
    Card,
    /// Days later, or never (a bank debit).
    BankDebit,
}

impl Stripe {
    /// Pays pack Checkout session `id` (payment mode, checked open) by card, at once: returns
    /// the success URL.
    pub(super) fn pay_pack_by_card(&mut self, id: &str) -> String {
        self.pay_once(id, PackPaymentMethod::Card)
    }

    /// Pays pack Checkout session `id` (payment mode, checked open) with `method`: its
    /// PaymentIntent is made, and the session completes (`checkout.session.completed`), paid
    /// at once by card, or unpaid while a delayed method processes
    /// ([`Stripe::settle_delayed_payment`] ends it). Returns the success URL.
    fn pay_once(&mut self, id: &str, method: PackPaymentMethod) -> String {
        let now = self.now_of(&self.checkouts[id].session["customer"]);
        let checkout = self.checkouts.get_mut(id).expect("checked open");
        let intent_id = new_id("pi");
        let mut intent = crate::fixtures::fixture("payment_intent");
        let session = &mut checkout.session;
        for (field, value) in [
            ("id", json!(intent_id)),
            ("amount", session["amount_total"].clone()),
            ("amount_received", json!(0)),
            ("currency", session["currency"].clone()),
            ("customer", session["customer"].clone()),
            ("metadata", checkout.intent_metadata.clone()),
            ("created", json!(now)),
            ("latest_charge", Value::Null),
            ("status", json!("processing")),
            (
                "payment_method_types",
                match method {
                    PackPaymentMethod::Card => json!(["card"]),
                    PackPaymentMethod::BankDebit => json!(["sepa_debit"]),
                },
            ),
        ] {
            intent[field] = value;
        }
        session["status"] = json!("complete");
        session["payment_intent"] = json!(intent_id);
        let completed = session.clone();
        self.payment_intents.insert(intent_id, intent);
        self.emit("checkout.session.completed", completed.clone());
        if method == PackPaymentMethod::Card {
            self.settle_delayed_payment(id, true);
        }
        completed["success_url"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Ends the processing payment of pack session `id`: succeeded (`payment_status: paid`,
    /// `checkout.session.async_payment_succeeded` for a delayed method) or failed (the
    /// PaymentIntent back to `requires_payment_method`, `checkout.session.async_payment_failed`).
    /// A session not processing a payment changes nothing.
    pub fn settle_delayed_payment(&mut self, id: &str, succeeded: bool) -> bool {
        let Some(checkout) = self.checkouts.get_mut(id) else {
            return false;
        };
        let session = &mut checkout.session;
        let intent_id = session["payment_intent"].as_str().unwrap_or_default();
        let Some(intent) = self.payment_intents.get_mut(intent_id) else {
            return false;
        };
        if session["payment_status"] != "unpaid" || intent["status"] != "processing" {
            return false;
        }
        let delayed = intent["payment_method_types"] != json!(["card"]) && succeeded;
        match succeeded {
            true => {
                intent["status"] = json!("succeeded");
                intent["amount_received"] = intent["amount"].clone();
                session["payment_status"] = json!("paid");
            }
            false => intent["status"] = json!("requires_payment_method"),
        }
        let session = session.clone();
        if succeeded {
            let intent = intent.clone();
            let amount = intent["amount"].as_i64().unwrap_or(0);
            let charge = self.charge_payment(intent_id_of(&intent), &intent["customer"], amount);
            if let Some(paid) = self.payment_intents.get_mut(intent_id_of(&intent)) {
                paid["latest_charge"] = json!(charge);
            }
        }
        match (succeeded, delayed) {
            (true, false) => {}
            (true, true) => self.emit("checkout.session.async_payment_succeeded", session),
            (false, _) => self.emit("checkout.session.async_payment_failed", session),
        }
        true
    }

    /// Starts paying pack Checkout session `id` with a delayed method (a bank debit): the
    /// session completes unpaid until [`Stripe::settle_delayed_payment`].
    pub fn pay_later(&mut self, id: &str) -> Result<(), Refusal> {
        let session = self.checkout(id)?;
        if session["mode"] != "payment" {
            return Err(Refusal::Conflict(
                "Only a one-time payment can be delayed.".into(),
            ));
        }
        self.pay_once(id, PackPaymentMethod::BankDebit);
        Ok(())
    }

    /// The pack Checkout session `id` sells, if it is a pack's.
    pub fn checkout_pack(&self, id: &str) -> Option<&Pack> {
        self.pack_of(&self.checkouts.get(id)?.price)
    }

    /// The pack sessions whose delayed payment is still processing, oldest first.
    pub fn processing_payments(&self) -> Vec<String> {
        let processing = |c: &&Checkout| {
            let intent = c.session["payment_intent"].as_str();
            let intent = intent.and_then(|i| self.payment_intents.get(i));
            c.session["payment_status"] == "unpaid"
                && intent.is_some_and(|i| i["status"] == "processing")
        };
        let mut found: Vec<&Checkout> = self.checkouts.values().filter(processing).collect();
        found.sort_by_key(|c| c.session["created"].as_i64());
        found
            .iter()
            .filter_map(|c| c.session["id"].as_str().map(str::to_owned))
            .collect()
    }
}

/// The id of PaymentIntent `intent`.
fn intent_id_of(intent: &Value) -> &str {
    intent["id"].as_str().unwrap_or_default()
}
