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
    let api = start(&[]).await;
    let base = &api.base;
    let (token, url) = parse_curl(
        api.curl()
            .expect("a curl line is printed without JWT settings"),
    );
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
    let api = start(&[
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
        ("TABLE_NAME", storage.table_name.as_str()),
        ("AWS_REGION", emulator::REGION),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("JWT_HS256_SECRET", secret),
        ("JWT_ISSUER", issuer),
    ])
    .await;
    assert!(
        api.curl().is_none(),
        "no demo token when JWT settings are given"
    );
    let base = &api.base;
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
async fn billing_goes_to_stripe_with_its_settings() {
    let stub = integration_tests::stripe_stub::StripeStub::start().await;
    let mut env: Vec<(&str, String)> = integration_tests::binaries::stripe_env(&stub.uri());
    env.push(("STRIPE_TIMEOUT_MS", "1000".into()));
    env.push(("JWT_HS256_SECRET", tokens::EVENTS_SECRET.into()));
    env.push(("JWT_ISSUER", tokens::EVENTS_ISSUER.into()));
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let api = start(&borrowed).await;
    let billing = api.line("billing: ").unwrap_or_default();
    assert_eq!(billing, format!("billing: Stripe at {}", stub.uri()));
    assert!(api.curl().is_none(), "no demo token in front of Stripe");
    let user = tokens::new_user();
    let token = tokens::hs256(
        &tokens::claims(&user, tokens::EVENTS_ISSUER),
        tokens::EVENTS_SECRET,
    );
    let post = |route: &'static str| {
        let (base, token) = (api.base.clone(), token.clone());
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
    let url = body["checkout_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/checkout/", stub.uri())),
        "{url}"
    );
    let (status, body) = post("/v1/stripe/create-portal-session").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post("/v1/stripe/sync-subscription").await;
    assert_eq!(
        (status, body["subscription_status"].as_str()),
        (200, Some("none"))
    );
    assert_eq!(stub.sent_to("POST /v1/customers").await.len(), 1);
}

#[tokio::test]
async fn without_stripe_settings_billing_runs_on_the_sandbox() {
    let api = start(&[]).await;
    let billing = api.line("billing: ").expect("a billing line");
    let sandbox = billing
        .strip_prefix("billing: Stripe sandbox at ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("the banner names the sandbox: {billing}"));
    let (token, _) = parse_curl(api.curl().expect("demo token"));
    let url = format!("{}/v1/stripe/create-checkout-session", api.base);
    let (status, body) = get(&url, Some(&token), reqwest::Method::POST).await;
    assert_eq!(status, 200, "{body}");
    let checkout = body["checkout_url"].as_str().unwrap();
    assert!(
        checkout.starts_with(&format!("{sandbox}/checkout/cs_test_")),
        "{checkout}"
    );
    let page = reqwest::get(checkout).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("id=\"pay\"") && html.contains("1000 credits"),
        "{html}"
    );
}

#[tokio::test]
async fn tokens_are_minted_for_any_user_and_messages_debited_as_the_chat_service_does() {
    let api = start(&[]).await;
    let user = tokens::new_user();
    let minted = reqwest::get(format!("{}/local/token?user_id={user}", api.base))
        .await
        .unwrap();
    assert_eq!(minted.status(), 200);
    let minted: Value = minted.json().await.unwrap();
    assert_eq!(minted["user_id"], user.as_str());
    let token = minted["access_token"].as_str().unwrap();
    let debit = format!("{}/local/debit", api.base);
    let (status, body) = get(&debit, Some(token), reqwest::Method::POST).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["paid_with"].as_str(), body["remaining"].as_i64()),
        (Some("free_messages"), Some(9))
    );
    let status_url = format!("{}/v1/user/status", api.base);
    let (_, status) = get(&status_url, Some(token), reqwest::Method::GET).await;
    assert_eq!(status["free_messages_remaining"], 9);

    let (code, body) = get(
        &format!("{}/local/token?user_id=admin", api.base),
        None,
        reqwest::Method::GET,
    )
    .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("INVALID_USER_ID"))
    );
    let (code, body) = get(&debit, None, reqwest::Method::POST).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let (_, status) = get(&status_url, Some(token), reqwest::Method::GET).await;
    assert_eq!(
        status["free_messages_remaining"], 9,
        "refused requests changed nothing"
    );

    let with_jwt = start(&[(
        "JWT_HS256_SECRET",
        "a-secret-set-by-the-operator-0123456789",
    )])
    .await;
    let (code, body) = get(
        &format!("{}/local/token", with_jwt.base),
        None,
        reqwest::Method::GET,
    )
    .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("TOKENS_NOT_MINTED"))
    );
}

