//! The part of Stripe's API this service calls, with state: customers (created under
//! idempotency keys, searched by metadata, deleted as Stripe deletes them), Checkout and portal
//! sessions, subscriptions with their invoices, and the events each change emits. Requests and
//! answers are plain values, so the sandbox's HTTP server and the test suite's stub serve the
//! same behaviour.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::idempotency::{Keys, Seen};
use crate::objects::{self, collapsed, param};
use crate::unix_now;

/// Longest a Checkout session stays payable (Stripe's default, and its maximum).
const SESSION_LIFETIME_SECS: i64 = 24 * 3600;
/// Shortest `expires_at` Stripe accepts, from the session's creation.
const SESSION_MIN_LIFETIME_SECS: i64 = 30 * 60;
/// Stripe's largest list page.
const MAX_PAGE: usize = 100;

/// The one plan the sandbox sells.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The price id checkout sessions must name (`STRIPE_PRICE_ID`).
    pub price_id: String,
    /// The product's name, shown on the checkout page.
    pub name: String,
    /// The price per period, in the currency's smallest unit.
    pub unit_amount: i64,
    /// ISO currency code, lower case.
    pub currency: String,
    /// One billing period, in seconds (the sandbox's month is 30 days).
    pub period_secs: i64,
    /// The credits a paid period grants, shown on the checkout page (`PLAN_CREDITS`).
    pub credits: i64,
}

/// One API request.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// `GET`, `POST` or `DELETE`.
    pub method: String,
    /// The path, e.g. `/v1/customers`.
    pub path: String,
    /// The form body (POST) or query (GET, DELETE) as pairs.
    pub params: Vec<(String, String)>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

/// The answer to a [`Call`].
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
    /// How long the request executes before its answer is sent (requests under an
    /// idempotency key: a twin sent meanwhile gets a 409).
    pub delay: Duration,
}

/// Why a page action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such session (404).
    NotFound(String),
    /// The session cannot do this any more: paid, expired, nothing to manage (409).
    Conflict(String),
}

/// What the portal page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalAction {
    /// Cancel when the current period ends (`customer.subscription.updated`).
    CancelAtPeriodEnd,
    /// Cancel at once (`customer.subscription.deleted`).
    CancelNow,
    /// Advance the clock one period: a new paid invoice (`subscription_cycle`), or the end of
    /// a subscription set to cancel at period end.
    Renew,
}

/// A Checkout session and what the subscription it creates will carry.
struct Checkout {
    session: Value,
    subscription_metadata: Value,
}

/// The sandbox's Stripe account.
pub struct Stripe {
    plan: Plan,
    pages_base: String,
    execution_time: Duration,
    clock_offset: i64,
    customers: BTreeMap<String, Value>,
    checkouts: BTreeMap<String, Checkout>,
    portals: BTreeMap<String, Value>,
    /// Newest first, as Stripe lists them; each with its latest invoice inline.
    subscriptions: Vec<Value>,
    keys: Keys,
    outbox: Vec<Value>,
    /// Refunds by the payment intent they refund (each in full).
    refunds: BTreeMap<String, Value>,
    /// Every customer made with a `metadata.user_id`, by that user id (deleted ones included).
    made_for: BTreeMap<String, Vec<String>>,
}

impl Stripe {
    /// An empty account selling `plan`, whose Checkout and portal pages live under
    /// `pages_base`, where each request under an idempotency key executes for `execution_time`.
    pub fn new(plan: Plan, pages_base: &str, execution_time: Duration) -> Self {
        Stripe {
            plan,
            pages_base: pages_base.trim_end_matches('/').to_owned(),
            execution_time,
            clock_offset: 0,
            customers: BTreeMap::new(),
            checkouts: BTreeMap::new(),
            portals: BTreeMap::new(),
            subscriptions: Vec::new(),
            keys: Keys::default(),
            outbox: Vec::new(),
            refunds: BTreeMap::new(),
            made_for: BTreeMap::new(),
        }
    }

    /// The plan sold.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The account's clock (Unix seconds): the real time, advanced by each renewal.
    pub fn now(&self) -> i64 {
        unix_now() + self.clock_offset
    }

