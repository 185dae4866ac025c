//! The DynamoDB store (single-table design, see `docs/data-model.md`).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Store, StoreError, UserRecord};
use crate::config::StorageConfig;
use crate::users::UserId;

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Sort key of the profile and billing record.
const PROFILE: &str = "PROFILE";
/// Attempts per call, first included (the SDK's standard retry mode with backoff).
const MAX_ATTEMPTS: u32 = 3;

type Item = HashMap<String, AttributeValue>;

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

    /// Builds the client once at init. With credentials in the environment (always so on
    /// Lambda) no profile file or instance metadata is consulted.
    pub async fn connect(config: &StorageConfig) -> Self {
        let region = Region::new(config.region.clone());
        let mut builder = if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            let credentials =
                aws_config::environment::EnvironmentVariableCredentialsProvider::new();
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(credentials)
                .region(region)
        } else {
            let shared = aws_config::defaults(BehaviorVersion::latest())
                .region(region)
                .load()
                .await;
            aws_sdk_dynamodb::config::Builder::from(&shared)
        };
        builder = builder
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .operation_timeout(Duration::from_secs(5))
                    .build(),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        DynamoStore::new(
            Client::from_conf(builder.build()),
            config.table_name.clone(),
        )
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

/// The key of the profile record of `user`.
fn profile_key(user: &UserId) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(user_pk(user))),
        (SK.to_owned(), AttributeValue::S(PROFILE.to_owned())),
    ])
}

/// The partition holding every item of `user`.
pub fn user_pk(user: &UserId) -> String {
    format!("USER#{}", user.as_str())
}

fn to_item(record: &UserRecord) -> Item {
    let mut item = profile_key(&record.user_id);
    let n = |v: i64| AttributeValue::N(v.to_string());
    let s = |v: &str| AttributeValue::S(v.to_owned());
    item.extend([
        ("entity".to_owned(), s("user")),
        ("plan".to_owned(), s(&record.plan)),
        (
            "subscription_status".to_owned(),
            s(&record.subscription_status),
        ),
        ("credits_remaining".to_owned(), n(record.credits_remaining)),
        (
            "free_messages_total".to_owned(),
            n(record.free_messages_total),
        ),
        (
            "free_messages_remaining".to_owned(),
            n(record.free_messages_remaining),
        ),
        ("created_at".to_owned(), n(record.created_at)),
    ]);
    item
}

fn from_item(user: &UserId, item: &Item) -> Result<UserRecord, StoreError> {
    let s = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {name} is not a string"
        ))),
    };
    let n = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse::<i64>()
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not an integer"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {name} is not a number"
        ))),
    };
    Ok(UserRecord {
        user_id: user.clone(),
        plan: s("plan")?,
        subscription_status: s("subscription_status")?,
        credits_remaining: n("credits_remaining")?,
        free_messages_total: n("free_messages_total")?,
        free_messages_remaining: n("free_messages_remaining")?,
        created_at: n("created_at")?,
    })
}

/// Classifies an SDK failure; logs it with its context (no item data is in these messages).
fn store_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
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
    if throttled {
        StoreError::Throttled
    } else {
        StoreError::Unavailable(operation.to_owned())
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get_user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| store_error("GetItem", err))?;
        output
            .item
            .as_ref()
            .map(|item| from_item(user, item))
            .transpose()
    }

    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(store_error("PutItem", err)),
        }
    }
}
