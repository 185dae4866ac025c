//! A loopback Stripe for tests: `wiremock`, with the Stripe sandbox's API
//! (`stripe_sandbox::Stripe`: customers under idempotency keys, search, deletion, Checkout and
//! portal sessions) behind it, answering with objects built from Stripe's own fixtures; the
//! subscription list set per test; failures and delays injected per test; and a record of
//! what was sent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_sandbox::api::{Answer, Call, Pack, Plan, Stripe};
use stripe_sandbox::objects;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub use stripe_sandbox::fixtures::fixture;
pub use stripe_sandbox::objects::{customer_for_key, paid_invoice, with_lines};

/// The price the tests configure (the one plan, or `plus` of two).
pub const PRICE: &str = "price_1PgafmB7WZ01zgkW6dKueIc5";
/// The stub's second price (`pro` of two plans, at five times the first).
pub const PRO_PRICE: &str = "price_1PgafmB7WZ01zgkWproPrice";
/// The catalogue of two plans over the stub's prices (`PLANS`): plus (1,000 credits at 20.00)
/// and pro (5,000 at 100.00).
pub fn two_plans() -> String {
    format!("plus:{PRICE}:1000,pro:{PRO_PRICE}:5000")
}
/// The stub's one-time prices: the `small` pack (500 credits at 5.00) and `large` (3,000 at
/// 20.00).
pub const PACK_PRICE: &str = "price_1PgafmB7WZ01zgkWsmallPack";
/// See [`PACK_PRICE`].
pub const LARGE_PACK_PRICE: &str = "price_1PgafmB7WZ01zgkWlargePack";
/// The packs over the stub's one-time prices (`CREDIT_PACKS`), configured in every test app.
pub fn credit_packs() -> String {
    format!("small:{PACK_PRICE}:500,large:{LARGE_PACK_PRICE}:3000")
}
/// The webhook signing secret the tests and the sample events in `events/` use.
pub const WEBHOOK_SECRET: &str = "whsec_local_development_do_not_deploy";
/// The secret key the tests configure.
pub const SECRET_KEY: &str = "sk_test_stub_0123456789";

/// How long a request under an idempotency key executes at the stub: a twin request with the
/// same key within it gets Stripe's 409 `idempotency_error`.
const EXECUTION_TIME: Duration = Duration::from_millis(150);

/// A subscription fixture of `customer` to [`PRICE`] with the given status, creation time and
/// period end.
pub fn subscription(
    id: &str,
    customer: &str,
    status: &str,
    created: i64,
    period_end: i64,
) -> Value {
    objects::subscription(id, customer, PRICE, status, created, period_end)
}

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `METHOD /path`.
    pub route: String,
    /// The form body (or query) as pairs.
    pub form: Vec<(String, String)>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

impl Sent {
    /// The value of form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What `GET /v1/subscriptions` answers.
enum Subscriptions {
    /// These subscriptions, whatever the customer (none at first).
    These(Vec<Value>),
    /// One active subscription `sub_<customer>` of the customer asked about, its latest invoice
    /// `in_<customer>` paid (`subscription_create`).
    ActiveForEveryCustomer,
    /// Of these, the ones of the customer asked about, as Stripe filters them.
    OfEachCustomer(Vec<Value>),
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions::These(Vec::new())
    }
}

type Listed = Arc<Mutex<Subscriptions>>;

/// A running stub.
pub struct StripeStub {
    server: MockServer,
    stripe: Shared,
    listed: Listed,
    page_size: Arc<AtomicUsize>,
    list_delay_ms: Arc<AtomicUsize>,
}

/// The sandbox's Stripe account behind the stub.
type Shared = Arc<Mutex<Stripe>>;

/// The sandbox's answer to `call` (its events are dropped: tests send their own).
fn answer(stripe: &Shared, call: &Call) -> Answer {
    let mut stripe = stripe.lock().unwrap();
    let answer = stripe.answer(call, Instant::now());
    stripe.take_events();
    answer
}

