//! The DynamoDB store (single-table design, see `docs/data-model.md`): the client and the calls
//! every operation shares here, the keys and the record's codec beside, and one module per
//! capability.

mod codec;
mod customers;
mod entries;
mod erasure;
mod events;
mod holdings;
mod keys;
mod ledger;
mod limits;
mod profiles;
mod purchases;
mod reconcile;

use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, IdentityCache, ProvideCredentials, Region,
};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{DeleteRequest, TransactWriteItem, WriteRequest};
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use backon::{ExponentialBuilder, Retryable};

use self::keys::Item;
use super::StoreError;
use crate::config::{ConfigError, StorageConfig, Vars};

/// Retries of a transaction DynamoDB cancelled for a conflict, and the first delay (doubling,
/// jittered): 6 attempts over about 1.3 s at most.
const CONFLICT_RETRIES: usize = 5;
const CONFLICT_BACKOFF: Duration = Duration::from_millis(20);
/// Retries of a batch's unprocessed items before giving up with a 503, and the first delay
/// (doubling up to 1 s, jittered): AWS's advice for `UnprocessedItems`.
const BATCH_RETRIES: usize = 7;
const BATCH_BACKOFF: Duration = Duration::from_millis(50);
/// Attempts per call, first included (the SDK's standard retry mode with backoff).
const MAX_ATTEMPTS: u32 = 3;
/// The roots DynamoDB's endpoints chain to: Amazon Trust Services (Amazon Root CA 1 to 4, and
/// Starfield Services Root CA G2, which cross-signs them), as AWS documents for DynamoDB since
/// 2018. Compiled in: the SDK's default reads and parses the whole system store at init
/// (docs/performance-decisions.md).
const AWS_ROOTS: &str = include_str!("../../../certs/amazon-trust-services.pem");

