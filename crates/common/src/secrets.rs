//! The secrets a function holds, read from AWS Secrets Manager at cold start: no secret value is
//! in any function's environment (where `lambda:GetFunctionConfiguration` shows it), and a
//! rotated secret reaches every new container without a redeploy.
//!
//! Each secret is named by a variable of its own, `<VARIABLE>_SECRET_ID` (the secret's name or
//! ARN: `STRIPE_SECRET_KEY_SECRET_ID` for `STRIPE_SECRET_KEY`); a function fetches only those its
//! [`crate::app::Needs`] use, in one `BatchGetSecretValue` call (one round trip, and one TLS
//! handshake, at cold start, however many it reads), or one call per secret when the batch
//! fails. The value itself in `<VARIABLE>` is still read where no id is set (the local API, the
//! operators' tool, the tests); setting both is refused.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::operation::batch_get_secret_value::BatchGetSecretValueOutput;
use futures_util::future::join_all;

use crate::config::{ConfigError, Vars};

/// One secret of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// The auth provider's legacy HS256 JWT secret (`JWT_HS256_SECRET`).
    JwtHs256,
    /// The Stripe secret or restricted key (`STRIPE_SECRET_KEY`).
    StripeKey,
    /// The Stripe webhook signing secret (`STRIPE_WEBHOOK_SECRET`).
    StripeWebhook,
    /// The auth project's service-role key (`SUPABASE_SERVICE_ROLE_KEY`).
    ServiceRoleKey,
}

impl Secret {
    /// The variable the configuration reads the value by.
    pub fn variable(self) -> &'static str {
        match self {
            Secret::JwtHs256 => "JWT_HS256_SECRET",
            Secret::StripeKey => "STRIPE_SECRET_KEY",
            Secret::StripeWebhook => "STRIPE_WEBHOOK_SECRET",
            Secret::ServiceRoleKey => "SUPABASE_SERVICE_ROLE_KEY",
        }
    }

    /// The variable naming the secret in Secrets Manager.
    pub fn id_variable(self) -> &'static str {
        match self {
            Secret::JwtHs256 => "JWT_HS256_SECRET_SECRET_ID",
            Secret::StripeKey => "STRIPE_SECRET_KEY_SECRET_ID",
            Secret::StripeWebhook => "STRIPE_WEBHOOK_SECRET_SECRET_ID",
            Secret::ServiceRoleKey => "SUPABASE_SERVICE_ROLE_KEY_SECRET_ID",
        }
    }
}

/// Upper bound of the one `BatchGetSecretValue` attempt, then of one `GetSecretValue` attempt and
/// of all of a secret's attempts: init, at most 6 s of reading, ends inside Lambda's 10 s init
/// phase.
const BATCH_TIMEOUT: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The values fetched, by the variable they stand for. Its `Debug` shows the names only.
#[derive(Default)]
pub struct Secrets(HashMap<&'static str, String>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// Fetches each of `wanted` whose id variable `lookup` sets (a secret's name or full ARN), in
    /// one call. Refuses a secret set both ways, and one Secrets Manager does not answer with a
    /// non-empty string.
    pub async fn fetch(
        wanted: &[Secret],
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Secrets, ConfigError> {
        let vars = Vars(&lookup);
        let mut named = Vec::new();
        for &secret in wanted {
            let Some(id) = vars.get(secret.id_variable()) else {
                continue;
            };
            if vars.get(secret.variable()).is_some() {
                return Err(ConfigError {
                    variable: secret.id_variable(),
                    problem: "is set beside the value itself; set one",
                });
            }
            named.push((secret, id));
        }
        if named.is_empty() {
            return Ok(Secrets::default());
        }
        let client = client(&vars)?;
        read_all(&client, &named).await
    }

    /// `name`'s value: the fetched secret, or else `lookup`'s (the environment).
    pub fn get(&self, name: &str, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
        self.0.get(name).cloned().or_else(|| lookup(name))
    }

    /// Keeps `value` as `secret`'s; refuses one that is not a non-empty string.
    fn insert(&mut self, secret: Secret, value: Option<&str>) -> Result<(), ConfigError> {
        match value.map(str::trim) {
            Some(value) if !value.is_empty() => {
                self.0.insert(secret.variable(), value.to_owned());
                Ok(())
            }
            _ => Err(ConfigError {
                variable: secret.id_variable(),
                problem: "names a secret without a string value",
            }),
        }
    }
}

