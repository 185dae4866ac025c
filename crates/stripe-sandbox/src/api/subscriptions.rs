//! Subscriptions with their invoices, and the payments of those invoices.

use serde_json::{Value, json};

use super::{Stripe, new_id};
use crate::objects::{self, collapsed, param};

/// Stripe's largest list page.
const MAX_PAGE: usize = 100;

impl Stripe {
    /// `GET /v1/invoice_payments?invoice=in_X`: the sandbox holds every invoice it is asked about
    /// as paid in full by one payment intent of its own, `pi_for_in_X` (since API version
    /// 2025-03-31 an invoice names no payment itself).
    /// Filtered by `invoice`, or by `payment[payment_intent]` (the invoice it paid, if any).
    pub(super) fn invoice_payments(&self, params: &[(String, String)]) -> Value {
        let by_intent = param(params, "payment[payment_intent]").map(|intent| {
            let invoice = intent.strip_prefix("pi_for_").unwrap_or_default();
            match self.invoices.iter().any(|i| i["id"] == invoice) {
                true => invoice,
                false => "",
            }
        });
        let invoice = by_intent.or(param(params, "invoice")).unwrap_or_default();
        let mut payment = crate::fixtures::fixture("invoice_payment");
        payment["id"] = json!(format!("inpay_for_{invoice}"));
        payment["invoice"] = json!(invoice);
        payment["status"] = json!("paid");
        let amount = self.invoice_amounts.get(invoice).copied();
        let amount = amount.unwrap_or(self.plans[0].unit_amount);
        payment["amount_paid"] = json!(amount);
        payment["amount_requested"] = json!(amount);
        payment["payment"] = json!({"type": "payment_intent",
            "payment_intent": objects::payment_intent_of(invoice)});
        let data = if invoice.is_empty() {
            vec![]
        } else {
            vec![payment]
        };
        json!({"object": "list", "data": data, "has_more": false, "url": "/v1/invoice_payments"})
    }

    /// `GET /v1/invoices`, newest first, filtered by `subscription`, `customer` and `status`
    /// (`draft`, `open`, `paid`, `uncollectible`, `void`), in pages.
    pub(super) fn list_invoices(&self, params: &[(String, String)]) -> Value {
        let wanted = |name| param(params, name);
        let matching: Vec<Value> = self
            .invoices
            .iter()
            .filter(|invoice| {
                let sub = &invoice["parent"]["subscription_details"]["subscription"];
                wanted("subscription").is_none_or(|id| sub == id)
                    && wanted("customer").is_none_or(|id| invoice["customer"] == id)
                    && wanted("status").is_none_or(|status| invoice["status"] == status)
            })
            .cloned()
            .collect();
        objects::page_of(&matching, params, MAX_PAGE, "/v1/invoices")
    }

    /// Keeps `invoice` as issued (replacing an earlier state of it: a draft finalised and
    /// paid), listed newest first by creation.
    /// A paid invoice's payment is charged (once): `pi_for_<invoice>`.
    pub fn record_invoice(&mut self, invoice: Value) {
        let amount = |field: &str| invoice[field].as_i64().unwrap_or(0);
        let paid = amount("amount_paid").max(amount("amount_due"));
        if invoice["status"] == "paid" && paid > 0 {
            let id = invoice["id"].as_str().unwrap_or_default();
            let intent = objects::payment_intent_of(id);
            self.invoice_amounts.entry(id.to_owned()).or_insert(paid);
            let paid = self.invoice_amounts[id];
            self.charge_payment(&intent, &invoice["customer"], paid);
        }
        self.invoices.retain(|kept| kept["id"] != invoice["id"]);
        let at = self
            .invoices
            .iter()
            .position(|kept| kept["created"].as_i64() < invoice["created"].as_i64())
            .unwrap_or(self.invoices.len());
        self.invoices.insert(at, invoice);
    }

    /// The refund of payment intent `intent`, if one was made.
    pub fn refund_of(&self, intent: &str) -> Option<&Value> {
        self.refunds.get(intent)
    }

    /// `status` defaults to every status but `canceled`, as at Stripe; `all` lists every one.
    pub(super) fn list_subscriptions(&self, params: &[(String, String)]) -> Value {
        let customer = param(params, "customer");
        let status = param(params, "status");
        let matching: Vec<Value> = self
            .subscriptions
            .iter()
            .filter(|s| customer.is_none_or(|c| s["customer"] == c))
            .filter(|s| match status {
                Some("all") => true,
                Some(wanted) => s["status"] == wanted,
                None => s["status"] != "canceled",
            })
            .cloned()
            .collect();
        let page = objects::page_of(&matching, params, MAX_PAGE, "/v1/subscriptions");
        objects::expanded(page, params)
    }

    pub(super) fn subscription(&self, id: &str) -> Option<&Value> {
        self.subscriptions.iter().find(|s| s["id"] == id)
    }

