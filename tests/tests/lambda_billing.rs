//! The three billing binaries as Lambdas: started against the Runtime API emulator, storing in
//! DynamoDB on the emulator, calling the Stripe stub, fed the sample events of `events/`.

use std::time::Duration;

use integration_tests::auth_admin_stub::AuthAdminStub;
use integration_tests::binaries;
use integration_tests::runtime_api::RuntimeApi;
use integration_tests::stripe_stub::{StripeStub, customer_for_key};
use integration_tests::tokens::{EVENTS_SECRET, EVENTS_USER};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Starts `binary`, feeds it `event`, returns status and body, and checks its logs are clean.
async fn invoke(binary: &str, event: &str, stub: &StripeStub) -> (u16, serde_json::Value) {
    let api = RuntimeApi::start().await;
    let env = binaries::billing_lambda_env(&stub.uri());
    let child = binaries::lambda(binary, api.address(), env)
        .spawn()
        .unwrap();
    let (status, _, body) = api.invoke(binaries::event(event), TIMEOUT).await.http();
    let logs = binaries::output_of(child).await;
    for secret in [
        EVENTS_SECRET,
        integration_tests::stripe_stub::SECRET_KEY,
        EVENTS_USER,
    ] {
        assert!(
            !logs.contains(secret),
            "{binary} logged a secret or raw id:\n{logs}"
        );
    }
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_then_portal_then_sync_through_the_runtime_api() {
    let stub = StripeStub::start().await;

    let (status, body) = invoke(
        "create-checkout-session",
        "create-checkout-session.json",
        &stub,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["checkout_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/checkout/cs_test_", stub.uri()))
    );

    let (status, body) = invoke("create-portal-session", "create-portal-session.json", &stub).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["portal_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/portal/bps_", stub.uri()))
    );
    let portal = stub.sent_to("POST /v1/billing_portal/sessions").await;
    let customer = customer_for_key(&format!("customer-{EVENTS_USER}"));
    assert_eq!(portal[0].field("customer"), Some(customer.as_str()));

    let (status, body) = invoke("sync-subscription", "sync-subscription.json", &stub).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 6);
    assert_eq!(body["subscription_status"], "none");
    let listed = stub.sent_to("GET /v1/subscriptions").await;
    assert!(
        listed
            .iter()
            .all(|s| s.field("customer") == Some(customer.as_str()))
    );
}

#[tokio::test]
async fn delete_account_refuses_to_start_without_a_safe_auth_service_setting() {
    let auth_env = |url: &str, key: Option<&str>| {
        let mut env = binaries::billing_lambda_env("http://127.0.0.1:9");
        env.push(("SUPABASE_URL", url.to_owned()));
        env.extend(key.map(|k| ("SUPABASE_SERVICE_ROLE_KEY", k.to_owned())));
        env
    };
    let key = integration_tests::auth_admin_stub::SERVICE_ROLE_KEY;
    for (env, variable) in [
        (
            binaries::billing_lambda_env("http://127.0.0.1:9"),
            "SUPABASE_URL",
        ),
        (
            auth_env("https://proj.supabase.co", None),
            "SUPABASE_SERVICE_ROLE_KEY",
        ),
        (
            auth_env("http://proj.supabase.co", Some(key)),
            "SUPABASE_URL",
        ),
    ] {
        let logs = binaries::failed_init_output("delete-account", env).await;
        assert!(logs.contains(variable), "{variable}: {logs}");
        assert!(!logs.contains(key), "the key is never logged: {logs}");
    }
}

#[tokio::test]
async fn billing_functions_refuse_to_start_without_stripe_settings() {
    for binary in [
        "create-checkout-session",
        "create-portal-session",
        "sync-subscription",
        "delete-account",
        "stripe-webhook",
    ] {
        let logs = binaries::failed_init_output(binary, binaries::lambda_env()).await;
        assert!(logs.contains("STRIPE_SECRET_KEY"), "{binary}: {logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_binary_answers_its_sample_events() {
    let stub = StripeStub::start().await;
    let api = RuntimeApi::start().await;
    let env = binaries::billing_lambda_env(&stub.uri());
    let child = binaries::lambda("stripe-webhook", api.address(), env)
        .spawn()
        .unwrap();

    for file in ["stripe-webhook.json", "stripe-webhook-base64.json"] {
        let (status, _, body) = api
            .invoke(binaries::resigned_webhook_event(file), TIMEOUT)
            .await
            .http();
        assert_eq!(
            (status, &body),
            (200, &serde_json::json!({"received": true})),
            "{file}"
        );
    }
    let (status, _, body) = api
        .invoke(
            binaries::event("stripe-webhook-bad-signature.json"),
            TIMEOUT,
        )
        .await
        .http();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_SIGNATURE"))
    );
    // As shipped, the signed sample is stale: refused too.
    let (status, _, _) = api
        .invoke(binaries::event("stripe-webhook.json"), TIMEOUT)
        .await
        .http();
    assert_eq!(status, 400);

    let logs = binaries::output_of(child).await;
    assert!(!logs.contains(integration_tests::stripe_stub::WEBHOOK_SECRET));
    // The sample's customer is linked to no one: Stripe is asked only whom it was made for
    // (to close it if that user is being erased), and nothing is written there.
    let sent: Vec<String> = stub.sent().await.into_iter().map(|s| s.route).collect();
    assert!(
        sent.iter()
            .all(|route| route == "GET /v1/customers/cus_sample_unknown"),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delete_account_binary_erases_the_items_and_the_login() {
    let (stub, auth) = (StripeStub::start().await, AuthAdminStub::start().await);
    let api = RuntimeApi::start().await;
    let mut env = binaries::billing_lambda_env(&stub.uri());
    env.extend(binaries::login_env(&auth.uri()));
    let child = binaries::lambda("delete-account", api.address(), env)
        .spawn()
        .unwrap();
    // The sample event, with a fresh user's token (the sample's user is shared by other tests).
    let user = integration_tests::tokens::new_user();
    let sample = binaries::event_as("delete-account.json", &user);
    integration_tests::emulator::seed_items(&user, "CONV", 30).await;
    auth.add_user(&user);

    let (status, _, body) = api.invoke(sample.clone(), TIMEOUT).await.http();
    assert_eq!((status, body), (200, serde_json::json!({"deleted": true})));
    assert_eq!(integration_tests::emulator::items_of(&user).await.len(), 0);
    assert!(!auth.has_user(&user), "the login is gone");
    let (status, _, _) = api.invoke(sample, TIMEOUT).await.http();
    assert_eq!(status, 200, "replay");
    assert_eq!(auth.calls().await.len(), 1, "the replay calls nothing");

    let logs = binaries::output_of(child).await;
    assert!(
        logs.contains("\"audit\":\"erasure\""),
        "an audit line:\n{logs}"
    );
    assert!(
        !logs.contains(&user),
        "the audit line holds a hash, not the id"
    );
}