/// Answers `req` with the sandbox's API.
fn sandbox_answer(stripe: &Shared, req: &Request) -> ResponseTemplate {
    let call = Call {
        method: req.method.to_string(),
        path: req.url.path().to_owned(),
        params: form(req),
        idempotency_key: header(req, "idempotency-key"),
        authorization: header(req, "authorization"),
    };
    let answer = answer(stripe, &call);
    ResponseTemplate::new(answer.status)
        .set_body_json(answer.body)
        .set_delay(answer.delay)
}

impl StripeStub {
    /// Starts a stub answering customer creation, search and deletion, checkout and portal
    /// sessions as the sandbox does, subscription cancellation, and an empty subscription list
    /// until [`StripeStub::subscriptions`] says otherwise.
    pub async fn start() -> StripeStub {
        StripeStub::executing_for(EXECUTION_TIME).await
    }

    /// [`StripeStub::start`], each request under an idempotency key executing for `time`
    /// instead (the bench: a Stripe as fast as loopback, so the figures are the code's).
    pub async fn executing_for(time: Duration) -> StripeStub {
        let server = MockServer::start().await;
        let plan = |price_id: &str, name: &str, unit_amount, credits| Plan {
            price_id: price_id.to_owned(),
            name: name.to_owned(),
            unit_amount,
            currency: "usd".to_owned(),
            period_secs: 30 * 86_400,
            credits,
        };
        let plans = vec![
            plan(PRICE, "plus", 2000, 1000),
            plan(PRO_PRICE, "pro", 10_000, 5000),
        ];
        let pack = |price_id: &str, name: &str, unit_amount, credits| Pack {
            price_id: price_id.to_owned(),
            name: name.to_owned(),
            unit_amount,
            currency: "usd".to_owned(),
            credits,
        };
        let packs = vec![
            pack(PACK_PRICE, "small", 500, 500),
            pack(LARGE_PACK_PRICE, "large", 2000, 3000),
        ];
        let stripe = Stripe::new(plans, &server.uri(), time).with_packs(packs);
        let stripe: Shared = Arc::new(Mutex::new(stripe));
        for (verb, route) in [
            ("POST", r"^/v1/customers$"),
            ("GET", r"^/v1/customers/search$"),
            ("GET", r"^/v1/customers/[^/]+$"),
            ("DELETE", r"^/v1/customers/[^/]+$"),
            ("POST", r"^/v1/checkout/sessions$"),
            ("POST", r"^/v1/checkout/sessions/[^/]+/expire$"),
            ("GET", r"^/v1/checkout/sessions/[^/]+$"),
            ("GET", r"^/v1/invoice_payments$"),
            ("GET", r"^/v1/invoices(/[^/]+)?$"),
            ("POST", r"^/v1/refunds$"),
            ("GET", r"^/v1/charges(/[^/]+)?$"),
            ("GET", r"^/v1/disputes$"),
            ("GET", r"^/v1/events/[^/]+$"),
            ("POST", r"^/v1/billing_portal/sessions$"),
            ("GET", r"^/v1/prices/[^/]+$"),
        ] {
            let stripe = stripe.clone();
            Mock::given(method(verb))
                .and(path_regex(route))
                .respond_with(move |req: &Request| sandbox_answer(&stripe, req))
                .mount(&server)
                .await;
        }
        Mock::given(method("DELETE"))
            .and(path_regex(r"^/v1/subscriptions/[^/]+$"))
            .respond_with(|req: &Request| {
                let id = req
                    .url
                    .path()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let mut canceled = fixture("subscription");
                canceled["id"] = json!(id);
                canceled["status"] = json!("canceled");
                ResponseTemplate::new(200).set_body_json(canceled)
            })
            .mount(&server)
            .await;
        let (listed, page_size): (Listed, _) = (Arc::default(), Arc::new(AtomicUsize::new(100)));
        let (held, size, known) = (listed.clone(), page_size.clone(), stripe.clone());
        let list_delay_ms = Arc::new(AtomicUsize::new(0));
        let delay_ms = list_delay_ms.clone();
        Mock::given(method("GET"))
            .and(path("/v1/subscriptions"))
            .respond_with(move |req: &Request| {
                let params = form(req);
                // A deleted customer's subscriptions were canceled and are gone with it.
                let customer = objects::param(&params, "customer").unwrap_or_default();
                if known.lock().unwrap().customer(customer).is_some_and(objects::is_deleted) {
                    let empty = json!({"object": "list", "data": [], "has_more": false, "url": "/v1/subscriptions"});
                    return ResponseTemplate::new(200).set_body_json(empty);
                }
                let subscriptions = match &*held.lock().unwrap() {
                    Subscriptions::These(list) => list.clone(),
                    Subscriptions::OfEachCustomer(list) => {
                        let param = params.iter().find(|(k, _)| k == "customer");
                        let customer = param.map_or("", |(_, v)| v.as_str());
                        let of = |s: &&Value| s["customer"] == customer;
                        list.iter().filter(of).cloned().collect()
                    }
                    Subscriptions::ActiveForEveryCustomer => {
                        let param = params.iter().find(|(k, _)| k == "customer");
                        let customer = param.map_or("", |(_, v)| v.as_str());
                        let now = common::unix_now();
                        let id = format!("sub_{customer}");
                        let mut sub = subscription(&id, customer, "active", now - 60, now + 86_400);
                        let invoice = format!("in_{customer}");
                        sub["latest_invoice"] =
                            paid_invoice(&invoice, &id, now - 60, "subscription_create");
                        vec![sub]
                    }
                };
                let size = size.load(Ordering::Relaxed);
                let page = objects::page_of(&subscriptions, &params, size, "/v1/subscriptions");
                let delay = Duration::from_millis(delay_ms.load(Ordering::Relaxed) as u64);
                ResponseTemplate::new(200)
                    .set_body_json(objects::expanded(page, &params))
                    .set_delay(delay)
            })
            .with_priority(10)
            .mount(&server)
            .await;
        StripeStub {
            server,
            stripe,
            listed,
            page_size,
            list_delay_ms,
        }
    }

