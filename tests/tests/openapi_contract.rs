//! The OpenAPI contract: the local API, on the DynamoDB emulator and the Stripe stub, exercised on
//! every route and every documented error; each actual response must match `openapi.yaml`, and
//! every documented response must have been produced. Any drift fails.

use std::collections::BTreeSet;
use std::sync::Arc;

use common::domain::{UserId, UserRecord};
use common::store::Store;
use integration_tests::binaries::{free_port, start_local_api};
use integration_tests::openapi::{Operation, Spec};
use integration_tests::stripe_stub::{self, StripeStub, subscription};
use integration_tests::{apps, emulator, tokens};
use local_api::routes::ROUTES;
use serde_json::{Value, json};

const SECRET: &str = "contract-test-secret-0123456789abcdef";
const ISSUER: &str = "https://contract.test/auth/v1";
/// Every route that takes the client's bearer token: method and path.
fn bearer_routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES
        .into_iter()
        .filter(|route| route.bearer)
        .map(|route| (route.method(), route.path()))
}

/// The smallest body `path` accepts: the pack a pack checkout needs, else none.
fn valid_body(path: &str) -> String {
    match path {
        "/v1/stripe/create-credit-pack-session" => r#"{"pack": "small"}"#.to_owned(),
        _ => String::new(),
    }
}

struct Api {
    base: String,
    spec: Arc<Spec>,
    seen: BTreeSet<Operation>,
    client: reqwest::Client,
}

impl Api {
    /// Calls `method path` as `user` (or anonymously), checks the response against the spec and
    /// returns its status and body.
    async fn call(&mut self, method: &str, path: &str, user: Option<&str>, expected: u16) -> Value {
        self.call_with_body(method, path, user, valid_body(path), expected)
            .await
    }

    /// [`Api::call`] with a request body.
    async fn call_with_body(
        &mut self,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: String,
        expected: u16,
    ) -> Value {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(user) = user {
            request = request.bearer_auth(tokens::hs256(&tokens::claims(user, ISSUER), SECRET));
        }
        let request = request
            .header("content-type", "application/json")
            .body(body);
        self.check(method, path, request, expected).await
    }

    async fn webhook(&mut self, body: String, signature: Option<String>, expected: u16) -> Value {
        let mut request = self
            .client
            .post(format!("{}/webhooks/stripe", self.base))
            .body(body);
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        self.check("post", "/webhooks/stripe", request, expected)
            .await
    }