    /// Answers one API request received at `now`.
    pub fn answer(&mut self, call: &Call, now: Instant) -> Answer {
        let immediate = |(status, body)| Answer {
            status,
            body,
            delay: Duration::ZERO,
        };
        if !call
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|key| key.starts_with("sk_test_"))
        {
            let message = "Invalid API Key provided: the sandbox takes any test-mode secret key (sk_test_...).";
            return immediate((
                401,
                objects::error("invalid_request_error", None, None, message),
            ));
        }
        let key = call
            .idempotency_key
            .as_deref()
            .filter(|_| call.method == "POST");
        let Some(key) = key else {
            return immediate(self.execute(call));
        };
        let request = format!("{} {} {:?}", call.method, call.path, call.params);
        match self.keys.begin(key, &request, now) {
            Seen::Answer(status, body) => immediate((status, body)),
            Seen::New => {
                let answer = self.execute(call);
                let run = self.execution_time;
                self.keys.finish(key, &request, answer.clone(), now, run);
                Answer {
                    status: answer.0,
                    body: answer.1,
                    delay: run,
                }
            }
        }
    }

    fn execute(&mut self, call: &Call) -> (u16, Value) {
        let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
        let p = &call.params;
        match (call.method.as_str(), segments.as_slice()) {
            ("POST", ["v1", "customers"]) => {
                self.create_customer(p, call.idempotency_key.as_deref())
            }
            ("GET", ["v1", "customers", "search"]) => self.search_customers(p),
            ("GET", ["v1", "customers", id]) => match self.customers.get(*id) {
                Some(customer) => (200, customer.clone()),
                None => (404, objects::no_such("customer", id, "id")),
            },
            ("DELETE", ["v1", "customers", id]) => self.delete_customer(id),
            ("POST", ["v1", "checkout", "sessions"]) => self.create_checkout(p),
            ("POST", ["v1", "checkout", "sessions", id, "expire"]) => self.expire_checkout(id),
            ("POST", ["v1", "billing_portal", "sessions"]) => self.create_portal(p),
            ("GET", ["v1", "subscriptions"]) => (200, self.list_subscriptions(p)),
            ("GET", ["v1", "subscriptions", id]) => match self.subscription(id) {
                Some(sub) => (
                    200,
                    objects::expanded(json!({"data": [sub.clone()]}), p)["data"][0].clone(),
                ),
                None => (404, objects::no_such("subscription", id, "id")),
            },
            ("DELETE", ["v1", "subscriptions", id]) => self.cancel_subscription(id),
            ("GET", ["v1", "invoice_payments"]) => (200, self.invoice_payments(p)),
            ("POST", ["v1", "refunds"]) => self.create_refund(p),
            _ => {
                let message = format!("Unrecognized request URL ({}: {}).", call.method, call.path);
                (
                    404,
                    objects::error("invalid_request_error", None, None, &message),
                )
            }
        }
    }

    fn create_customer(&mut self, params: &[(String, String)], key: Option<&str>) -> (u16, Value) {
        let id = key.map_or_else(|| new_id("cus"), objects::customer_for_key);
        let customer = objects::customer(&id, metadata(params, "metadata"), self.now());
        self.remember_owner(&id, &customer["metadata"]);
        self.customers.insert(id, customer.clone());
        self.emit("customer.created", customer.clone());
        (200, customer)
    }

    fn remember_owner(&mut self, id: &str, metadata: &Value) {
        if let Some(user) = metadata["user_id"].as_str() {
            let made = self.made_for.entry(user.to_owned()).or_default();
            if !made.iter().any(|known| known == id) {
                made.push(id.to_owned());
            }
        }
    }

    /// Every customer ever made with `metadata.user_id` = `user`, deleted ones included.
    pub fn customers_made_for(&self, user: &str) -> Vec<String> {
        self.made_for.get(user).cloned().unwrap_or_default()
    }

    /// Only the query this service sends: `metadata['KEY']:'VALUE'`.
    fn search_customers(&self, params: &[(String, String)]) -> (u16, Value) {
        let query = param(params, "query").unwrap_or_default();
        let parsed = query
            .strip_prefix("metadata['")
            .and_then(|rest| rest.split_once("']:'"))
            .and_then(|(name, value)| Some((name, value.strip_suffix('\'')?)));
        let Some((name, value)) = parsed else {
            let message =
                format!("The sandbox searches customers by one metadata value only, not: {query}");
            return (
                400,
                objects::error("invalid_request_error", None, Some("query"), &message),
            );
        };
        let found: Vec<Value> = self
            .customers
            .values()
            .filter(|c| !objects::is_deleted(c) && c["metadata"][name] == value)
            .cloned()
            .collect();
        let page = json!({"object": "search_result", "url": "/v1/customers/search",
            "has_more": false, "next_page": null, "data": found});
        (200, page)
    }

    /// Stripe deletes the customer and cancels its subscriptions at once.
    fn delete_customer(&mut self, id: &str) -> (u16, Value) {
        match self.customers.get(id) {
            Some(customer) if !objects::is_deleted(customer) => {}
            _ => return (404, objects::no_such("customer", id, "id")),
        }
        let live: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|s| s["customer"] == id && s["status"] != "canceled")
            .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        for sub in live {
            self.end_subscription(&sub);
        }
        let deleted = objects::deleted_customer(id);
        let last = self.customers.insert(id.to_owned(), deleted.clone());
        self.emit("customer.deleted", last.unwrap_or_default());
        (200, deleted)
    }

    fn live_customer(&self, params: &[(String, String)]) -> Result<String, (u16, Value)> {
        let id = param(params, "customer").unwrap_or_default();
        match self.customers.get(id) {
            Some(customer) if !objects::is_deleted(customer) => Ok(id.to_owned()),
            _ => Err((400, objects::no_such("customer", id, "customer"))),
        }
    }

    fn create_checkout(&mut self, params: &[(String, String)]) -> (u16, Value) {
        let customer = match self.live_customer(params) {
            Ok(customer) => customer,
            Err(refusal) => return refusal,
        };
        if param(params, "mode") != Some("subscription") {
            let message = "The sandbox sells subscriptions only: mode must be `subscription`.";
            return (
                400,
                objects::error("invalid_request_error", None, Some("mode"), message),
            );
        }
        let price = param(params, "line_items[0][price]").unwrap_or_default();
        if price != self.plan.price_id {
            return (
                400,
                objects::no_such("price", price, "line_items[0][price]"),
            );
        }
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
        let now = self.now();
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
            ("mode", json!("subscription")),
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
            ("amount_subtotal", json!(self.plan.unit_amount)),
            ("amount_total", json!(self.plan.unit_amount)),
            ("currency", json!(self.plan.currency)),
            ("subscription", Value::Null),
            ("invoice", Value::Null),
        ] {
            session[field] = value;
        }
        let subscription_metadata = metadata(params, "subscription_data[metadata]");
        let checkout = Checkout {
            session: session.clone(),
            subscription_metadata,
        };
        self.checkouts.insert(id, checkout);
        (200, session)
    }

    /// Only an open session can be expired (Stripe answers 400 for a paid or expired one).
    fn expire_checkout(&mut self, id: &str) -> (u16, Value) {
        let now = self.now();
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

    /// `GET /v1/invoice_payments?invoice=in_X`: the sandbox holds every invoice it is asked about
    /// as paid in full by one payment intent of its own, `pi_for_in_X` (since API version
    /// 2025-03-31 an invoice names no payment itself).
    fn invoice_payments(&self, params: &[(String, String)]) -> Value {
        let invoice = param(params, "invoice").unwrap_or_default();
        let mut payment = crate::fixtures::fixture("invoice_payment");
        payment["id"] = json!(format!("inpay_for_{invoice}"));
        payment["invoice"] = json!(invoice);
        payment["status"] = json!("paid");
        payment["amount_paid"] = json!(self.plan.unit_amount);
        payment["amount_requested"] = json!(self.plan.unit_amount);
        payment["payment"] = json!({"type": "payment_intent",
            "payment_intent": objects::payment_intent_of(invoice)});
        let data = if invoice.is_empty() {
            vec![]
        } else {
            vec![payment]
        };
        json!({"object": "list", "data": data, "has_more": false, "url": "/v1/invoice_payments"})
    }

    /// `POST /v1/refunds` of a payment intent, in full; a second refund of it is refused with
    /// 400 `charge_already_refunded`, as Stripe refuses it.
    fn create_refund(&mut self, params: &[(String, String)]) -> (u16, Value) {
        let Some(intent) = param(params, "payment_intent").map(str::to_owned) else {
            let message = "Must provide either `payment_intent` or `charge`.";
            return (
                400,
                objects::error(
                    "invalid_request_error",
                    Some("parameter_missing"),
                    None,
                    message,
                ),
            );
        };
        if self.refunds.contains_key(&intent) {
            let message = format!("Charge for payment intent {intent} has already been refunded.");
            return (
                400,
                objects::error(
                    "invalid_request_error",
                    Some("charge_already_refunded"),
                    None,
                    &message,
                ),
            );
        }
        let mut refund = crate::fixtures::fixture("refund");
        refund["id"] = json!(new_id("re"));
        refund["payment_intent"] = json!(intent);
        refund["amount"] = json!(self.plan.unit_amount);
        refund["status"] = json!("succeeded");
        refund["created"] = json!(self.now());
        self.refunds.insert(intent, refund.clone());
        (200, refund)
    }

    /// The refund of payment intent `intent`, if one was made.
    pub fn refund_of(&self, intent: &str) -> Option<&Value> {
        self.refunds.get(intent)
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
        let lapsed = session["expires_at"].as_i64().unwrap_or(0) <= self.now();
        match session["status"].as_str() {
            Some("open") if lapsed => Some("expired".to_owned()),
            other => other.map(str::to_owned),
        }
    }

    fn create_portal(&mut self, params: &[(String, String)]) -> (u16, Value) {
        let customer = match self.live_customer(params) {
            Ok(customer) => customer,
            Err(refusal) => return refusal,
        };
        let id = format!("bps_{}", uuid::Uuid::new_v4().simple());
        let mut session = crate::fixtures::fixture("billing_portal.session");
        session["id"] = json!(id);
        session["url"] = json!(format!("{}/portal/{id}", self.pages_base));
        session["customer"] = json!(customer);
        session["return_url"] = json!(param(params, "return_url"));
        session["created"] = json!(self.now());
        session["livemode"] = json!(false);
        session["flow"] = match param(params, "flow_data[type]") {
            Some(flow) => json!({"type": flow, "after_completion": {"type": "portal_homepage"}}),
            None => Value::Null,
        };
        self.portals.insert(id, session.clone());
        (200, session)
    }

    /// `status` defaults to every status but `canceled`, as at Stripe; `all` lists every one.
    fn list_subscriptions(&self, params: &[(String, String)]) -> Value {
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

    fn subscription(&self, id: &str) -> Option<&Value> {
        self.subscriptions.iter().find(|s| s["id"] == id)
    }

    fn subscription_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.subscriptions.iter_mut().find(|s| s["id"] == id)
    }

    /// A canceled subscription is gone for this call: Stripe answers 404 `resource_missing`.
    fn cancel_subscription(&mut self, id: &str) -> (u16, Value) {
        match self.subscription(id) {
            Some(sub) if sub["status"] != "canceled" => {}
            _ => return (404, objects::no_such("subscription", id, "id")),
        }
        let ended = self.end_subscription(id);
        (200, collapsed(&ended))
    }

    /// Ends subscription `id` now and emits `customer.subscription.deleted`.
    fn end_subscription(&mut self, id: &str) -> Value {
        let now = self.now();
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
        if session["expires_at"].as_i64().unwrap_or(0) <= self.now() {
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
        let now = self.now();
        let sub_id = new_id("sub");
        let plan = self.plan.clone();
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

    /// Where Cancel on Checkout session `id` leads: its cancel URL (the session stays open).
    pub fn cancel_checkout(&self, id: &str) -> Result<Option<String>, Refusal> {
        let session = self.checkout(id)?;
        Ok(session["cancel_url"].as_str().map(str::to_owned))
    }

    /// Portal session `id`, with the subscription it manages (if any), for its page.
    pub fn portal(&self, id: &str) -> Result<(Value, Option<Value>), Refusal> {
        let session = self
            .portals
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("No such portal session: {id}")))?;
        let customer = &session["customer"];
        let managed = self
            .subscriptions
            .iter()
            .find(|s| &s["customer"] == customer && s["status"] != "canceled")
            .cloned();
        Ok((session.clone(), managed))
    }

    /// Carries out `action` on the subscription portal session `id` manages.
    pub fn portal_action(&mut self, id: &str, action: PortalAction) -> Result<(), Refusal> {
        let (_, managed) = self.portal(id)?;
        let managed = managed
            .ok_or_else(|| Refusal::Conflict("There is no subscription to manage.".into()))?;
        let sub_id = managed["id"].as_str().unwrap_or_default().to_owned();
        let period_end = managed["items"]["data"][0]["current_period_end"]
            .as_i64()
            .unwrap_or(0);
        match action {
            PortalAction::CancelNow => {
                self.end_subscription(&sub_id);
            }
            PortalAction::CancelAtPeriodEnd => {
                let sub = self.subscription_mut(&sub_id).expect("managed");
                sub["cancel_at_period_end"] = json!(true);
                sub["cancel_at"] = json!(period_end);
                let updated = collapsed(sub);
                self.emit_updated(
                    updated,
                    json!({"cancel_at_period_end": false, "cancel_at": null}),
                );
            }
            PortalAction::Renew => {
                self.clock_offset += (period_end - self.now()).max(0);
                if managed["cancel_at_period_end"] == json!(true) {
                    self.end_subscription(&sub_id);
                    return Ok(());
                }
                let next_end = period_end + self.plan.period_secs;
                let invoice = self.paid_invoice(&managed, period_end, "subscription_cycle");
                let sub = self.subscription_mut(&sub_id).expect("managed");
                let item = &mut sub["items"]["data"][0];
                item["current_period_start"] = json!(period_end);
                item["current_period_end"] = json!(next_end);
                sub["latest_invoice"] = invoice.clone();
                let updated = collapsed(sub);
                let previous = json!({"items": managed["items"], "latest_invoice": managed["latest_invoice"]["id"]});
                self.emit_updated(updated, previous);
                self.emit("invoice.paid", invoice);
            }
        }
        Ok(())
    }

    /// The events emitted since the last call, oldest first, for delivery.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.outbox)
    }

    /// Adds customer `id` carrying `metadata`, as if created earlier (tests).
    pub fn add_customer(&mut self, id: &str, metadata: Value) {
        self.remember_owner(id, &metadata);
        let customer = objects::customer(id, metadata, self.now());
        self.customers.insert(id.to_owned(), customer);
    }

    /// Customer `id` as Stripe would answer it (deleted ones included).
    pub fn customer(&self, id: &str) -> Option<&Value> {
        self.customers.get(id)
    }

    fn paid_invoice(&self, sub: &Value, created: i64, reason: &str) -> Value {
        let sub_id = sub["id"].as_str().unwrap_or_default();
        let mut invoice = objects::paid_invoice(&new_id("in"), sub_id, created, reason);
        invoice["customer"] = sub["customer"].clone();
        invoice["currency"] = json!(self.plan.currency);
        for field in ["amount_due", "amount_paid", "subtotal", "total"] {
            invoice[field] = json!(self.plan.unit_amount);
        }
        invoice["amount_remaining"] = json!(0);
        invoice["period_start"] = json!(created);
        invoice["period_end"] = json!(created + self.plan.period_secs);
        invoice["parent"]["subscription_details"]["metadata"] = sub["metadata"].clone();
        invoice
    }

    fn emit_updated(&mut self, object: Value, previous_attributes: Value) {
        self.emit("customer.subscription.updated", object);
        if let Some(event) = self.outbox.last_mut() {
            event["data"]["previous_attributes"] = previous_attributes;
        }
    }

    fn emit(&mut self, kind: &str, object: Value) {
        let event = objects::event(&new_id("evt"), kind, object, self.now());
        self.outbox.push(event);
    }
}

/// The `prefix[KEY]=VALUE` parameters as a metadata object.
fn metadata(params: &[(String, String)], prefix: &str) -> Value {
    let entries = params.iter().filter_map(|(k, v)| {
        let name = k
            .strip_prefix(prefix)?
            .strip_prefix('[')?
            .strip_suffix(']')?;
        Some((name.to_owned(), json!(v)))
    });
    Value::Object(entries.collect())
}

fn new_id(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &random[..24])
}
