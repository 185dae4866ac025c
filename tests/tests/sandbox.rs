//! The Stripe sandbox of `cargo run -p local-api`, without a browser: what its pages refuse,
//! how it delivers and retries webhooks, and how its API answers callers it should not serve.

use std::time::Duration;

use integration_tests::binaries::{LocalApi, start_local_api};
use serde_json::{Value, json};
use stripe_sandbox::{Endpoint, Plan, Sandbox};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A new user's token at `api`.
async fn token(api: &LocalApi) -> String {
    let minted: Value = reqwest::get(format!("{}/local/token", api.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    minted["access_token"].as_str().unwrap().to_owned()
}

/// `method route` at `api` as the bearer of `token`: status and JSON body.
async fn call(api: &LocalApi, method: reqwest::Method, route: &str, token: &str) -> (u16, Value) {
    let response = client()
        .request(method, format!("{}{route}", api.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn status(api: &LocalApi, token: &str) -> Value {
    call(api, reqwest::Method::GET, "/v1/user/status", token)
        .await
        .1
}

/// The URL `route` answers with (`checkout_url` or `portal_url`).
async fn session_url(api: &LocalApi, route: &str, field: &str, token: &str) -> String {
    let (code, body) = call(api, reqwest::Method::POST, route, token).await;
    assert_eq!(code, 200, "{body}");
    body[field].as_str().unwrap().to_owned()
}

/// POSTs a page's form at `url`: status, `Location`, page text.
async fn press(url: &str) -> (u16, Option<String>, String) {
    let response = client().post(url).send().await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (
        response.status().as_u16(),
        location,
        response.text().await.unwrap(),
    )
}

async fn deliveries(sandbox: &str) -> Vec<Value> {
    let log: Value = reqwest::get(format!("{sandbox}/deliveries.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    log.as_array().unwrap().clone()
}

/// `scheme://host:port` of `url`.
fn origin(url: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .origin()
        .ascii_serialization()
}

#[tokio::test]
async fn paying_twice_an_unknown_or_an_expired_session_is_refused_and_changes_nothing() {
    let api = start_local_api(&[]).await;
    let (payer, late) = (token(&api).await, token(&api).await);
    let route = "/v1/stripe/create-checkout-session";
    let checkout = session_url(&api, route, "checkout_url", &payer).await;
    let late_checkout = session_url(&api, route, "checkout_url", &late).await;
    let sandbox = origin(&checkout);

    let (code, location, _) = press(&format!("{checkout}/pay")).await;
    assert_eq!(code, 303);
    assert_eq!(
        location.unwrap(),
        format!("{sandbox}/done/checkout-success")
    );
    let paid = status(&api, &payer).await;
    assert_eq!(
        (
            paid["has_subscription"].as_bool(),
            paid["credits_remaining"].as_i64()
        ),
        (Some(true), Some(1000))
    );
    let delivered = deliveries(&sandbox).await.len();

    let (code, _, page) = press(&format!("{checkout}/pay")).await;
    assert_eq!(code, 409);
    assert!(page.contains("already paid"), "{page}");
    let (code, _, page) = press(&format!("{sandbox}/checkout/cs_test_unknown/pay")).await;
    assert_eq!(code, 404);
    assert!(page.contains("No such Checkout session"), "{page}");
    assert_eq!(
        status(&api, &payer).await,
        paid,
        "a refused payment changes nothing"
    );
    assert_eq!(
        deliveries(&sandbox).await.len(),
        delivered,
        "and sends no event"
    );

    // The other user's next checkout expires their previous session: paying that one is refused.
    let newer = session_url(&api, route, "checkout_url", &late).await;
    let before = status(&api, &late).await;
    let (code, _, page) = press(&format!("{late_checkout}/pay")).await;
    assert_eq!(code, 409);
    assert!(page.contains("expired"), "{page}");
    assert_eq!(status(&api, &late).await, before);
    assert_eq!(before["has_subscription"], false);

    // Renewing the payer's subscription moves the payer's clock a period on, as a Stripe test
    // clock does, and no one else's: the other user's open session still pays.
    let portal = session_url(
        &api,
        "/v1/stripe/create-portal-session",
        "portal_url",
        &payer,
    )
    .await;
    assert_eq!(press(&format!("{portal}/renew")).await.0, 303);
    assert_eq!(press(&format!("{newer}/pay")).await.0, 303);
    let late_paid = status(&api, &late).await;
    assert_eq!(late_paid["has_subscription"], true, "{late_paid}");
    assert_eq!(late_paid["credits_remaining"], 1000);
    // And a user who arrives after the renewal checks out too.
    let third = token(&api).await;
    let checkout = session_url(&api, route, "checkout_url", &third).await;
    assert_eq!(press(&format!("{checkout}/pay")).await.0, 303);
    assert_eq!(status(&api, &third).await["has_subscription"], true);
}

#[tokio::test]
async fn pay_debits_and_a_renewal_show_in_the_credit_history_and_sum_to_the_balance() {
    let api = start_local_api(&[("PLAN_CREDITS", "20")]).await;
    let payer = token(&api).await;
    let checkout = session_url(
        &api,
        "/v1/stripe/create-checkout-session",
        "checkout_url",
        &payer,
    )
    .await;
    assert_eq!(press(&format!("{checkout}/pay")).await.0, 303);
    for _ in 0..3 {
        let (code, body) = call(&api, reqwest::Method::POST, "/local/debit", &payer).await;
        assert_eq!(code, 200, "{body}");
    }
    let portal = session_url(
        &api,
        "/v1/stripe/create-portal-session",
        "portal_url",
        &payer,
    )
    .await;
    assert_eq!(press(&format!("{portal}/renew")).await.0, 303);

    let (code, history) = call(&api, reqwest::Method::GET, "/v1/user/credits", &payer).await;
    assert_eq!(code, 200, "{history}");
    let entries = history["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    let grants: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "period_grant")
        .collect();
    assert_eq!(grants.len(), 2, "{kinds:?}");
    assert_eq!(
        (&grants[0]["granted"], &grants[0]["expired"]),
        (&json!(20), &json!(17))
    );
    assert_eq!(
        (&grants[1]["granted"], &grants[1]["expired"]),
        (&json!(20), &json!(0))
    );
    let used: i64 = entries
        .iter()
        .filter(|e| e["kind"] == "usage")
        .map(|e| e["messages"].as_i64().unwrap())
        .sum();
    assert_eq!(used, 3, "{kinds:?}");
    let sum: i64 = entries.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
    assert_eq!(history["credits_remaining"], 20);
    // Credits from 0, free messages from 10 (the non-subscriber's were never used).
    assert_eq!(sum, 20, "each balance is the sum of its entries: {history}");
    assert_eq!(
        history["free_messages_remaining"],
        status(&api, &payer).await["free_messages_remaining"]
    );
}

/// A local API, a new user's token, and the URL of a Checkout session opened for that user.
async fn new_user_at_checkout() -> (LocalApi, String, String) {
    let api = start_local_api(&[]).await;
    let user = token(&api).await;
    let route = "/v1/stripe/create-checkout-session";
    let checkout = session_url(&api, route, "checkout_url", &user).await;
    (api, user, checkout)
}

#[tokio::test]
async fn cancel_returns_to_the_cancel_url_and_subscribes_nobody() {
    let (api, user, checkout) = new_user_at_checkout().await;
    let (code, location, _) = press(&format!("{checkout}/cancel")).await;
    assert_eq!(code, 303);
    assert_eq!(
        location.unwrap(),
        format!("{}/done/checkout-canceled", origin(&checkout))
    );
    assert_eq!(status(&api, &user).await["has_subscription"], false);
    // The session stays open, as at Stripe: the user may still pay it.
    assert_eq!(press(&format!("{checkout}/pay")).await.0, 303);
    assert_eq!(status(&api, &user).await["has_subscription"], true);
}

#[tokio::test]
async fn cancel_at_period_end_keeps_the_plan_until_the_renewal_ends_it() {
    let (api, user, checkout) = new_user_at_checkout().await;
    assert_eq!(press(&format!("{checkout}/pay")).await.0, 303);
    let portal = session_url(
        &api,
        "/v1/stripe/create-portal-session",
        "portal_url",
        &user,
    )
    .await;

    assert_eq!(
        press(&format!("{portal}/cancel-at-period-end")).await.0,
        303
    );
    let still = status(&api, &user).await;
    assert_eq!(
        (
            still["has_subscription"].as_bool(),
            still["credits_remaining"].as_i64()
        ),
        (Some(true), Some(1000))
    );
    let page = reqwest::get(&portal).await.unwrap().text().await.unwrap();
    assert!(page.contains("cancels at period end"), "{page}");

    assert_eq!(press(&format!("{portal}/renew")).await.0, 303);
    let ended = status(&api, &user).await;
    assert_eq!(ended["has_subscription"], false, "{ended}");
    assert_eq!(ended["credits_remaining"], 0, "{ended}");
    let (code, _, page) = press(&format!("{portal}/cancel-now")).await;
    assert_eq!(code, 409);
    assert!(page.contains("no subscription to manage"), "{page}");
    let (code, _, _) = press(&format!("{portal}/refund-everything")).await;
    assert_eq!(code, 404);
}

/// A sandbox delivering to `endpoint`, retrying after 20 ms, 40 ms, ... up to `attempts` in all.
async fn sandbox_delivering_to(endpoint: &str, attempts: usize) -> Sandbox {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plan = Plan {
        price_id: "price_x".into(),
        name: "pro".into(),
        unit_amount: 999,
        currency: "usd".into(),
        period_secs: 30 * 86_400,
        credits: 10,
    };
    let endpoint = Endpoint {
        url: endpoint.to_owned(),
        secret: "whsec_sandbox_test".into(),
        first_retry: Duration::from_millis(20),
        attempts,
    };
    Sandbox::start(listener, None, vec![plan], Vec::new(), endpoint)
}

/// `pairs` as a form body.
fn encoded(pairs: &[(&str, String)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    form.finish()
}

/// Creates a customer through the sandbox's API (which emits `customer.created`).
async fn create_customer(sandbox: &Sandbox) -> Value {
    reqwest::Client::new()
        .post(format!("{}/v1/customers", sandbox.url()))
        .bearer_auth("sk_test_x")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encoded(&[("metadata[user_id]", "u1".to_owned())]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until every delivery has `attempts` attempts or is delivered.
async fn settled(sandbox: &Sandbox, attempts: usize) -> Vec<stripe_sandbox::Delivery> {
    for _ in 0..200 {
        let log = sandbox.deliveries();
        if !log.is_empty()
            && log
                .iter()
                .all(|d| d.delivered || d.attempts.len() >= attempts)
        {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deliveries never settled: {:?}", sandbox.deliveries());
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_back_off_and_signed_each_time() {
    let ours = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": "down"})))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&ours)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"received": true})))
        .mount(&ours)
        .await;
    let sandbox = sandbox_delivering_to(&format!("{}/webhooks/stripe", ours.uri()), 5).await;
    let customer = create_customer(&sandbox).await;

    let log = settled(&sandbox, 5).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, "customer.created");
    let statuses: Vec<Option<u16>> = log[0].attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
    assert!(log[0].delivered);

    let received = ours.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    for request in &received {
        let signature = request
            .headers
            .get("stripe-signature")
            .map(|v| v.as_bytes());
        let verified = common::webhook::signature::verify(
            signature,
            &request.body,
            "whsec_sandbox_test",
            common::unix_now(),
        );
        assert_eq!(verified, Ok(()), "each attempt is signed for its own time");
        let event: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(event["data"]["object"]["id"], customer["id"]);
    }
}

#[tokio::test]
async fn a_delivery_no_one_accepts_stops_after_its_attempts() {
    let ours = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&ours)
        .await;
    let sandbox = sandbox_delivering_to(&ours.uri(), 4).await;
    create_customer(&sandbox).await;
    let log = settled(&sandbox, 4).await;
    assert_eq!(log[0].attempts.len(), 4);
    assert!(!log[0].delivered);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        ours.received_requests().await.unwrap().len(),
        4,
        "no fifth attempt"
    );

    // Nothing listens: attempts end without an answer, and are logged as such.
    let closed = format!(
        "http://127.0.0.1:{}/",
        integration_tests::binaries::free_port()
    );
    let sandbox = sandbox_delivering_to(&closed, 2).await;
    create_customer(&sandbox).await;
    let log = settled(&sandbox, 2).await;
    assert!(
        log[0]
            .attempts
            .iter()
            .all(|a| a.status.is_none() && a.answer.starts_with("no answer"))
    );
}

#[tokio::test]
async fn the_api_refuses_calls_stripe_would_refuse() {
    let sandbox = sandbox_delivering_to("http://127.0.0.1:9/", 1).await;
    let client = reqwest::Client::new();
    let url = |route: &str| format!("{}{route}", sandbox.url());
    for key in [None, Some("sk_live_real"), Some("pk_test_publishable")] {
        let mut request = client.get(url("/v1/subscriptions"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{key:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    let answer = |route: &'static str, form: Vec<(&'static str, String)>| {
        let request = client
            .post(url(route))
            .bearer_auth("sk_test_x")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encoded(&form));
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (code, body) = answer("/v1/nope", vec![]).await;
    assert_eq!(
        (
            code,
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Unrecognized request URL")
        ),
        (404, true)
    );
    let (code, body) = answer(
        "/v1/checkout/sessions",
        vec![("customer", "cus_missing".into())],
    )
    .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("resource_missing"))
    );
    let customer = create_customer(&sandbox).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = |price: &str| {
        vec![
            ("customer", customer.clone()),
            ("mode", "subscription".to_owned()),
            ("line_items[0][price]", price.to_owned()),
            ("success_url", "http://app/ok".to_owned()),
        ]
    };
    let (code, body) = answer("/v1/checkout/sessions", session("price_other")).await;
    assert_eq!(
        (code, body["error"]["param"].as_str()),
        (400, Some("line_items[0][price]"))
    );
    let (code, body) = answer("/v1/checkout/sessions", session("price_x")).await;
    assert_eq!(code, 200, "{body}");
    let deleted = client
        .delete(url(&format!("/v1/customers/{customer}")))
        .bearer_auth("sk_test_x")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let (code, body) = answer(
        "/v1/billing_portal/sessions",
        vec![("customer", customer.clone())],
    )
    .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("resource_missing"))
    );
    let again = client
        .delete(url(&format!("/v1/customers/{customer}")))
        .bearer_auth("sk_test_x")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}
