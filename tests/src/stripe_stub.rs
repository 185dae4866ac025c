//! A loopback Stripe for tests: `wiremock` answering with Stripe's official API object fixtures
//! (vendored in `tests/fixtures/stripe/`, with their licence and upstream commit), adjusted per
//! test, and recording what was sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The price the tests configure.
pub const PRICE: &str = "price_1PgafmB7WZ01zgkW6dKueIc5";
/// The webhook signing secret the tests and the sample events in `events/` use.
pub const WEBHOOK_SECRET: &str = "whsec_local_development_do_not_deploy";
/// The secret key the tests configure.
pub const SECRET_KEY: &str = "sk_test_stub_0123456789";

fn fixtures() -> &'static Value {
    static FIXTURES: OnceLock<Value> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let file =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stripe/fixtures3.json");
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        serde_json::from_str(&text).expect("fixtures are JSON")
    })
}

/// Stripe's fixture of `resource` (e.g. `customer`, `checkout.session`).
pub fn fixture(resource: &str) -> Value {
    fixtures()["resources"][resource].clone()
}

/// A subscription fixture of `customer` with the given status, creation time and period end.
pub fn subscription(
    id: &str,
    customer: &str,
    status: &str,
    created: i64,
    period_end: i64,
) -> Value {
    let mut sub = fixture("subscription");
    sub["id"] = json!(id);
    sub["customer"] = json!(customer);
    sub["status"] = json!(status);
    sub["created"] = json!(created);
    sub["cancel_at_period_end"] = json!(false);
    sub["items"]["data"][0]["current_period_end"] = json!(period_end);
    sub["items"]["data"][0]["price"]["id"] = json!(PRICE);
    sub
}

/// A paid invoice of subscription `sub` (Stripe's invoice fixture), created at `created`, with
/// `billing_reason` (`subscription_create`, `subscription_cycle`, `subscription_update`, ...).
/// In API version 2026-09-30 its subscription sits under `parent.subscription_details`.
pub fn paid_invoice(id: &str, sub: &str, created: i64, billing_reason: &str) -> Value {
    let mut invoice = fixture("invoice");
    invoice["id"] = json!(id);
    invoice["status"] = json!("paid");
    invoice["created"] = json!(created);
    invoice["billing_reason"] = json!(billing_reason);
    invoice["parent"] = json!({"type": "subscription_details", "quote_details": null,
        "subscription_details": {"metadata": {}, "subscription": sub}});
    invoice
}

/// The customer id the stub creates for an idempotency key: one key, one customer (as Stripe).
pub fn customer_for_key(key: &str) -> String {
    let digest: u32 = key
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    format!("cus_stub{digest:08x}")
}

/// One page of `objects` as a Stripe list answers it, for the request's `limit` and
/// `starting_after`, capped at `page_size`.
fn page_of(objects: &[Value], params: &[(String, String)], page_size: usize) -> Value {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .min(page_size);
    let start = match param("starting_after") {
        Some(after) => objects
            .iter()
            .position(|o| o["id"] == after)
            .map_or(objects.len(), |i| i + 1),
        None => 0,
    };
    let data: Vec<Value> = objects.iter().skip(start).take(limit).cloned().collect();
    let has_more = start + data.len() < objects.len();
    json!({"object": "list", "data": data, "has_more": has_more, "url": "/v1/subscriptions"})
}

/// `list` with each subscription's `latest_invoice` as Stripe sends it: the object only where
/// the request asked for `expand[]=data.latest_invoice`, else its id.
fn expanded(mut list: Value, params: &[(String, String)]) -> Value {
    let expand = params
        .iter()
        .any(|(k, v)| k.starts_with("expand[") && v == "data.latest_invoice");
    if let Some(data) = list["data"].as_array_mut() {
        for sub in data
            .iter_mut()
            .filter(|sub| sub["latest_invoice"].is_object())
        {
            if !expand {
                sub["latest_invoice"] = sub["latest_invoice"]["id"].clone();
            }
        }
    }
    list
}

