//! The user-status binary as a Lambda: started with `AWS_LAMBDA_RUNTIME_API` pointing at the
//! Runtime API emulator, fed the sample events of `events/`, storing in DynamoDB on the emulator.

use std::time::Duration;

use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::tokens::{EVENTS_SECRET, EVENTS_USER};
use integration_tests::{binaries, emulator};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(20);

fn response(outcome: Outcome) -> (u16, Value, Value) {
    outcome.http()
}

fn with(
    mut env: Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<String>,
) -> Vec<(&'static str, String)> {
    env.retain(|(k, _)| *k != name);
    env.extend(value.map(|v| (name, v)));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_events_get_their_documented_answers_through_the_runtime_api() {
    let api = RuntimeApi::start().await;
    let child = binaries::lambda("user-status", api.address(), binaries::lambda_env())
        .spawn()
        .unwrap();

    let (status, headers, body) = response(
        api.invoke(binaries::event("user-status.json"), TIMEOUT)
            .await,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "credits_remaining",
            "current_plan",
            "free_messages_remaining",
            "free_messages_total",
            "has_subscription",
            "subscription_status"
        ]
    );
    assert_eq!(body["has_subscription"], false);
    assert_eq!(body["current_plan"], "free");
    assert_eq!(body["subscription_status"], "none");
    assert_eq!(body["free_messages_total"], 10);
    assert!(body["credits_remaining"].is_i64() && body["free_messages_remaining"].is_i64());

    // The record was created in DynamoDB, once, under the user's partition.
    let items = emulator::items_of(EVENTS_USER).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sk"].as_s().unwrap(), "PROFILE");

    // A warm invocation of the same process answers the same.
    let (status, _, again) = response(
        api.invoke(binaries::event("user-status.json"), TIMEOUT)
            .await,
    );
    assert_eq!((status, &again), (200, &body));

    let (status, headers, body) = response(
        api.invoke(binaries::event("user-status-no-token.json"), TIMEOUT)
            .await,
    );
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .as_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    assert_eq!(body["detail"], body["error"]["message"]);

    let (status, headers, body) = response(
        api.invoke(binaries::event("user-status-wrong-method.json"), TIMEOUT)
            .await,
    );
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET");
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    assert_eq!(
        emulator::items_of(EVENTS_USER).await.len(),
        1,
        "nothing more was written"
    );

    let logs = binaries::output_of(child).await;
    let token = binaries::event("user-status.json")["headers"]["authorization"]
        .as_str()
        .unwrap()["Bearer ".len()..]
        .to_owned();
    assert!(!logs.contains(&token), "a token reached the logs:\n{logs}");
    assert!(!logs.contains(EVENTS_SECRET), "the secret reached the logs");
    assert!(
        !logs.contains(EVENTS_USER),
        "a raw user id reached the logs"
    );

    // One access line per request: route, request id, status, latency, user hash.
    let access: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request")
        .collect();
    assert_eq!(access.len(), 4, "one line per invocation:\n{logs}");
    let first = &access[0];
    assert_eq!(first["status"], 200);
    assert!(first["latency_us"].is_u64());
    assert_eq!(first["span"]["route"], "GET /v1/user/status");
    assert_eq!(first["span"]["request_id"], "JKJaXmPLvHcESHA=");
    let hash = common::domain::UserId::parse(EVENTS_USER).unwrap().hash();
    assert_eq!(first["span"]["user"], hash.as_str());
    assert_eq!(access[2]["status"], 401);
    assert!(
        access[2]["span"].get("user").is_none(),
        "no user before authentication"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_down_is_503_with_retry_after_never_a_zero_balance() {
    let api = RuntimeApi::start().await;
    let closed = format!("http://127.0.0.1:{}", binaries::free_port());
    let env = with(binaries::lambda_env(), "DYNAMODB_ENDPOINT", Some(closed));
    let _child = binaries::lambda("user-status", api.address(), env)
        .spawn()
        .unwrap();

    let (status, headers, body) = response(
        api.invoke(binaries::event("user-status.json"), TIMEOUT)
            .await,
    );
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert!(body.get("credits_remaining").is_none());
}

#[tokio::test]
async fn missing_configuration_stops_init_naming_the_variable_not_the_values() {
    let env = with(binaries::lambda_env(), "TABLE_NAME", None);
    let logs = binaries::failed_init_output("user-status", env).await;
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("TABLE_NAME")).collect();
    assert_eq!(lines.len(), 1, "one clear line:\n{logs}");
    assert!(lines[0].contains("\"level\":\"ERROR\""));
    assert!(!logs.contains(EVENTS_SECRET));

    // A Lambda never starts without JWT settings, nor without its role's credentials (which
    // Lambda always sets: no other credential source is ever probed).
    for variable in [
        "JWT_HS256_SECRET",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        let env = with(binaries::lambda_env(), variable, None);
        let logs = binaries::failed_init_output("user-status", env).await;
        assert!(logs.contains(variable), "{variable}:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_trace_level_no_log_line_carries_a_token_a_signature_or_a_webhook_body() {
    let stub = integration_tests::stripe_stub::StripeStub::start().await;
    let trace = |env: Vec<(&'static str, String)>| with(env, "RUST_LOG", Some("trace".into()));

    let api = RuntimeApi::start().await;
    let user_status = binaries::lambda("user-status", api.address(), trace(binaries::lambda_env()));
    let (mut command, log) = to_file(user_status);
    let status = command.spawn().unwrap();
    let event = binaries::event("user-status.json");
    let token = event["headers"]["authorization"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(response(api.invoke(event, TIMEOUT).await).0, 200);
    let logs = read_log(status, &log).await;
    assert!(logs.contains("\"level\":\"TRACE\""), "trace is on:\n{logs}");
    let bearer = token.trim_start_matches("Bearer ");
    assert!(!logs.contains(bearer), "the token never appears:\n{logs}");
    assert!(!logs.contains(&bearer[..20]), "nor a piece of it");
    // The AWS SDK's own TRACE lines would carry the DynamoDB request and answer: the user id
    // in the key, the balances.
    assert!(
        !logs.contains(integration_tests::tokens::EVENTS_USER),
        "the user id never appears:\n{logs}"
    );
    assert!(!logs.contains("USER#"), "no DynamoDB key or item either");

    let api = RuntimeApi::start().await;
    let env = trace(binaries::billing_lambda_env(&stub.uri()));
    let (mut command, log) = to_file(binaries::lambda("stripe-webhook", api.address(), env));
    let webhook = command.spawn().unwrap();
    let event = binaries::resigned_webhook_event("stripe-webhook.json");
    let signature = event["headers"]["stripe-signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = event["body"].as_str().unwrap().to_owned();
    assert_eq!(response(api.invoke(event, TIMEOUT).await).0, 200);
    let logs = read_log(webhook, &log).await;
    let v1 = signature.split("v1=").nth(1).unwrap();
    assert!(!logs.contains(v1), "the signature never appears:\n{logs}");
    assert!(
        !logs.contains("raw JSON event"),
        "the raw event is never logged:\n{logs}"
    );
    let livemode = body.find("\"livemode\"").map(|at| &body[at..at + 16]);
    assert!(
        livemode.is_none_or(|piece| !logs.contains(piece)),
        "no piece of the body either"
    );
}

/// `command` with its output in a fresh file (a trace-level run writes more than a pipe holds).
fn to_file(mut command: tokio::process::Command) -> (tokio::process::Command, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("trace-{}.log", uuid::Uuid::new_v4().simple()));
    let file = std::fs::File::create(&path).unwrap();
    command.stdout(file.try_clone().unwrap()).stderr(file);
    (command, path)
}

/// Stops `child` and returns what it wrote to `log`.
async fn read_log(mut child: tokio::process::Child, log: &std::path::Path) -> String {
    let _ = child.kill().await;
    let text = std::fs::read_to_string(log).unwrap();
    let _ = std::fs::remove_file(log);
    text
}
