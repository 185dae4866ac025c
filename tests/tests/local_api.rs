//! `cargo run -p local-api`: serves the endpoints through the Lambdas' handlers and prints a
//! ready-to-paste curl line that works.

use integration_tests::binaries::start_local_api as start;
use integration_tests::{emulator, tokens};
use serde_json::Value;

/// The bearer token and URL of the printed `curl -s -H 'Authorization: Bearer T' URL` line.
fn parse_curl(line: &str) -> (String, String) {
    let token = line
        .split("Bearer ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap();
    let url = line.rsplit(' ').next().unwrap();
    (token.to_owned(), url.to_owned())
}

async fn get(url: &str, token: Option<&str>, method: reqwest::Method) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("local-api answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn printed_curl_line_returns_the_status_json_on_the_embedded_store() {
    let (_child, base, curl) = start(&[]).await;
    let (token, url) = parse_curl(&curl.expect("a curl line is printed without JWT settings"));
    assert_eq!(url, format!("{base}/v1/user/status"));

    let (status, body) = get(&url, Some(&token), reqwest::Method::GET).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 6);
    assert_eq!(body["free_messages_remaining"], 10);
    assert_eq!(body["has_subscription"], false);

    let (status, body) = get(&url, None, reqwest::Method::GET).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let (status, body) = get(&url, Some(&token), reqwest::Method::POST).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );
    let (status, body) = get(
        &format!("{base}/v1/nope"),
        Some(&token),
        reqwest::Method::GET,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    assert_eq!(body["detail"], "Not found.");
}

#[tokio::test]
async fn with_dynamodb_configured_it_stores_there() {
    let storage = emulator::storage_config();
    let endpoint = storage.endpoint.unwrap();
    let secret = "local-api-test-secret-0123456789abcdef";
    let issuer = "https://local.test/auth/v1";
    let (_child, base, curl) = start(&[
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
        ("TABLE_NAME", storage.table_name.as_str()),
        ("AWS_REGION", emulator::REGION),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("JWT_HS256_SECRET", secret),
        ("JWT_ISSUER", issuer),
    ])
    .await;
    assert!(curl.is_none(), "no demo token when JWT settings are given");
    let user = tokens::new_user();
    let token = tokens::hs256(&tokens::claims(&user, issuer), secret);
    let (status, body) = get(
        &format!("{base}/v1/user/status"),
        Some(&token),
        reqwest::Method::GET,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(emulator::items_of(&user).await.len(), 1);
}

#[tokio::test]
async fn billing_endpoints_are_served_with_stripe_settings_and_explained_without() {
    let stub = integration_tests::stripe_stub::StripeStub::start().await;
    let mut env: Vec<(&str, String)> = integration_tests::binaries::stripe_env(&stub.uri());
    env.push(("STRIPE_TIMEOUT_MS", "1000".into()));
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_child, base, curl) = start(&borrowed).await;
    let (token, _) = parse_curl(&curl.expect("demo token"));
    let post = |route: &'static str| {
        let (base, token) = (base.clone(), token.clone());
        async move {
            get(
                &format!("{base}{route}"),
                Some(&token),
                reqwest::Method::POST,
            )
            .await
        }
    };
    let (status, body) = post("/v1/stripe/create-portal-session").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NO_SUBSCRIPTION"))
    );
    let (status, body) = post("/v1/stripe/create-checkout-session").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["checkout_url"]
            .as_str()
            .unwrap()
            .starts_with("https://checkout.stripe.com/")
    );
    let (status, body) = post("/v1/stripe/create-portal-session").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post("/v1/stripe/sync-subscription").await;
    assert_eq!(
        (status, body["subscription_status"].as_str()),
        (200, Some("none"))
    );

    let (_child, base, curl) = start(&[]).await;
    let (token, _) = parse_curl(&curl.expect("demo token"));
    let url = format!("{base}/v1/stripe/create-checkout-session");
    let (status, body) = get(&url, Some(&token), reqwest::Method::POST).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("BILLING_NOT_CONFIGURED"))
    );
}