/// Stripe's customer fixture as customer `id` of `user`.
fn new_customer(id: &str, user: &str) -> Value {
    let mut customer = fixture("customer");
    customer["id"] = json!(id);
    customer["metadata"] = json!({"user_id": user});
    customer
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

/// How long a customer creation executes at the stub: a twin request with the same
/// idempotency key within it gets Stripe's 409 `idempotency_error`.
const CREATE_LATENCY: Duration = Duration::from_millis(150);

/// Stripe's answer to a request whose idempotency key is held by one still executing.
fn idempotency_conflict(key: &str) -> ResponseTemplate {
    ResponseTemplate::new(409).set_body_json(json!({"error": {
        "type": "idempotency_error",
        "message": format!("There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {key}. Please try again later."),
    }}))
}

/// The request's `customer` parameter, if it names a customer deleted at the stub.
fn deleted_customer_in(req: &Request, customers: &Customers) -> Option<String> {
    let customer = form(req).into_iter().find(|(k, _)| k == "customer")?.1;
    let held = customers.lock().unwrap();
    held.get(&customer)
        .is_some_and(|c| c["deleted"] == json!(true))
        .then_some(customer)
}

/// Stripe's answer to a request naming a customer that does not exist (any more): 400
/// `resource_missing` on `customer`.
fn no_such_customer(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": {
        "type": "invalid_request_error", "code": "resource_missing", "param": "customer",
        "message": format!("No such customer: '{id}'"),
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
    }}))
}

/// The customers the stub holds, by id: what it created, what a test added, and whether each
/// was deleted (Stripe keeps deleted customers as `{"id": ..., "deleted": true}`).
type Customers = Arc<Mutex<BTreeMap<String, Value>>>;

/// What `GET /v1/subscriptions` answers.
enum Subscriptions {
    /// These subscriptions, whatever the customer (none at first).
    These(Vec<Value>),
    /// One active subscription `sub_<customer>` of the customer asked about.
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
    customers: Customers,
    listed: Listed,
    page_size: Arc<AtomicUsize>,
    list_delay_ms: Arc<AtomicUsize>,
}