    pub(super) fn subscription_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.subscriptions.iter_mut().find(|s| s["id"] == id)
    }

    /// A canceled subscription is gone for this call: Stripe answers 404 `resource_missing`.
    pub(super) fn cancel_subscription(&mut self, id: &str) -> (u16, Value) {
        match self.subscription(id) {
            Some(sub) if sub["status"] != "canceled" => {}
            _ => return (404, objects::no_such("subscription", id, "id")),
        }
        let ended = self.end_subscription(id);
        (200, collapsed(&ended))
    }

    /// Ends subscription `id` now and emits `customer.subscription.deleted`.
    pub(super) fn end_subscription(&mut self, id: &str) -> Value {
        let customer = self.subscriptions.iter().find(|s| s["id"] == id);
        let now = self.now_of(&customer.map(|s| s["customer"].clone()).unwrap_or_default());
        let Some(sub) = self.subscription_mut(id) else {
            return Value::Null;
        };
        sub["status"] = json!("canceled");
        sub["canceled_at"] = json!(now);
        sub["ended_at"] = json!(now);
        let ended = sub.clone();
        self.emit("customer.subscription.deleted", collapsed(&ended));
        ended
    }

    /// A paid invoice of a period of `sub` on its plan, created at `created`, for `reason`.
    pub(super) fn paid_invoice(&mut self, sub: &Value, created: i64, reason: &str) -> Value {
        let plan = self.plan_of_subscription(sub);
        let lines = [(plan.unit_amount, plan.price_id.as_str())];
        let period = [created, created + plan.period_secs];
        self.invoice_of(sub, created, reason, &lines, period)
    }

    /// A paid invoice of `sub` with `lines` (amount, price) over `period` (start, end), created
    /// at `created`, kept as issued. A total below zero (a downgrade's proration) is paid with
    /// nothing: Stripe credits it to the customer's balance.
    fn invoice_of(
        &mut self,
        sub: &Value,
        created: i64,
        reason: &str,
        lines: &[(i64, &str)],
        period: [i64; 2],
    ) -> Value {
        let sub_id = sub["id"].as_str().unwrap_or_default();
        let mut invoice = objects::paid_invoice(&new_id("in"), sub_id, created, reason);
        let currency = self.plan_of_subscription(sub).currency;
        invoice = objects::with_lines(invoice, lines, &currency);
        invoice = objects::over(invoice, period);
        invoice["customer"] = sub["customer"].clone();
        invoice["currency"] = json!(currency);
        let total: i64 = lines.iter().map(|(amount, _)| amount).sum();
        for field in ["subtotal", "total"] {
            invoice[field] = json!(total);
        }
        for field in ["amount_due", "amount_paid"] {
            invoice[field] = json!(total.max(0));
        }
        invoice["amount_remaining"] = json!(0);
        invoice["parent"]["subscription_details"]["metadata"] = sub["metadata"].clone();
        let id = invoice["id"].as_str().unwrap_or_default().to_owned();
        self.invoice_amounts.insert(id, total.max(0));
        self.record_invoice(invoice.clone());
        invoice
    }

    /// Moves subscription `id` to `price` now, prorations invoiced at once: a paid
    /// `subscription_update` invoice crediting the old plan's unused time and charging the new
    /// plan's remaining time, then `customer.subscription.updated` and `invoice.paid`. Returns
    /// whether anything changed (not for the price it is on, or an ended subscription).
    pub fn switch_plan(&mut self, id: &str, price: &str) -> bool {
        let Some(sub) = self.subscription(id).cloned() else {
            return false;
        };
        let (Some(new), old) = (
            self.plan_of(price).cloned(),
            self.plan_of_subscription(&sub),
        ) else {
            return false;
        };
        if sub["status"] == "canceled" || old.price_id == new.price_id {
            return false;
        }
        let now = self.now_of(&sub["customer"]);
        let item = &sub["items"]["data"][0];
        let end = item["current_period_end"].as_i64().unwrap_or(now);
        let left = (end - now).clamp(0, old.period_secs);
        let share = |amount: i64| amount * left / old.period_secs.max(1);
        let lines = [
            (-share(old.unit_amount), old.price_id.as_str()),
            (share(new.unit_amount), new.price_id.as_str()),
        ];
        let invoice = self.invoice_of(&sub, now, "subscription_update", &lines, [now, end]);
        let updated = self.subscription_mut(id).expect("found above");
        updated["items"]["data"][0]["price"] = objects::price_of(&new.price_id, new.unit_amount);
        updated["latest_invoice"] = invoice.clone();
        let updated = collapsed(updated);
        let previous =
            json!({"items": sub["items"], "latest_invoice": sub["latest_invoice"]["id"]});
        self.emit_updated(updated, previous);
        self.emit("invoice.paid", invoice);
        true
    }
}
