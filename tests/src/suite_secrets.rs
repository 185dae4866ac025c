//! The suite's secrets in Secrets Manager (moto, behind the IAM proxy), as an operator's deploy
//! stores them: one per secret parameter of `template.yaml`, under a name of the suite's stack.
//! The proxy creates them when it starts ([`seed`]); a Lambda of the suite names them by id
//! ([`by_id`]) and reads them at cold start under its policy, as deployed.

use common::secrets::Secret;

/// Each secret: its `template.yaml` parameter, its name in the suite's stack, its value.
pub const SUITE_SECRETS: [(Secret, &str, &str, &str); 4] = [
    (
        Secret::JwtHs256,
        "JwtHs256SecretId",
        "suite/jwt-hs256-secret",
        crate::tokens::EVENTS_SECRET,
    ),
    (
        Secret::StripeKey,
        "StripeSecretKeySecretId",
        "suite/stripe-secret-key",
        crate::stripe_stub::SECRET_KEY,
    ),
    (
        Secret::StripeWebhook,
        "StripeWebhookSecretId",
        "suite/stripe-webhook-secret",
        crate::stripe_stub::WEBHOOK_SECRET,
    ),
    (
        Secret::ServiceRoleKey,
        "SupabaseServiceRoleKeySecretId",
        "suite/supabase-service-role-key",
        crate::auth_admin_stub::SERVICE_ROLE_KEY,
    ),
];

/// The template parameter whose secret is named `name` in the suite's stack.
pub fn parameter_of(name: &str) -> Option<&'static str> {
    SUITE_SECRETS
        .iter()
        .find(|(_, _, n, _)| *n == name)
        .map(|(_, parameter, ..)| *parameter)
}

/// A Lambda's environment as deployed: each secret's value that is the suite's is replaced by
/// its id (`<VARIABLE>_SECRET_ID`), with Secrets Manager at `endpoint`. A value of a test's own
/// (a wrong key on purpose) stays as it is, read as the local API reads it.
pub fn by_id(env: Vec<(String, String)>, endpoint: &str) -> Vec<(String, String)> {
    let mut named = false;
    let mut out: Vec<(String, String)> = env
        .into_iter()
        .map(|(key, value)| {
            let suite = SUITE_SECRETS
                .iter()
                .find(|(secret, .., v)| secret.variable() == key && *v == value);
            match suite {
                Some((secret, _, name, _)) => {
                    named = true;
                    (secret.id_variable().to_owned(), (*name).to_owned())
                }
                None => (key, value),
            }
        })
        .collect();
    if named {
        out.push(("SECRETS_MANAGER_ENDPOINT".into(), endpoint.into()));
    }
    out
}

/// A SigV4-shaped header naming Secrets Manager, by which moto's server routes a request (it
/// checks no signature), signed by `access_key`.
fn authorization(access_key: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/20260101/{}/secretsmanager/aws4_request, \
         SignedHeaders=host, Signature=0",
        crate::emulator::REGION
    )
}

/// Calls Secrets Manager's `operation` at `endpoint` with `body`, as `access_key`; returns the
/// status and the JSON answer.
pub async fn call(
    client: &reqwest::Client,
    endpoint: &str,
    access_key: &str,
    operation: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let answer = client
        .post(endpoint)
        .header("x-amz-target", format!("secretsmanager.{operation}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", authorization(access_key))
        .body(body.to_string())
        .send()
        .await
        .expect("Secrets Manager answers");
    let status = answer.status().as_u16();
    let json = answer.json().await.unwrap_or_default();
    (status, json)
}

/// Creates the suite's secrets at `endpoint` (moto), or sets their values where they exist.
pub async fn seed(client: &reqwest::Client, endpoint: &str) {
    for (_, _, name, value) in SUITE_SECRETS {
        let created = serde_json::json!({"Name": name, "SecretString": value});
        let (status, _) = call(client, endpoint, "test", "CreateSecret", created).await;
        if status != 200 {
            let put = serde_json::json!({"SecretId": name, "SecretString": value});
            let (status, answer) = call(client, endpoint, "test", "PutSecretValue", put).await;
            assert_eq!(status, 200, "seeding {name}: {answer}");
        }
    }
}