    async fn check(
        &mut self,
        method: &str,
        path: &str,
        request: reqwest::RequestBuilder,
        expected: u16,
    ) -> Value {
        let response = request.send().await.expect("local API answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(status, expected, "{method} {path}: {body}");
        let path = path.split_once('?').map_or(path, |(path, _query)| path);
        let operation = (path.to_owned(), method.to_lowercase(), status);
        self.spec.check(&operation, &headers, &body);
        self.seen.insert(operation);
        body
    }
}

fn env(stub: &StripeStub, endpoint: &str) -> Vec<(&'static str, String)> {
    let mut env = integration_tests::binaries::stripe_env(&stub.uri());
    env.extend([
        ("DYNAMODB_ENDPOINT", endpoint.to_owned()),
        ("TABLE_NAME", emulator::storage_config().table_name),
        ("AWS_REGION", emulator::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("JWT_HS256_SECRET", SECRET.to_owned()),
        ("JWT_ISSUER", ISSUER.to_owned()),
        ("STRIPE_TIMEOUT_MS", "2000".to_owned()),
        (
            "DYNAMODB_TIMEOUT_MS",
            emulator::EMULATOR_TIMEOUT_MS.to_string(),
        ),
    ]);
    env
}

async fn local_api(env: &[(&'static str, String)]) -> (tokio::process::Child, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let api = start_local_api(&env).await;
    (api.child, api.base)
}

fn signed(event: &Value) -> (String, Option<String>) {
    let body = event.to_string();
    let signature = common::webhook::signature::sign(
        body.as_bytes(),
        stripe_stub::WEBHOOK_SECRET,
        common::unix_now(),
    );
    (body, Some(signature))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_documented_error_matches_openapi_yaml() {
    let spec = Arc::new(Spec::load());
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let storage = emulator::storage_config().endpoint.unwrap();
    let (_api, base) = local_api(&env(&stub, &storage)).await;
    let mut api = Api {
        base,
        spec: spec.clone(),
        seen: BTreeSet::new(),
        client: reqwest::Client::new(),
    };

    // Happy paths.
    let user = tokens::new_user();
    api.call("GET", "/v1/user/status", Some(&user), 200).await;
    api.call("POST", "/v1/stripe/create-portal-session", Some(&user), 404)
        .await;
    api.call(
        "POST",
        "/v1/stripe/create-checkout-session",
        Some(&user),
        200,
    )
    .await;
    api.call("POST", "/v1/stripe/create-portal-session", Some(&user), 200)
        .await;
    let packs = "/v1/stripe/create-credit-pack-session";
    api.call("POST", packs, Some(&user), 200).await;
    api.call("POST", "/v1/stripe/sync-subscription", Some(&user), 200)
        .await;
    let history = api
        .call("GET", "/v1/user/credits?limit=2", Some(&user), 200)
        .await;
    assert_eq!(history["next_cursor"], Value::Null);
    let export = api.call("GET", "/v1/user/export", Some(&user), 200).await;
    assert_eq!(export["user_id"], user);
    for bad in ["limit=0", "limit=x", "cursor=forged"] {
        let path = format!("/v1/user/credits?{bad}");
        api.call("GET", &path, Some(&user), 400).await;
    }

    // Checkout's body: not JSON, and a plan not sold.
    for bad in ["{", r#"{"plan":"nope"}"#] {
        api.call_with_body(
            "POST",
            "/v1/stripe/create-checkout-session",
            Some(&tokens::new_user()),
            bad.to_string(),
            400,
        )
        .await;
    }

    // The pack checkout's body: none, not JSON, a pack not sold.
    for bad in ["", "{", r#"{"pack":"nope"}"#] {
        let user = tokens::new_user();
        api.call_with_body("POST", packs, Some(&user), bad.to_string(), 400)
            .await;
    }

    // Unauthenticated, everywhere.
    for (method, path) in bearer_routes() {
        api.call(method, path, None, 401).await;
    }

    // Already subscribed.
    let subscriber = tokens::new_user();
    let mut record = UserRecord::new_free(UserId::parse(&subscriber).unwrap(), 10, 1);
    record.subscription_status = "active".into();
    store.create_user(&record).await.unwrap();
    api.call(
        "POST",
        "/v1/stripe/create-checkout-session",
        Some(&subscriber),
        409,
    )
    .await;

    // Stripe failing (3 attempts each) for each Stripe-backed route.
    let customer = format!("cus_stub{}", "0".repeat(8));
    stub.fail("POST", "/v1/billing_portal/sessions", 500, Some(3))
        .await;
    api.call("POST", "/v1/stripe/create-portal-session", Some(&user), 502)
        .await;
    stub.fail("POST", "/v1/customers", 500, Some(3)).await;
    api.call(
        "POST",
        "/v1/stripe/create-checkout-session",
        Some(&tokens::new_user()),
        502,
    )
    .await;
    stub.fail("POST", "/v1/customers", 500, Some(3)).await;
    api.call("POST", packs, Some(&tokens::new_user()), 502)
        .await;
    stub.fail("GET", "/v1/subscriptions", 500, Some(3)).await;
    api.call("POST", "/v1/stripe/sync-subscription", Some(&user), 502)
        .await;
    stub.fail("POST", "/v1/customers", 500, Some(3)).await;
    api.call("POST", packs, Some(&tokens::new_user()), 502)
        .await;
    stub.fail("GET", "/v1/subscriptions", 500, Some(3)).await;
    api.call("DELETE", "/v1/user/delete-account", Some(&user), 502)
        .await;
    let known = store
        .get_user(&UserId::parse(&user).unwrap())
        .await
        .unwrap()
        .unwrap()
        .stripe_customer_id
        .unwrap();
    stub.fail("POST", "/v1/customers", 500, Some(3)).await;
    api.call("POST", packs, Some(&tokens::new_user()), 502)
        .await;
    stub.fail("GET", "/v1/subscriptions", 500, Some(3)).await;
    let failing = apps::event(
        &format!("evt_{}", tokens::new_user()),
        "customer.subscription.updated",
        subscription("sub_1", &known, "active", 1, 2),
    );
    let (body, signature) = signed(&failing);
    api.webhook(body, signature, 502).await;
    assert_ne!(customer, known);

    // Webhooks: received, refused signature, in progress, too large.
    let ok = apps::event(
        &format!("evt_{}", tokens::new_user()),
        "customer.subscription.updated",
        subscription("sub_1", &known, "active", 1, 2),
    );
    let (body, signature) = signed(&ok);
    api.webhook(body.clone(), signature, 200).await;
    api.webhook(body, Some("t=1,v1=00".into()), 400).await;
    let busy = apps::event(
        &format!("evt_{}", tokens::new_user()),
        "invoice.paid",
        json!({"customer": known}),
    );
    store
        .begin_event(busy["id"].as_str().unwrap(), common::unix_now())
        .await
        .unwrap();
    let (body, signature) = signed(&busy);
    api.webhook(body, signature, 409).await;
    let mut huge = ok.clone();
    huge["data"]["object"]["padding"] = json!("x".repeat(300 * 1024));
    let (body, signature) = signed(&huge);
    api.webhook(body, signature, 413).await;

    // Erasure, then the erased user's token everywhere.
    api.call("DELETE", "/v1/user/delete-account", Some(&user), 200)
        .await;
    api.call("DELETE", "/v1/user/delete-account", Some(&user), 200)
        .await;
    // (Deleting again answers 200, checked above.)
    // The catalogue holds nothing of the caller's: it answers as before.
    for (method, path) in bearer_routes().filter(|(method, _)| *method != "DELETE") {
        let expected = if path == "/v1/billing/plans" {
            200
        } else {
            410
        };
        api.call(method, path, Some(&user), expected).await;
    }

    // A body over the cap, on every bearer route.
    let oversized = "x".repeat(common::endpoint::MAX_BEARER_BODY_BYTES + 1);
    for (method, path) in bearer_routes() {
        api.call_with_body(method, path, Some(&user), oversized.clone(), 413)
            .await;
    }

    // Storage down: a second local API on a closed port.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let (_down, down_base) = local_api(&env(&stub, &closed)).await;
    let mut down = Api {
        base: down_base,
        spec: spec.clone(),
        seen: BTreeSet::new(),
        client: reqwest::Client::new(),
    };
    // Every route that reads the table answers 503; the catalogue reads none and answers 200.
    for (method, path) in bearer_routes() {
        if path == "/v1/billing/plans" {
            down.call(method, path, Some(&tokens::new_user()), 200)
                .await;
            continue;
        }
        let body = down
            .call(method, path, Some(&tokens::new_user()), 503)
            .await;
        assert_eq!(body["error"]["details"]["retry_after"], 1);
    }
    let (body, signature) = signed(&ok);
    down.webhook(body, signature, 503).await;

    // Over the per-user Stripe allowance (one request a day here; a run at the day's end waits
    // for the next): a user with a customer and no open session gets 429 from checkout and the
    // portal.
    let day = common::domain::StripeAllowance {
        calls: 1,
        window_secs: 86_400,
    };
    let left = day.retry_after(common::unix_now());
    if left < 120 {
        tokio::time::sleep(std::time::Duration::from_secs(left + 1)).await;
    }
    let mut limited_env = env(&stub, &storage);
    limited_env.push(("STRIPE_CALLS_PER_USER", "1".to_owned()));
    limited_env.push(("STRIPE_CALL_WINDOW_SECS", "86400".to_owned()));
    let (_limited, limited_base) = local_api(&limited_env).await;
    let mut limited = Api {
        base: limited_base,
        spec: spec.clone(),
        seen: BTreeSet::new(),
        client: reqwest::Client::new(),
    };
    let (busy, customer) = integration_tests::apps::customer_of_new_user(&store).await;
    stub.add_customer(&customer, busy.as_str());
    limited
        .call(
            "POST",
            "/v1/stripe/sync-subscription",
            Some(busy.as_str()),
            200,
        )
        .await;
    for path in [
        "/v1/stripe/create-checkout-session",
        "/v1/stripe/create-portal-session",
        "/v1/stripe/create-credit-pack-session",
    ] {
        let body = limited.call("POST", path, Some(busy.as_str()), 429).await;
        assert_eq!(body["error"]["code"], "RATE_LIMITED");
    }

    let seen: BTreeSet<Operation> = api
        .seen
        .union(&down.seen)
        .chain(limited.seen.iter())
        .cloned()
        .collect();
    let missing: Vec<_> = spec.operations().difference(&seen).cloned().collect();
    assert!(
        missing.is_empty(),
        "documented but never produced: {missing:?}"
    );
}