/// The Secrets Manager client of the function's region and role (`SECRETS_MANAGER_ENDPOINT`
/// points it elsewhere: the tests' loopback stand-in).
fn client<L: Fn(&str) -> Option<String>>(vars: &Vars<L>) -> Result<Client, ConfigError> {
    let region = vars.required("AWS_REGION")?;
    let mut builder = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(crate::store::env_credentials(vars)?)
        .region(Region::new(region))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(FETCH_TIMEOUT)
                .build(),
        )
        .http_client(crate::store::https_client());
    if let Some(endpoint) = vars.http_url("SECRETS_MANAGER_ENDPOINT")? {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(Client::from_conf(builder.build()))
}

/// The current values of `named` (each secret with its id): one `BatchGetSecretValue`, or, when
/// that call fails as a whole, one `GetSecretValue` per secret, concurrently. The batch has a
/// fixed quota of 100 calls per second per account and Region (`GetSecretValue`: 10,000), which a
/// burst of cold starts can exhaust; it is tried once, within [`BATCH_TIMEOUT`], and a throttled,
/// failed or denied batch falls back at once to the per-secret calls and their retries.
async fn read_all(client: &Client, named: &[(Secret, String)]) -> Result<Secrets, ConfigError> {
    let ids = named.iter().map(|(_, id)| id.clone()).collect();
    let once = aws_sdk_secretsmanager::Config::builder()
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(BATCH_TIMEOUT)
                .operation_timeout(BATCH_TIMEOUT)
                .build(),
        );
    let batch = client
        .batch_get_secret_value()
        .set_secret_id_list(Some(ids))
        .customize()
        .config_override(once)
        .send()
        .await;
    match batch {
        Ok(answer) => from_batch(&answer, named),
        Err(err) => {
            let code = err.code().unwrap_or("no answer");
            tracing::warn!(
                code,
                "BatchGetSecretValue failed; reading each secret on its own"
            );
            read_each(client, named).await
        }
    }
}

/// The values of a batch's answer. Secrets Manager answers a secret it could not read (not found,
/// not allowed) in the answer's `Errors`: logged with its error code (never a value) and refused
/// as the id variable's.
fn from_batch(
    answer: &BatchGetSecretValueOutput,
    named: &[(Secret, String)],
) -> Result<Secrets, ConfigError> {
    let mut secrets = Secrets::default();
    for (secret, id) in named {
        let is_it = |name: Option<&str>, arn: Option<&str>| {
            name == Some(id.as_str()) || arn == Some(id.as_str())
        };
        let entry = answer
            .secret_values()
            .iter()
            .find(|entry| is_it(entry.name(), entry.arn()));
        if let Some(entry) = entry {
            secrets.insert(*secret, entry.secret_string())?;
            continue;
        }
        let code = answer
            .errors()
            .iter()
            .find(|error| error.secret_id() == Some(id.as_str()))
            .and_then(|error| error.error_code())
            .unwrap_or("not in the answer");
        return Err(unreadable(*secret, code));
    }
    Ok(secrets)
}

/// The values of `named`, one `GetSecretValue` each, concurrently (with the client's retries).
/// Every secret that could not be read is logged; the first is refused.
async fn read_each(client: &Client, named: &[(Secret, String)]) -> Result<Secrets, ConfigError> {
    let reads = named.iter().map(|(secret, id)| async move {
        (
            *secret,
            client.get_secret_value().secret_id(id).send().await,
        )
    });
    let mut secrets = Secrets::default();
    let mut first_error = None;
    for (secret, answer) in join_all(reads).await {
        let read = match answer {
            Ok(answer) => secrets.insert(secret, answer.secret_string()),
            Err(err) => Err(unreadable(secret, err.code().unwrap_or("no answer"))),
        };
        if let Err(err) = read {
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(secrets), Err)
}

/// Logs that Secrets Manager did not give `secret` (its error `code`, never a message or a
/// value), and refuses its id variable.
fn unreadable(secret: Secret, code: &str) -> ConfigError {
    tracing::error!(
        variable = secret.id_variable(),
        code,
        "Secrets Manager did not return the secret"
    );
    ConfigError {
        variable: secret.id_variable(),
        problem: "names a secret this function could not read (see the Secrets Manager error logged before)",
    }
}
