//! The secrets as deployed: no value in any function's environment, each read from Secrets
//! Manager at cold start under the function's policy (the IAM proxy in front of moto refuses any
//! other), and a rotated value reaching a new container with no redeploy.

use std::collections::BTreeMap;

use common::secrets::{Secret, Secrets};
use integration_tests::iam::{Access, BATCH_SECRETS, Policies};
use integration_tests::suite_secrets::{self, SUITE_SECRETS};
use integration_tests::{binaries, emulator};
use serde_norway::Value as Yaml;

fn template() -> Yaml {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// The emulator's endpoint (the IAM proxy's, in the suite).
fn endpoint() -> String {
    emulator::storage_config().endpoint.expect("the emulator")
}

/// A cold start's environment (the harness's credentials, the emulator's Secrets Manager)
/// naming the Stripe key's secret `name`.
fn stripe_key_named(name: &str) -> impl Fn(&str) -> Option<String> + use<> {
    cold_start(endpoint(), &[("STRIPE_SECRET_KEY_SECRET_ID", name)])
}

/// A Secrets Manager answer in AWS's JSON protocol, from a wiremock stand-in.
fn aws_json(status: u16, body: serde_json::Value) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(body)
}

/// Matches the requests of one Secrets Manager operation.
fn operation(name: &str) -> wiremock::matchers::HeaderExactMatcher {
    wiremock::matchers::header("x-amz-target", format!("secretsmanager.{name}"))
}

/// A secret's current value as Secrets Manager answers it.
fn secret_value(name: &str, value: &str) -> serde_json::Value {
    serde_json::json!({
        "ARN": format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"),
        "Name": name, "SecretString": value, "VersionId": uuid::Uuid::new_v4().to_string(),
        "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.7e9,
    })
}