/// Issue 25: a token for any user is minted only in front of nothing real (the embedded store and
/// the sandbox), only for a loopback peer naming a loopback host (a page that rebinds its name
/// to 127.0.0.1 gets nothing), and a live Stripe key stops the local API at start.
#[tokio::test]
async fn tokens_are_minted_only_on_loopback_in_front_of_nothing_real() {
    let storage = emulator::storage_config();
    let endpoint = storage.endpoint.clone().unwrap();
    let with_table = start(&[
        ("DYNAMODB_ENDPOINT", &endpoint),
        ("TABLE_NAME", &storage.table_name),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ])
    .await;
    assert!(
        with_table.curl().is_none(),
        "no demo token in front of a real table"
    );
    let (code, body) = get(
        &format!("{}/local/token", with_table.base),
        None,
        reqwest::Method::GET,
    )
    .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("TOKENS_NOT_MINTED"))
    );

    let api = start(&[]).await;
    for host in [
        "attacker.example",
        "127.0.0.1.attacker.example:8080",
        "127.0.0.1:1@attacker.example",
    ] {
        let response = reqwest::Client::new()
            .get(format!("{}/local/token", api.base))
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{host}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "LOCAL_ONLY", "{host}");
        assert!(body.get("access_token").is_none());
    }
    let (code, _) = get(
        &format!("{}/local/token", api.base),
        None,
        reqwest::Method::GET,
    )
    .await;
    assert_eq!(code, 200, "loopback to loopback is served");

    let live_key = "sk_live_0123456789abcdefghijklmnop";
    let output = tokio::process::Command::new(integration_tests::binaries::path("local-api"))
        .args([
            "--addr",
            &format!("127.0.0.1:{}", integration_tests::binaries::free_port()),
        ])
        .env_clear()
        .env("STRIPE_SECRET_KEY", live_key)
        .env("STRIPE_PRICE_ID", "price_1")
        .env("PLAN_CREDITS", "1000")
        .output()
        .await
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("STRIPE_SECRET_KEY"), "{printed}");
    assert!(!printed.contains(live_key), "the key is never printed");
}

#[test]
fn help_exits_zero_and_a_bad_address_exits_two() {
    let bin = integration_tests::binaries::path("local-api");
    let help = std::process::Command::new(&bin)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--addr"));
    let bad = std::process::Command::new(&bin)
        .args(["--addr", "not-an-address"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test]
async fn a_browser_origin_allowed_gets_its_preflight_and_others_get_no_cors_headers() {
    let api = integration_tests::binaries::start_local_api(&[(
        "ALLOWED_ORIGINS",
        "http://localhost:5000, https://dev.chuk.chat",
    )])
    .await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/user/status", api.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("http://localhost:5000").await.unwrap();
    assert_eq!(allowed.status(), 204);
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:5000"
    );
    assert_eq!(headers["access-control-allow-methods"], "GET,POST,DELETE");
    assert_eq!(
        headers["access-control-allow-headers"],
        "authorization,content-type"
    );
    let stranger = preflight("https://evil.example").await.unwrap();
    assert_eq!(stranger.status(), 204);
    assert!(
        !stranger
            .headers()
            .contains_key("access-control-allow-origin")
    );

    // The request itself carries the origin back, its answer unchanged (401 without a token).
    let get = client
        .get(format!("{}/v1/user/status", api.base))
        .header("origin", "https://dev.chuk.chat")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 401);
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "https://dev.chuk.chat"
    );
    // Without the preflight's header, OPTIONS is an ordinary request: 405 with Allow.
    let options = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/user/status", api.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 405);
}

#[tokio::test]
async fn with_a_public_host_checkout_hands_out_urls_a_phone_can_open() {
    let sandbox_port = integration_tests::binaries::free_port();
    let port = sandbox_port.to_string();
    let args = ["--public-host", "10.0.2.2", "--sandbox-port", &port];
    let api = integration_tests::binaries::start_local_api_with(&args, &[]).await;
    let public = format!("http://10.0.2.2:{sandbox_port}");
    assert!(
        api.banner
            .iter()
            .any(|l| l.contains(&format!("Stripe sandbox at {public}"))),
        "{:?}",
        api.banner
    );
    let (token, _) = parse_curl(api.curl().expect("a curl line"));
    let (status, body) = get(
        &format!("{}/v1/stripe/create-checkout-session", api.base),
        Some(&token),
        reqwest::Method::POST,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let url = body["checkout_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{public}/")), "{url}");
}

#[tokio::test]
async fn the_deploy_smoke_test_passes_on_a_stage_that_starts_and_fails_on_one_that_does_not() {
    let smoke = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/smoke");
    let run = |base: String| {
        let smoke = smoke.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(smoke)
                .arg(base)
                .env("SMOKE_RETRIES", "0")
                .output()
        })
    };
    // The same handlers as the deployed stage: every route answers the contract's JSON.
    let api = start(&[]).await;
    let passed = run(api.base.clone()).await.unwrap().unwrap();
    let printed = String::from_utf8_lossy(&passed.stdout);
    assert!(passed.status.success(), "{printed}");
    assert_eq!(printed.lines().filter(|l| l.starts_with("ok ")).count(), 10);
    // Nothing listening (a stage whose functions never start answers no JSON): it fails.
    let port = integration_tests::binaries::free_port();
    let failed = run(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stdout).contains("FAIL GET /v1/user/status"));
}