    /// Adds a customer of `user` (with `metadata.user_id`), as if created earlier: for example
    /// one made for a user whose link was never stored.
    pub fn add_customer(&self, id: &str, user: &str) {
        let metadata = json!({ "user_id": user });
        self.stripe.lock().unwrap().add_customer(id, metadata);
    }

    /// Deletes customer `id` at the stub, as the Stripe dashboard would (through the API).
    pub fn delete_customer(&self, id: &str) {
        let call = Call {
            method: "DELETE".to_owned(),
            path: format!("/v1/customers/{id}"),
            authorization: Some(format!("Bearer {SECRET_KEY}")),
            ..Call::default()
        };
        answer(&self.stripe, &call);
    }

    /// Whether customer `id` was deleted at the stub.
    pub fn customer_deleted(&self, id: &str) -> bool {
        let stripe = self.stripe.lock().unwrap();
        stripe.customer(id).is_some_and(objects::is_deleted)
    }

    /// The status of Checkout session `id` at the stub (`open`, `complete`, `expired`).
    pub fn checkout_status(&self, id: &str) -> Option<String> {
        self.stripe.lock().unwrap().checkout_status(id)
    }

    /// How many Checkout sessions of `customer` can still be paid at the stub.
    pub fn payable_checkouts_of(&self, customer: &str) -> usize {
        self.stripe.lock().unwrap().payable_checkouts_of(customer)
    }

    /// Pays Checkout session `id` at the stub, as the user would on its page (the events it
    /// emits are dropped: tests send their own).
    pub fn pay(&self, id: &str) -> Result<String, stripe_sandbox::api::Refusal> {
        let mut stripe = self.stripe.lock().unwrap();
        let paid = stripe.pay(id);
        stripe.take_events();
        paid
    }

    /// Starts paying pack session `id` with a delayed method: it completes unpaid until
    /// [`StripeStub::settle_delayed_payment`] (the events are dropped: tests send their own).
    pub fn pay_later(&self, id: &str) -> Result<(), stripe_sandbox::api::Refusal> {
        let mut stripe = self.stripe.lock().unwrap();
        let started = stripe.pay_later(id);
        stripe.take_events();
        started
    }