/// A cold start's environment (the harness's credentials) on the Secrets Manager at `endpoint`,
/// naming each `(id variable, secret id)` of `ids`.
fn cold_start(
    endpoint: String,
    ids: &[(&'static str, &str)],
) -> impl Fn(&str) -> Option<String> + use<> {
    let ids: Vec<(&'static str, String)> = ids
        .iter()
        .map(|(var, id)| (*var, (*id).to_owned()))
        .collect();
    move |key: &str| match key {
        "SECRETS_MANAGER_ENDPOINT" => Some(endpoint.clone()),
        "AWS_REGION" => Some(emulator::REGION.into()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".into()),
        _ => ids
            .iter()
            .find(|(var, _)| *var == key)
            .map(|(_, id)| id.clone()),
    }
}

#[test]
fn no_function_holds_a_secret_value_and_each_may_read_the_secrets_it_names() {
    let doc = template();
    let globals = doc["Globals"]["Function"]["Environment"]["Variables"].clone();
    let policies = Policies::from_template();
    let mut checked = 0;
    for (_, resource) in doc["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let own = resource["Properties"]["Environment"]["Variables"].clone();
        let mut env = BTreeMap::new();
        for variables in [&globals, &own] {
            for (key, value) in variables.as_mapping().into_iter().flatten() {
                env.insert(key.as_str().unwrap().to_owned(), value.clone());
            }
        }
        for (key, value) in &env {
            let text = serde_norway::to_string(value).unwrap();
            assert!(
                !text.contains("resolve:secretsmanager"),
                "{binary}: {key} resolves a secret into the environment"
            );
            for (secret, parameter, ..) in SUITE_SECRETS {
                assert_ne!(key, secret.variable(), "{binary}: a secret's value");
                if key != secret.id_variable() || !text.contains(parameter) {
                    continue;
                }
                // Named, and granted; a function that takes no token is not even told the
                // token secret's name.
                let access = Access {
                    action: "secretsmanager:GetSecretValue".into(),
                    resource: format!("secret/{parameter}"),
                };
                let takes_no_token = matches!(binary, "stripe-webhook" | "reconcile");
                assert!(
                    secret != Secret::JwtHs256 || !takes_no_token,
                    "{binary} is named the token secret"
                );
                assert!(
                    policies.granted(binary).contains(&access),
                    "{binary}: names {parameter} but may not read it"
                );
                // Read in one batch, which needs its own action.
                let batch = Access {
                    action: BATCH_SECRETS.into(),
                    resource: "*".into(),
                };
                assert!(
                    policies.granted(binary).contains(&batch),
                    "{binary}: names {parameter} but may not read a batch"
                );
                checked += 1;
            }
        }
    }
    // The token secret in 9 functions, the Stripe key in 8, the signing secret and the
    // service-role key in one each.
    assert_eq!(checked, 19, "secrets named");
}

#[tokio::test]
async fn a_rotated_secret_reaches_a_new_container_without_a_redeploy() {
    let client = reqwest::Client::new();
    let name = format!("rotation/{}", uuid::Uuid::new_v4());
    let first = serde_json::json!({"Name": name, "SecretString": "sk_test_before_rotation"});
    let (status, answer) =
        suite_secrets::call(&client, &endpoint(), "test", "CreateSecret", first).await;
    assert_eq!(status, 200, "{answer}");
    let env = stripe_key_named(&name);
    // A cold start reads the value that stands...
    let container = Secrets::fetch(&[Secret::StripeKey], &env).await.unwrap();
    let key = container.get("STRIPE_SECRET_KEY", |_| None);
    assert_eq!(key.as_deref(), Some("sk_test_before_rotation"));
    // ...and after a rotation (a new version, nothing redeployed) the next one reads the new.
    let rotated = serde_json::json!({"SecretId": name, "SecretString": "sk_test_after_rotation"});
    let (status, answer) =
        suite_secrets::call(&client, &endpoint(), "test", "PutSecretValue", rotated).await;
    assert_eq!(status, 200, "{answer}");
    let next = Secrets::fetch(&[Secret::StripeKey], &env).await.unwrap();
    let key = next.get("STRIPE_SECRET_KEY", |_| None);
    assert_eq!(key.as_deref(), Some("sk_test_after_rotation"));
    // The warm container keeps what it read until it is recycled.
    let warm = container.get("STRIPE_SECRET_KEY", |_| None);
    assert_eq!(warm.as_deref(), Some("sk_test_before_rotation"));
}

#[tokio::test]
async fn a_secret_outside_the_function_s_policy_stops_it_at_init_without_showing_a_value() {
    // user-status may read the token secret; naming the Stripe key's secret instead is refused.
    let mut env: Vec<(&str, String)> = binaries::lambda_env()
        .into_iter()
        .filter(|(key, _)| *key != "JWT_HS256_SECRET")
        .collect();
    env.push((
        "JWT_HS256_SECRET_SECRET_ID",
        "suite/stripe-secret-key".into(),
    ));
    env.push(("SECRETS_MANAGER_ENDPOINT", endpoint()));
    let printed = binaries::failed_init_output("user-status", env).await;
    assert!(
        printed.contains("JWT_HS256_SECRET_SECRET_ID"),
        "names the variable: {printed}"
    );
    assert!(printed.contains("AccessDeniedException"), "{printed}");
    for (.., value) in SUITE_SECRETS {
        assert!(
            !printed.contains(value),
            "a secret's value printed: {printed}"
        );
    }
}

#[tokio::test]
async fn a_secret_set_both_ways_or_empty_is_refused() {
    let both = |key: &str| match key {
        "STRIPE_SECRET_KEY_SECRET_ID" => Some("suite/stripe-secret-key".into()),
        "STRIPE_SECRET_KEY" => Some("sk_test_also_here".into()),
        _ => None,
    };
    let err = Secrets::fetch(&[Secret::StripeKey], both)
        .await
        .unwrap_err();
    assert_eq!(err.variable, "STRIPE_SECRET_KEY_SECRET_ID");

    let client = reqwest::Client::new();
    let name = format!("empty/{}", uuid::Uuid::new_v4());
    let blank = serde_json::json!({"Name": name, "SecretString": " "});
    let (status, _) =
        suite_secrets::call(&client, &endpoint(), "test", "CreateSecret", blank).await;
    assert_eq!(status, 200);
    let env = stripe_key_named(&name);
    let err = Secrets::fetch(&[Secret::StripeKey], env).await.unwrap_err();
    assert_eq!(err.variable, "STRIPE_SECRET_KEY_SECRET_ID");
    assert!(err.problem.contains("without a string value"), "{err}");
}

#[tokio::test]
async fn a_cold_start_reads_all_its_secrets_in_one_call() {
    // A stand-in that answers one BatchGetSecretValue with the three secrets of delete-account,
    // and counts the calls.
    let server = wiremock::MockServer::start().await;
    let answer = serde_json::json!({
        "SecretValues": [
            secret_value("one/jwt", "jwt-secret-value"),
            secret_value("one/stripe", "sk_test_one_call"),
            secret_value("one/role", "service-role-value"),
        ],
        "Errors": [],
    });
    wiremock::Mock::given(operation("BatchGetSecretValue"))
        .respond_with(aws_json(200, answer))
        .mount(&server)
        .await;
    let env = cold_start(
        server.uri(),
        &[
            ("JWT_HS256_SECRET_SECRET_ID", "one/jwt"),
            ("STRIPE_SECRET_KEY_SECRET_ID", "one/stripe"),
            ("SUPABASE_SERVICE_ROLE_KEY_SECRET_ID", "one/role"),
        ],
    );
    let wanted = [Secret::JwtHs256, Secret::StripeKey, Secret::ServiceRoleKey];
    let secrets = Secrets::fetch(&wanted, env).await.unwrap();
    let got = |name| secrets.get(name, |_| None);
    assert_eq!(got("JWT_HS256_SECRET").as_deref(), Some("jwt-secret-value"));
    assert_eq!(
        got("STRIPE_SECRET_KEY").as_deref(),
        Some("sk_test_one_call")
    );
    let role = got("SUPABASE_SERVICE_ROLE_KEY");
    assert_eq!(role.as_deref(), Some("service-role-value"));
    let calls = server.received_requests().await.unwrap();
    assert_eq!(calls.len(), 1, "one round trip at a cold start");
    let asked: serde_json::Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(
        asked,
        serde_json::json!({"SecretIdList": ["one/jwt", "one/stripe", "one/role"]})
    );
}

#[tokio::test]
async fn a_throttled_batch_reads_each_secret_on_its_own_without_retrying_the_batch() {
    // BatchGetSecretValue's quota is 100 calls per second per account and Region, not
    // adjustable; Secrets Manager refuses the call over it with 400 ThrottlingException. A burst
    // of cold starts then reads each secret with GetSecretValue (10,000 per second).
    let server = wiremock::MockServer::start().await;
    let throttled =
        serde_json::json!({"__type": "ThrottlingException", "message": "Rate exceeded"});
    wiremock::Mock::given(operation("BatchGetSecretValue"))
        .respond_with(aws_json(400, throttled))
        .mount(&server)
        .await;
    for (name, value) in [
        ("one/stripe", "sk_test_each"),
        ("one/webhook", "whsec_each"),
    ] {
        wiremock::Mock::given(operation("GetSecretValue"))
            .and(wiremock::matchers::body_json(
                serde_json::json!({"SecretId": name}),
            ))
            .respond_with(aws_json(200, secret_value(name, value)))
            .mount(&server)
            .await;
    }
    let env = cold_start(
        server.uri(),
        &[
            ("STRIPE_SECRET_KEY_SECRET_ID", "one/stripe"),
            ("STRIPE_WEBHOOK_SECRET_SECRET_ID", "one/webhook"),
        ],
    );
    let wanted = [Secret::StripeKey, Secret::StripeWebhook];
    let secrets = Secrets::fetch(&wanted, env).await.unwrap();
    let got = |name| secrets.get(name, |_| None);
    assert_eq!(got("STRIPE_SECRET_KEY").as_deref(), Some("sk_test_each"));
    assert_eq!(got("STRIPE_WEBHOOK_SECRET").as_deref(), Some("whsec_each"));
    let calls = server.received_requests().await.unwrap();
    let operations: Vec<_> = calls
        .iter()
        .map(|call| call.headers["x-amz-target"].to_str().unwrap().to_owned())
        .collect();
    let batches = operations
        .iter()
        .filter(|op| op.ends_with(".BatchGetSecretValue"));
    assert_eq!(
        batches.count(),
        1,
        "the batch is not retried: {operations:?}"
    );
    let each = operations
        .iter()
        .filter(|op| op.ends_with(".GetSecretValue"));
    assert_eq!(each.count(), 2, "one call per secret: {operations:?}");
}

#[tokio::test]
async fn a_secret_that_does_not_exist_stops_init_naming_its_variable() {
    // Secrets Manager answers a missing secret in the batch's Errors, beside the ones it read.
    let client = reqwest::Client::new();
    let name = format!("present/{}", uuid::Uuid::new_v4());
    let present = serde_json::json!({"Name": name, "SecretString": "whsec_present"});
    let (status, _) =
        suite_secrets::call(&client, &endpoint(), "test", "CreateSecret", present).await;
    assert_eq!(status, 200);
    let missing = format!("missing/{}", uuid::Uuid::new_v4());
    let env = cold_start(
        endpoint(),
        &[
            ("STRIPE_WEBHOOK_SECRET_SECRET_ID", &name),
            ("STRIPE_SECRET_KEY_SECRET_ID", &missing),
        ],
    );
    let wanted = [Secret::StripeKey, Secret::StripeWebhook];
    let err = Secrets::fetch(&wanted, env).await.unwrap_err();
    assert_eq!(err.variable, "STRIPE_SECRET_KEY_SECRET_ID");
    assert!(err.problem.contains("could not read"), "{err}");
    assert!(!err.to_string().contains("whsec_present"), "{err}");
}