impl StripeStub {
    /// Starts a stub answering customer creation and deletion, checkout and portal sessions,
    /// subscription cancellation, and an empty subscription list until
    /// [`StripeStub::subscriptions`] says otherwise.
    pub async fn start() -> StripeStub {
        let server = MockServer::start().await;
        let customers: Customers = Arc::default();
        let held = customers.clone();
        // Per idempotency key: when its first request finishes executing, and what it answered.
        let keys: Arc<Mutex<HashMap<String, (Instant, Value)>>> = Arc::default();
        Mock::given(method("POST"))
            .and(path("/v1/customers"))
            .respond_with(move |req: &Request| {
                let key = header(req, "idempotency-key").unwrap_or_default();
                let now = Instant::now();
                let mut keys = keys.lock().unwrap();
                match keys.get(&key) {
                    // The first request with this key is still executing: Stripe refuses twins.
                    Some((until, _)) if now < *until => return idempotency_conflict(&key),
                    // Finished: the same key replays the first answer, as it was then (even if
                    // the customer was deleted since).
                    Some((_, answer)) => {
                        return ResponseTemplate::new(200).set_body_json(answer.clone());
                    }
                    None => {}
                }
                let id = customer_for_key(&key);
                let user = form(req)
                    .into_iter()
                    .find(|(k, _)| k == "metadata[user_id]")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                let customer = new_customer(&id, &user);
                held.lock().unwrap().insert(id, customer.clone());
                keys.insert(key, (now + CREATE_LATENCY, customer.clone()));
                ResponseTemplate::new(200)
                    .set_body_json(customer)
                    .set_delay(CREATE_LATENCY)
            })
            .mount(&server)
            .await;
        let held = customers.clone();
        Mock::given(method("GET"))
            .and(path("/v1/customers/search"))
            .respond_with(move |req: &Request| {
                let query = form(req)
                    .into_iter()
                    .find(|(k, _)| k == "query")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                let found: Vec<Value> = held
                    .lock()
                    .unwrap()
                    .values()
                    .filter(|c| c["deleted"] != json!(true))
                    .filter(|c| {
                        query
                            == format!(
                                "metadata['user_id']:'{}'",
                                c["metadata"]["user_id"].as_str().unwrap_or_default()
                            )
                    })
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "object": "search_result", "url": "/v1/customers/search",
                    "has_more": false, "next_page": null, "data": found
                }))
            })
            .mount(&server)
            .await;
        let held = customers.clone();
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(move |req: &Request| {
                if let Some(gone) = deleted_customer_in(req, &held) {
                    return no_such_customer(&gone);
                }
                let mut session = fixture("checkout.session");
                session["url"] = json!("https://checkout.stripe.com/c/pay/cs_test_stub");
                session["mode"] = json!("subscription");
                if let Some(customer) = form(req).iter().find(|(k, _)| k == "customer") {
                    session["customer"] = json!(customer.1);
                }
                ResponseTemplate::new(200).set_body_json(session)
            })
            .mount(&server)
            .await;
        let held = customers.clone();
        Mock::given(method("POST"))
            .and(path("/v1/billing_portal/sessions"))
            .respond_with(move |req: &Request| {
                if let Some(gone) = deleted_customer_in(req, &held) {
                    return no_such_customer(&gone);
                }
                let mut session = fixture("billing_portal.session");
                session["url"] = json!("https://billing.stripe.com/p/session/test_stub");
                if let Some(customer) = form(req).iter().find(|(k, _)| k == "customer") {
                    session["customer"] = json!(customer.1);
                }
                ResponseTemplate::new(200).set_body_json(session)
            })
            .mount(&server)
            .await;
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
        let held = customers.clone();
        Mock::given(method("DELETE"))
            .and(path_regex(r"^/v1/customers/[^/]+$"))
            .respond_with(move |req: &Request| {
                let id = req.url.path().rsplit('/').next().unwrap_or_default();
                let mut held = held.lock().unwrap();
                if held.get(id).is_some_and(|c| c["deleted"] == json!(true)) {
                    return ResponseTemplate::new(404).set_body_json(json!({"error": {
                        "type": "invalid_request_error", "code": "resource_missing", "param": "id",
                        "message": format!("No such customer: '{id}'"),
                    }}));
                }
                let mut deleted = fixture("deleted_customer");
                deleted["id"] = json!(id);
                held.insert(id.to_owned(), deleted.clone());
                ResponseTemplate::new(200).set_body_json(deleted)
            })
            .mount(&server)
            .await;
        let (listed, page_size): (Listed, _) = (Arc::default(), Arc::new(AtomicUsize::new(100)));
        let (held, size, known) = (listed.clone(), page_size.clone(), customers.clone());
        let list_delay_ms = Arc::new(AtomicUsize::new(0));
        let delay_ms = list_delay_ms.clone();
        Mock::given(method("GET"))
            .and(path("/v1/subscriptions"))
            .respond_with(move |req: &Request| {
                let params = form(req);
                // A deleted customer's subscriptions were canceled and are gone with it.
                if deleted_customer_in(req, &known).is_some() {
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
                        vec![subscription(
                            &id,
                            customer,
                            "active",
                            now - 60,
                            now + 86_400,
                        )]
                    }
                };
                let page = page_of(&subscriptions, &params, size.load(Ordering::Relaxed));
                let delay = Duration::from_millis(delay_ms.load(Ordering::Relaxed) as u64);
                ResponseTemplate::new(200)
                    .set_body_json(expanded(page, &params))
                    .set_delay(delay)
            })
            .with_priority(10)
            .mount(&server)
            .await;
        StripeStub {
            server,
            customers,
            listed,
            page_size,
            list_delay_ms,
        }
    }

    /// Adds a customer of `user` (with `metadata.user_id`), as if created earlier: for example
    /// one made for a user whose link was never stored.
    pub fn add_customer(&self, id: &str, user: &str) {
        let customer = new_customer(id, user);
        self.customers
            .lock()
            .unwrap()
            .insert(id.to_owned(), customer);
    }

    /// Deletes customer `id` at the stub, as the Stripe dashboard would.
    pub fn delete_customer(&self, id: &str) {
        let mut deleted = fixture("deleted_customer");
        deleted["id"] = json!(id);
        self.customers
            .lock()
            .unwrap()
            .insert(id.to_owned(), deleted);
    }

    /// Whether customer `id` was deleted at the stub.
    pub fn customer_deleted(&self, id: &str) -> bool {
        self.customers
            .lock()
            .unwrap()
            .get(id)
            .is_some_and(|c| c["deleted"] == json!(true))
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
        *self.listed.lock().unwrap() = Subscriptions::These(subscriptions);
    }

    /// Answers `GET /v1/subscriptions?customer=X` with those of `subscriptions` whose
    /// `customer` is X, from now on: for tests with several customers, each with its own.
    pub async fn subscriptions_of_each_customer(&self, subscriptions: Vec<Value>) {
        *self.listed.lock().unwrap() = Subscriptions::OfEachCustomer(subscriptions);
    }

    /// The next `times` calls of `GET /v1/subscriptions` for `customer` fail with `status` and a
    /// Stripe error body; other customers are answered as usual.
    pub async fn fail_subscriptions_of(&self, customer: &str, status: u16, times: u64) {
        let kind = if status == 429 {
            "rate_limit_error"
        } else {
            "api_error"
        };
        Mock::given(method("GET"))
            .and(path("/v1/subscriptions"))
            .and(wiremock::matchers::query_param("customer", customer))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_json(json!({"error": {"type": kind, "message": "try later"}})),
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
    /// on (`sub_<X>`), for tests with many customers at once.
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