    /// Ends the delayed payment of pack session `id`, `succeeded` or failed.
    pub fn settle_delayed_payment(&self, id: &str, succeeded: bool) -> bool {
        let mut stripe = self.stripe.lock().unwrap();
        let settled = stripe.settle_delayed_payment(id, succeeded);
        stripe.take_events();
        settled
    }

    /// Every event the stub's Stripe emitted of `kind` (delivered to no one: tests send their
    /// own), oldest first: what Stripe's `GET /v1/events/{id}` answers.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.stripe.lock().unwrap().events_of(kind)
    }

    /// Checkout session `id` as Stripe answers it now.
    pub fn checkout_session(&self, id: &str) -> Value {
        let call = Call {
            method: "GET".to_owned(),
            path: format!("/v1/checkout/sessions/{id}"),
            authorization: Some(format!("Bearer {SECRET_KEY}")),
            ..Call::default()
        };
        answer(&self.stripe, &call).body
    }

    /// Every customer the stub ever made for `user` (by `metadata.user_id`), deleted ones too.
    pub fn customers_made_for(&self, user: &str) -> Vec<String> {
        self.stripe.lock().unwrap().customers_made_for(user)
    }

    /// The charge of PaymentIntent `intent` (a pack's, or an invoice's `pi_for_<invoice>`) as
    /// Stripe answers it now, if it was charged.
    pub fn charge_of(&self, intent: &str) -> Option<Value> {
        let call = Call {
            method: "GET".to_owned(),
            path: "/v1/charges".to_owned(),
            params: vec![("payment_intent".to_owned(), intent.to_owned())],
            authorization: Some(format!("Bearer {SECRET_KEY}")),
            ..Call::default()
        };
        let found = answer(&self.stripe, &call).body["data"][0].clone();
        found.is_object().then_some(found)
    }

    /// Refunds `amount` of charge `charge` (all that is left: `None`), as the dashboard does:
    /// the charge as it then stands (the events are dropped: tests send their own).
    pub fn refund(&self, charge: &str, amount: Option<i64>) -> Value {
        let mut stripe = self.stripe.lock().unwrap();
        stripe.refund_charge(charge, amount).expect("refundable");
        stripe.take_events();
        drop(stripe);
        self.charge_by_id(charge)
    }

    /// The cardholder disputes charge `charge`: the dispute's id (events dropped).
    pub fn dispute(&self, charge: &str) -> String {
        let mut stripe = self.stripe.lock().unwrap();
        let dispute = stripe.dispute_charge(charge).expect("disputable");
        stripe.take_events();
        dispute
    }

    /// Closes dispute `dispute`, `won` or lost (events dropped).
    pub fn close_dispute(&self, dispute: &str, won: bool) {
        let mut stripe = self.stripe.lock().unwrap();
        assert!(stripe.close_dispute(dispute, won), "open");
        stripe.take_events();
    }

    /// Charge `id` as Stripe answers it now.
    pub fn charge_by_id(&self, id: &str) -> Value {
        let call = Call {
            method: "GET".to_owned(),
            path: format!("/v1/charges/{id}"),
            authorization: Some(format!("Bearer {SECRET_KEY}")),
            ..Call::default()
        };
        answer(&self.stripe, &call).body
    }

    /// Whether the payment of invoice `invoice` (the sandbox's `pi_for_<invoice>`) was refunded.
    pub fn invoice_refunded(&self, invoice: &str) -> bool {
        let intent = objects::payment_intent_of(invoice);
        self.stripe.lock().unwrap().refund_of(&intent).is_some()
    }

    /// Base URL to configure as `STRIPE_API_BASE`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Answers `GET /v1/subscriptions` with `subscriptions` from now on, in pages as Stripe
    /// does: at most `limit` (and at most [`StripeStub::page_size`]) per page, `has_more` when
    /// more follow, continued with `starting_after`; each `latest_invoice` expanded only when
    /// asked (`expand[]=data.latest_invoice`).
    pub async fn subscriptions(&self, subscriptions: Vec<Value>) {
        self.keep_invoices(&subscriptions);
        *self.listed.lock().unwrap() = Subscriptions::These(subscriptions);
    }

    /// Keeps each subscription's latest invoice as issued, for `GET /v1/invoices` to list (as
    /// Stripe keeps every invoice once issued).
    fn keep_invoices(&self, subscriptions: &[Value]) {
        let mut stripe = self.stripe.lock().unwrap();
        for sub in subscriptions {
            if sub["latest_invoice"].is_object() {
                let mut invoice = sub["latest_invoice"].clone();
                invoice["customer"] = sub["customer"].clone();
                stripe.record_invoice(invoice);
            }
        }
    }

    /// Keeps `invoice` as issued at the stub (replacing an earlier state of it), without making
    /// it any subscription's latest: a renewal finalised and paid after a later invoice.
    pub fn invoice(&self, invoice: Value) {
        self.stripe.lock().unwrap().record_invoice(invoice);
    }

    /// Answers `GET /v1/subscriptions?customer=X` with those of `subscriptions` whose
    /// `customer` is X, from now on: for tests with several customers, each with its own.
    pub async fn subscriptions_of_each_customer(&self, subscriptions: Vec<Value>) {
        self.keep_invoices(&subscriptions);
        *self.listed.lock().unwrap() = Subscriptions::OfEachCustomer(subscriptions);
    }

    /// The next `times` calls of `GET /v1/subscriptions` for `customer` fail with `status` and a
    /// Stripe error body; other customers are answered as usual.
    pub async fn fail_subscriptions_of(&self, customer: &str, status: u16, times: u64) {
        Mock::given(method("GET"))
            .and(path("/v1/subscriptions"))
            .and(wiremock::matchers::query_param("customer", customer))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(objects::server_error(status)),
            )
            .up_to_n_times(times)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// Every subscription list takes `delay` to answer (successfully) from now on: a slow Stripe.
    pub fn list_delay(&self, delay: Duration) {
        self.list_delay_ms
            .store(delay.as_millis() as usize, Ordering::Relaxed);
    }

    /// Caps every list page at `size` objects, whatever `limit` asks (100 by default, Stripe's
    /// maximum): to test that pages are followed.
    pub fn page_size(&self, size: usize) {
        self.page_size.store(size, Ordering::Relaxed);
    }

    /// Answers `GET /v1/subscriptions?customer=X` with one active subscription of X from now
    /// on (`sub_<X>`, its first invoice paid), for tests with many customers at once.
    pub async fn active_for_every_customer(&self) {
        *self.listed.lock().unwrap() = Subscriptions::ActiveForEveryCustomer;
    }

    /// The next `times` calls of `verb path` fail with `status` and a Stripe error body
    /// (`times = None`: every call).
    pub async fn fail(&self, verb: &str, route: &str, status: u16, times: Option<u64>) {
        let body = json!({"error": {"type": if status == 429 { "rate_limit_error" } else { "api_error" },
                                   "message": "Your card number 4242424242424242 was declined."}});
        let mock = Mock::given(method(verb))
            .and(path(route))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .with_priority(1);
        match times {
            Some(n) => mock.up_to_n_times(n).mount(&self.server).await,
            None => mock.mount(&self.server).await,
        }
    }

    /// Every call of `verb path` takes `delay` to answer from now on.
    pub async fn delay(&self, verb: &str, route: &str, delay: Duration) {
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(ResponseTemplate::new(500).set_delay(delay))
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// What was sent, in order.
    pub async fn sent(&self) -> Vec<Sent> {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .map(|req| Sent {
                route: format!("{} {}", req.method, req.url.path()),
                form: form(req),
                idempotency_key: header(req, "idempotency-key"),
                authorization: header(req, "authorization"),
            })
            .collect()
    }

    /// What was sent to `verb path`, in order.
    pub async fn sent_to(&self, route: &str) -> Vec<Sent> {
        self.sent()
            .await
            .into_iter()
            .filter(|s| s.route == route)
            .collect()
    }
}

/// The value of header `name` of a request a stand-in received.
pub(crate) fn header(req: &Request, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn form(req: &Request) -> Vec<(String, String)> {
    let source = if req.body.is_empty() {
        req.url.query().unwrap_or("").as_bytes()
    } else {
        &req.body[..]
    };
    form_urlencoded::parse(source)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