/// User records in one DynamoDB table.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store on `client` and `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Builds the client once at init, with the credentials of the environment
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`), as Lambda
    /// sets them for the function's role. No profile file, SSO or instance metadata is ever
    /// consulted, and no credential chain is linked in (it held ~0.5 MiB of every binary: see
    /// `docs/performance-decisions.md`). Missing credentials stop the function at init.
    pub async fn connect(config: &StorageConfig) -> Result<Self, ConfigError> {
        let credentials = env_credentials(&Vars(crate::config::env))?;
        Ok(Self::connect_with(config, credentials))
    }

    /// [`DynamoStore::connect`] with `credentials` resolved anew for every call (no identity
    /// cache): the tests sign each call as the function making it, to check its IAM policy.
    pub fn connect_with(
        config: &StorageConfig,
        credentials: impl ProvideCredentials + 'static,
    ) -> Self {
        let mut builder = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(credentials)
            .identity_cache(IdentityCache::no_cache())
            .region(Region::new(config.region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_millis(config.timeout_ms))
                    .operation_timeout(Duration::from_millis(config.timeout_ms * 5 / 2))
                    .build(),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        builder = builder.http_client(https_client());
        DynamoStore::new(
            Client::from_conf(builder.build()),
            config.table_name.clone(),
        )
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The item at `key`, read consistently.
    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| store_error("GetItem", err))?;
        Ok(output.item)
    }

    /// Writes `item`, whatever stood at its key.
    async fn put_item(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|err| store_error("PutItem", err))?;
        Ok(())
    }

    /// Deletes the item at `key`, if any.
    async fn delete_item(&self, key: Item) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(|err| store_error("DeleteItem", err))?;
        Ok(())
    }

    /// Runs one `TransactWriteItems`, retrying (bounded, jittered) while DynamoDB cancels it for
    /// a `TransactionConflict` alone: another transaction held one of its items, nothing was
    /// written, and the SDK does not retry that. A failed condition is returned at once.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError, HttpResponse>> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(CONFLICT_BACKOFF)
            .with_max_times(CONFLICT_RETRIES)
            .with_jitter();
        (|| {
            // One token per attempt, kept by the SDK's own retries: a retry after a lost reply
            // of a transaction that committed is answered as that transaction (DynamoDB's
            // idempotency window), not refused by the conditions the first one satisfied.
            self.client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(uuid::Uuid::new_v4().to_string())
                .send()
        })
        .retry(backoff)
        .when(is_transaction_conflict)
        .notify(|_, delay| tracing::debug!(?delay, "transaction conflict; retrying"))
        .await
        .map(drop)
    }

    /// Deletes `keys` (at most 25) in one batch, retrying the items DynamoDB left unprocessed
    /// (it does when throttled) with backoff; still unprocessed after the retries: `Throttled`.
    async fn delete_batch(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(|_| StoreError::Unavailable("build DeleteRequest".into()))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let pending = Mutex::new(requests);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(BATCH_BACKOFF)
            .with_max_delay(Duration::from_secs(1))
            .with_max_times(BATCH_RETRIES)
            .with_jitter();
        let round = || async {
            let batch = pending
                .lock()
                .map_err(|_| Batch::Failed(poisoned()))?
                .clone();
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, batch)
                .send()
                .await
                .map_err(|err| Batch::Failed(store_error("BatchWriteItem", err)))?;
            let left = output
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .unwrap_or_default();
            if left.is_empty() {
                return Ok(());
            }
            let count = left.len();
            *pending.lock().map_err(|_| Batch::Failed(poisoned()))? = left;
            Err(Batch::Unprocessed(count))
        };
        round
            .retry(backoff)
            .when(|outcome| matches!(outcome, Batch::Unprocessed(_)))
            .notify(|outcome, delay| {
                if let Batch::Unprocessed(left) = outcome {
                    tracing::warn!(
                        left,
                        ?delay,
                        "BatchWriteItem left unprocessed items; retrying"
                    );
                }
            })
            .await
            .map_err(|outcome| match outcome {
                Batch::Failed(err) => err,
                Batch::Unprocessed(_) => StoreError::Throttled,
            })
    }
}

/// How one round of a batch write fell short.
enum Batch {
    /// The call failed.
    Failed(StoreError),
    /// DynamoDB left this many items unprocessed.
    Unprocessed(usize),
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("batch state poisoned".into())
}

/// `Ok(true)` if a conditional write succeeded, `Ok(false)` if its condition failed (nothing
/// was written), else the classified error.
fn conditional<T, E>(
    operation: &'static str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failed(&err) => Ok(false),
        Err(err) => Err(store_error(operation, err)),
    }
}

/// Whether a call failed only because its condition did not hold.
fn is_condition_failed<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// The code of the cancellation reason of a transaction's item at `index`, if it was cancelled.
fn cancellation_code(
    err: &SdkError<TransactWriteItemsError, HttpResponse>,
    index: usize,
) -> Option<&str> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => canceled
            .cancellation_reasons()
            .get(index)
            .and_then(|reason| reason.code()),
        _ => None,
    }
}

/// Whether DynamoDB cancelled a transaction only because another one held an item: every
/// cancellation reason is `TransactionConflict` or `None`, at least one a conflict.
fn is_transaction_conflict(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) =
        err.as_service_error()
    else {
        return false;
    };
    let codes: Vec<&str> = canceled
        .cancellation_reasons()
        .iter()
        .map(|reason| reason.code().unwrap_or("None"))
        .collect();
    codes.contains(&"TransactionConflict")
        && codes
            .iter()
            .all(|code| matches!(*code, "TransactionConflict" | "None"))
}

/// Classifies a DynamoDB failure (an `SdkError` or a service error taken out of one) and logs
/// it with its context; these messages carry no item data.
fn store_error<E>(operation: &'static str, err: E) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    let throttled = matches!(
        err.code(),
        Some(
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
        )
    );
    tracing::error!(operation, throttled, error = %DisplayErrorContext(&err), "DynamoDB call failed");
    crate::metrics::count(crate::metrics::Metric::StorageFailures, 1);
    if throttled {
        StoreError::Throttled
    } else {
        StoreError::Unavailable(operation.to_owned())
    }
}

/// The role's credentials, as Lambda sets them in the environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`), read through `vars`: every AWS
/// client here signs with them.
pub(crate) fn env_credentials<L: Fn(&str) -> Option<String>>(
    vars: &Vars<L>,
) -> Result<Credentials, ConfigError> {
    let missing = |variable| ConfigError {
        variable,
        problem: "is missing or empty (Lambda sets it; locally, export credentials)",
    };
    Ok(Credentials::new(
        vars.get("AWS_ACCESS_KEY_ID")
            .ok_or(missing("AWS_ACCESS_KEY_ID"))?,
        vars.get("AWS_SECRET_ACCESS_KEY")
            .ok_or(missing("AWS_SECRET_ACCESS_KEY"))?,
        vars.get("AWS_SESSION_TOKEN"),
        None,
        "environment",
    ))
}

/// The SDK's HTTPS client (rustls on ring, as every client here), trusting [`AWS_ROOTS`] only.
/// (Plain HTTP to an emulator's loopback endpoint, as the tests' own raw client uses it.)
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AWS_ROOTS.as_bytes());
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a trust store without extra server names is a valid TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https()
}
