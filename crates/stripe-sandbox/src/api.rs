//! The part of Stripe's API this service calls, with state: customers (created under
//! idempotency keys, searched by metadata, deleted as Stripe deletes them), Checkout and portal
//! sessions, subscriptions with their invoices, and the events each change emits. Requests and
//! answers are plain values, so the sandbox's HTTP server and the test suite's stub serve the
//! same behaviour. This module holds the account, the dispatch of a request and the events; one
//! submodule per resource holds its calls: `customers`, `sessions` (Checkout), `packs` (the
//! one-time payment of a pack's session), `portal`, `subscriptions` (with their invoices and
//! invoice payments), `charges` (their refunds and disputes).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod charges;
mod customers;
mod packs;
mod portal;
mod sessions;
mod subscriptions;

use crate::idempotency::{Keys, Seen};
use crate::objects;
use crate::unix_now;

/// A plan the sandbox sells: a recurring price.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The price id checkout sessions name.
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

/// A credit pack the sandbox sells: a one-time price.
#[derive(Debug, Clone)]
pub struct Pack {
    /// The price id pack Checkout sessions name.
    pub price_id: String,
    /// The pack's name, shown on the checkout page.
    pub name: String,
    /// Its price, in the currency's smallest unit.
    pub unit_amount: i64,
    /// ISO currency code, lower case.
    pub currency: String,
    /// The credits it grants, shown on the checkout page.
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
    /// Advance the customer's clock one period: a new paid invoice (`subscription_cycle`), or
    /// the end of a subscription set to cancel at period end.
    Renew,
    /// Switch to the plan of the price at this index of the plans sold, prorations invoiced
    /// at once (`subscription_update`), as the portal does when configured to.
    SwitchTo(usize),
}

/// A Checkout session and what the subscription or PaymentIntent it creates will carry.
struct Checkout {
    session: Value,
    subscription_metadata: Value,
    /// `payment_intent_data[metadata]` (payment mode).
    intent_metadata: Value,
    /// The price it sells (Stripe keeps line items apart from the session).
    price: String,
}

/// The sandbox's Stripe account.
pub struct Stripe {
    plans: Vec<Plan>,
    packs: Vec<Pack>,
    pages_base: String,
    execution_time: Duration,
    /// How far renewals advanced each customer's clock, seconds: as a Stripe test clock, a
    /// renewal moves the time of its customer only (a new customer's checkout runs on the real
    /// time).
    clocks: BTreeMap<String, i64>,
    customers: BTreeMap<String, Value>,
    checkouts: BTreeMap<String, Checkout>,
    portals: BTreeMap<String, Value>,
    /// Newest first, as Stripe lists them; each with its latest invoice inline.
    subscriptions: Vec<Value>,
    keys: Keys,
    outbox: Vec<Value>,
    /// Every event emitted, by id, retrievable as Stripe keeps them (for 30 days there).
    events: BTreeMap<String, Value>,
    /// The first refund of each payment intent refunded, by its id.
    refunds: BTreeMap<String, Value>,
    /// Every charge, newest first (one per successful payment).
    charges: Vec<Value>,
    /// Every dispute, newest first (at most one per charge).
    disputes: Vec<Value>,
    /// The PaymentIntents of paid (or paying) pack sessions, by id.
    payment_intents: BTreeMap<String, Value>,
    /// What each invoice made here charged, by its id.
    invoice_amounts: BTreeMap<String, i64>,
    /// Every invoice issued, newest first, as Stripe lists them.
    invoices: Vec<Value>,
    /// Every customer made with a `metadata.user_id`, by that user id (deleted ones included).
    made_for: BTreeMap<String, Vec<String>>,
}

impl Stripe {
    /// An empty account selling `plans` (at least one), whose Checkout and portal pages live
    /// under `pages_base`, where each request under an idempotency key executes for
    /// `execution_time`.
    pub fn new(plans: Vec<Plan>, pages_base: &str, execution_time: Duration) -> Self {
        assert!(!plans.is_empty(), "the sandbox sells at least one plan");
        Stripe {
            plans,
            packs: Vec::new(),
            pages_base: pages_base.trim_end_matches('/').to_owned(),
            execution_time,
            clocks: BTreeMap::new(),
            customers: BTreeMap::new(),
            checkouts: BTreeMap::new(),
            portals: BTreeMap::new(),
            subscriptions: Vec::new(),
            keys: Keys::default(),
            outbox: Vec::new(),
            events: BTreeMap::new(),
            refunds: BTreeMap::new(),
            charges: Vec::new(),
            disputes: Vec::new(),
            payment_intents: BTreeMap::new(),
            invoice_amounts: BTreeMap::new(),
            invoices: Vec::new(),
            made_for: BTreeMap::new(),
        }
    }

    /// The account selling `packs` too.
    pub fn with_packs(self, packs: Vec<Pack>) -> Self {
        Stripe { packs, ..self }
    }

    /// The plans sold.
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// The pack of `price`, if the sandbox sells it.
    pub fn pack_of(&self, price: &str) -> Option<&Pack> {
        self.packs.iter().find(|pack| pack.price_id == price)
    }

    /// The plan of `price`, if the sandbox sells it.
    pub fn plan_of(&self, price: &str) -> Option<&Plan> {
        self.plans.iter().find(|plan| plan.price_id == price)
    }

    /// The plan subscription `sub` is on (the first sold, for a price the sandbox never sold).
    fn plan_of_subscription(&self, sub: &Value) -> Plan {
        let price = sub["items"]["data"][0]["price"]["id"].as_str();
        let plan = price.and_then(|price| self.plan_of(price));
        plan.unwrap_or(&self.plans[0]).clone()
    }

    /// `GET /v1/prices/{id}`: a price the sandbox sells; any other is 404 `resource_missing`.
    fn price(&self, id: &str) -> (u16, Value) {
        let (amount, currency, name, recurring) = match (self.pack_of(id), self.plan_of(id)) {
            (Some(pack), _) => (pack.unit_amount, &pack.currency, &pack.name, Value::Null),
            (None, Some(plan)) => {
                let monthly = json!({"interval": "month", "interval_count": 1,
                    "usage_type": "licensed", "meter": null, "trial_period_days": null});
                (plan.unit_amount, &plan.currency, &plan.name, monthly)
            }
            (None, None) => return (404, objects::no_such("price", id, "price")),
        };
        let mut price = objects::price_of(id, amount);
        price["currency"] = json!(currency);
        price["type"] = json!(if recurring.is_null() {
            "one_time"
        } else {
            "recurring"
        });
        price["active"] = json!(true);
        price["nickname"] = json!(name);
        price["recurring"] = recurring;
        (200, price)
    }

    /// The clock of `customer` (an id, an expanded customer, or null), Unix seconds: the real
    /// time, advanced by that customer's renewals.
    pub fn now_of(&self, customer: &Value) -> i64 {
        let id = customer.as_str().or_else(|| customer["id"].as_str());
        let advanced = id.and_then(|id| self.clocks.get(id)).copied();
        unix_now() + advanced.unwrap_or(0)
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
            ("GET", ["v1", "checkout", "sessions", id]) => self.retrieve_checkout(id, p),
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
            ("GET", ["v1", "invoices"]) => (200, self.list_invoices(p)),
            ("GET", ["v1", "invoices", id]) => {
                match self.invoices.iter().find(|i| i["id"] == *id) {
                    Some(invoice) => (200, invoice.clone()),
                    None => (404, objects::no_such("invoice", id, "id")),
                }
            }
            ("GET", ["v1", "prices", id]) => self.price(id),
            ("POST", ["v1", "refunds"]) => self.create_refund(p),
            ("GET", ["v1", "charges"]) => (200, self.list_charges(p)),
            ("GET", ["v1", "charges", id]) => self.retrieve_charge(id),
            ("GET", ["v1", "disputes"]) => (200, self.list_disputes(p)),
            ("GET", ["v1", "events", id]) => match self.events.get(*id) {
                Some(event) => (200, event.clone()),
                None => (404, objects::no_such("event", id, "id")),
            },
            _ => {
                let message = format!("Unrecognized request URL ({}: {}).", call.method, call.path);
                (
                    404,
                    objects::error("invalid_request_error", None, None, &message),
                )
            }
        }
    }

    /// Every event emitted of `kind`, oldest first, whether delivered or not.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        let mut found: Vec<Value> = self
            .events
            .values()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect();
        found.sort_by_key(|e| e["created"].as_i64());
        found
    }

    /// The events emitted since the last call, oldest first, for delivery.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.outbox)
    }

    fn emit_updated(&mut self, object: Value, previous_attributes: Value) {
        self.emit("customer.subscription.updated", object);
        if let Some(event) = self.outbox.last_mut() {
            event["data"]["previous_attributes"] = previous_attributes;
        }
    }

    fn emit(&mut self, kind: &str, object: Value) {
        let at = self.now_of(&object["customer"]);
        let event = objects::event(&new_id("evt"), kind, object, at);
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        self.events.insert(id, event.clone());
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
