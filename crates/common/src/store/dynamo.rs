//! The DynamoDB store (single-table design, see `docs/data-model.md`).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, TransactWriteItem, Update, WriteRequest,
};
use backon::{ExponentialBuilder, Retryable};

use super::{
    Balance, CreditGrant, DEBIT_RETENTION_SECS, DebitOutcome, EVENT_LEASE_SECS,
    EVENT_RETENTION_SECS, ErasureStage, EventClaim, RefundOutcome, Store, StoreError,
    SubscriptionView, Tombstone, UserRecord,
};
use crate::config::{ConfigError, StorageConfig};
use crate::users::{FREE_PLAN, NO_SUBSCRIPTION, UserId};

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Sort key of the profile and billing record.
const PROFILE: &str = "PROFILE";
/// Sort key of the customer→user mapping item.
const CUSTOMER: &str = "CUSTOMER";
/// Sort key of a webhook event record.
const EVENT: &str = "EVENT";
/// Sort-key prefix of a debit's ledger item (`DEBIT#<debit id>`), kept for the retention period.
const DEBIT: &str = "DEBIT#";
/// The TTL attribute (see `template.yaml`).
pub const TTL: &str = "ttl";
/// Sort key of a tombstone.
const TOMBSTONE: &str = "TOMBSTONE";
/// Items per `BatchWriteItem` (DynamoDB's limit).
const BATCH_SIZE: usize = 25;
/// Keys per `Query` page of an erasure: each page is deleted before the next is read, and a
/// small page keeps every call short, well inside the per-attempt timeout, whatever the user owns.
const ERASURE_PAGE_ITEMS: i32 = 250;
/// Retries of a transaction DynamoDB cancelled for a conflict, and the first delay (doubling,
/// jittered): 6 attempts over about 1.3 s at most.
const CONFLICT_RETRIES: usize = 5;
const CONFLICT_BACKOFF: Duration = Duration::from_millis(20);
/// Rounds of retrying a batch's unprocessed items before giving up with a 503.
const BATCH_ROUNDS: u32 = 8;
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

    /// Builds the client once at init, with the credentials of the environment
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`), as Lambda
    /// sets them for the function's role. No profile file, SSO or instance metadata is ever
    /// consulted, and no credential chain is linked in (it held ~0.5 MiB of every binary: see
    /// `docs/performance-decisions.md`). Missing credentials stop the function at init.
    pub async fn connect(config: &StorageConfig) -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let missing = |variable| ConfigError {
            variable,
            problem: "is missing or empty (Lambda sets it; locally, export credentials)",
        };
        let credentials = Credentials::new(
            var("AWS_ACCESS_KEY_ID").ok_or(missing("AWS_ACCESS_KEY_ID"))?,
            var("AWS_SECRET_ACCESS_KEY").ok_or(missing("AWS_SECRET_ACCESS_KEY"))?,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        );
        let mut builder = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(credentials)
            .region(Region::new(config.region.clone()));
        builder = builder
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
        Ok(DynamoStore::new(
            Client::from_conf(builder.build()),
            config.table_name.clone(),
        ))
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

/// The key of the customer→user mapping item of `customer`.
fn customer_key(customer: &str) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            AttributeValue::S(format!("CUSTOMER#{customer}")),
        ),
        (SK.to_owned(), AttributeValue::S(CUSTOMER.to_owned())),
    ])
}

/// The key of the record of webhook event `event_id`.
fn event_key(event_id: &str) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            AttributeValue::S(format!("EVENT#{event_id}")),
        ),
        (SK.to_owned(), AttributeValue::S(EVENT.to_owned())),
    ])
}

/// The key of the tombstone of `user`: a hash, never the id.
fn tombstone_key(user: &UserId) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            AttributeValue::S(format!("TOMBSTONE#{}", user.full_hash())),
        ),
        (SK.to_owned(), AttributeValue::S(TOMBSTONE.to_owned())),
    ])
}

/// The claim an event record in `state` leaves to a newcomer.
fn claim_of(item: Option<&Item>) -> EventClaim {
    match item.and_then(|item| item.get("state")) {
        Some(AttributeValue::S(state)) if state == "done" => EventClaim::AlreadyDone,
        _ => EventClaim::InProgress,
    }
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
        (
            "cancel_at_period_end".to_owned(),
            AttributeValue::Bool(record.cancel_at_period_end),
        ),
        ("synced_at_ms".to_owned(), n(record.synced_at_ms)),
        (
            "last_grant_created".to_owned(),
            n(record.last_grant_created),
        ),
    ]);
    if !record.granted_invoices.is_empty() {
        let invoices = record.granted_invoices.iter().cloned().collect();
        item.insert("granted_invoices".to_owned(), AttributeValue::Ss(invoices));
    }
    let optional = [
        (
            "stripe_customer_id",
            record.stripe_customer_id.clone().map(AttributeValue::S),
        ),
        (
            "subscription_id",
            record.subscription_id.clone().map(AttributeValue::S),
        ),
        ("price_id", record.price_id.clone().map(AttributeValue::S)),
        ("current_period_end", record.current_period_end.map(n)),
    ];
    item.extend(
        optional
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?))),
    );
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
    let optional_s = |name: &str| match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => s(name).map(Some),
    };
    let optional_n = |name: &str| match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => n(name).map(Some),
    };
    Ok(UserRecord {
        user_id: user.clone(),
        plan: s("plan")?,
        subscription_status: s("subscription_status")?,
        credits_remaining: n("credits_remaining")?,
        free_messages_total: n("free_messages_total")?,
        free_messages_remaining: n("free_messages_remaining")?,
        created_at: n("created_at")?,
        stripe_customer_id: optional_s("stripe_customer_id")?,
        subscription_id: optional_s("subscription_id")?,
        price_id: optional_s("price_id")?,
        current_period_end: optional_n("current_period_end")?,
        cancel_at_period_end: matches!(
            item.get("cancel_at_period_end"),
            Some(AttributeValue::Bool(true))
        ),
        synced_at_ms: optional_n("synced_at_ms")?.unwrap_or(0),
        granted_invoices: match item.get("granted_invoices") {
            Some(AttributeValue::Ss(invoices)) => invoices.iter().cloned().collect(),
            _ => Default::default(),
        },
        last_grant_created: optional_n("last_grant_created")?.unwrap_or(0),
    })
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
    if throttled {
        StoreError::Throttled
    } else {
        StoreError::Unavailable(operation.to_owned())
    }
}

impl DynamoStore {
    /// The outcome of a conditional `UpdateItem` on the profile of `user`: `Ok(true)` when it was
    /// written; after a failed condition `Ok(false)` (nothing written) if the record exists,
    /// `NoRecord` if it does not.
    async fn conditional_update_outcome(
        &self,
        user: &UserId,
        result: Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>,
    ) -> Result<bool, StoreError> {
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                match self.get_user(user).await? {
                    Some(_) => Ok(false),
                    None => Err(StoreError::NoRecord),
                }
            }
            Err(err) => Err(store_error("UpdateItem", err)),
        }
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
            self.client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
        })
        .retry(backoff)
        .when(is_transaction_conflict)
        .notify(|_, delay| tracing::debug!(?delay, "transaction conflict; retrying"))
        .await
        .map(drop)
    }

    /// Deletes `keys` (at most 25) in one batch, retrying unprocessed items with backoff.
    async fn delete_batch(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        let mut requests = keys
            .into_iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(|_| StoreError::Unavailable("build DeleteRequest".into()))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for round in 0..BATCH_ROUNDS {
            if round > 0 {
                let backoff =
                    Duration::from_millis(50 * 2u64.pow(round - 1)).min(Duration::from_secs(1));
                tokio::time::sleep(backoff).await;
            }
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|err| store_error("BatchWriteItem", err))?;
            requests = output
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            tracing::warn!(
                left = requests.len(),
                round,
                "BatchWriteItem left unprocessed items; retrying"
            );
        }
        Err(StoreError::Throttled)
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

    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<String, StoreError> {
        let link_profile = Update::builder()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression("SET stripe_customer_id = :customer")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(stripe_customer_id) OR stripe_customer_id = :customer)",
            )
            .expression_attribute_values(":customer", AttributeValue::S(customer.to_owned()))
            .build()
            .map_err(|_| StoreError::Unavailable("build Update".into()))?;
        let mut mapping = customer_key(customer);
        mapping.extend([
            (
                "entity".to_owned(),
                AttributeValue::S("customer".to_owned()),
            ),
            (
                "user_id".to_owned(),
                AttributeValue::S(user.as_str().to_owned()),
            ),
        ]);
        let put_mapping = Put::builder()
            .table_name(&self.table)
            .set_item(Some(mapping))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", AttributeValue::S(user.as_str().to_owned()))
            .build()
            .map_err(|_| StoreError::Unavailable("build Put".into()))?;
        let items = vec![
            TransactWriteItem::builder().update(link_profile).build(),
            TransactWriteItem::builder().put(put_mapping).build(),
        ];
        match self.transact(items).await {
            Ok(_) => Ok(customer.to_owned()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                // A condition failed: a customer is linked already (this one, by a twin request,
                // or another: either way the one that stands), or there is no record, or the
                // mapping belongs to someone else.
                let record = self.get_user(user).await?.ok_or(StoreError::NoRecord)?;
                match record.stripe_customer_id {
                    Some(existing) if existing != customer => Ok(existing),
                    Some(_) if self.user_for_customer(customer).await?.as_ref() == Some(user) => {
                        Ok(customer.to_owned())
                    }
                    _ => Err(StoreError::Corrupt(
                        "customer is linked to another user".into(),
                    )),
                }
            }
            Err(err) => Err(store_error("TransactWriteItems", err)),
        }
    }

    async fn unlink_customer(&self, user: &UserId, customer: &str) -> Result<(), StoreError> {
        let forget = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression(
                "SET subscription_status = :none, #plan = :free, credits_remaining = :zero, \
                 cancel_at_period_end = :false, synced_at_ms = :now \
                 REMOVE stripe_customer_id, subscription_id, price_id, current_period_end",
            )
            .condition_expression("stripe_customer_id = :customer")
            .expression_attribute_names("#plan", "plan")
            .expression_attribute_values(":none", AttributeValue::S(NO_SUBSCRIPTION.to_owned()))
            .expression_attribute_values(":free", AttributeValue::S(FREE_PLAN.to_owned()))
            .expression_attribute_values(":zero", AttributeValue::N("0".to_owned()))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(
                ":now",
                AttributeValue::N(crate::unix_now_ms().to_string()),
            )
            .expression_attribute_values(":customer", AttributeValue::S(customer.to_owned()))
            .send()
            .await;
        match forget {
            Ok(_) => {}
            // Not (or no longer) this user's customer: nothing to forget on the profile.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(err) => return Err(store_error("UpdateItem", err)),
        }
        let unmap = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(customer_key(customer)))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", AttributeValue::S(user.as_str().to_owned()))
            .send()
            .await;
        match unmap {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(store_error("DeleteItem", err)),
        }
    }

    async fn user_for_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(customer_key(customer)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| store_error("GetItem", err))?;
        match output.item.as_ref().map(|item| item.get("user_id")) {
            None => Ok(None),
            Some(Some(AttributeValue::S(id))) => UserId::parse(id)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt("mapping holds no user id".into())),
            Some(_) => Err(StoreError::Corrupt("mapping holds no user id".into())),
        }
    }

    async fn apply_subscription(
        &self,
        user: &UserId,
        view: &SubscriptionView,
    ) -> Result<bool, StoreError> {
        let n = |v: i64| AttributeValue::N(v.to_string());
        let attributes = [
            ("plan", Some(AttributeValue::S(view.plan.clone()))),
            (
                "subscription_status",
                Some(AttributeValue::S(view.status.clone())),
            ),
            (
                "cancel_at_period_end",
                Some(AttributeValue::Bool(view.cancel_at_period_end)),
            ),
            ("synced_at_ms", Some(n(view.observed_at_ms))),
            (
                "subscription_id",
                view.subscription_id.clone().map(AttributeValue::S),
            ),
            ("price_id", view.price_id.clone().map(AttributeValue::S)),
            ("current_period_end", view.current_period_end.map(n)),
        ];
        // Every attribute goes through a `#name` placeholder: some (`plan`) are reserved words.
        let (mut set, mut remove) = (Vec::new(), Vec::new());
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        for (attribute, value) in attributes {
            names.insert(format!("#{attribute}"), attribute.to_owned());
            match value {
                Some(value) => {
                    set.push(format!("#{attribute} = :{attribute}"));
                    values.insert(format!(":{attribute}"), value);
                }
                None => remove.push(format!("#{attribute}")),
            }
        }
        if view.ends_paid_credits() {
            set.push("#credits_remaining = :no_credits".to_owned());
            names.insert(
                "#credits_remaining".to_owned(),
                "credits_remaining".to_owned(),
            );
            values.insert(":no_credits".to_owned(), n(0));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression(expression)
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#synced_at_ms) OR #synced_at_ms < :synced_at_ms)",
            )
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        self.conditional_update_outcome(user, result).await
    }

    async fn grant_credits(&self, user: &UserId, grant: &CreditGrant) -> Result<bool, StoreError> {
        let n = |v: i64| AttributeValue::N(v.to_string());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression("SET #credits = :credits, #last = :created ADD #granted :invoices")
            .condition_expression(
                "attribute_exists(pk) AND #status IN (:active, :trialing) \
                 AND NOT contains(#granted, :invoice) \
                 AND (attribute_not_exists(#last) OR #last <= :created)",
            )
            .expression_attribute_names("#credits", "credits_remaining")
            .expression_attribute_names("#last", "last_grant_created")
            .expression_attribute_names("#granted", "granted_invoices")
            .expression_attribute_names("#status", "subscription_status")
            .expression_attribute_values(":credits", n(grant.credits))
            .expression_attribute_values(":created", n(grant.invoice_created))
            .expression_attribute_values(":invoice", AttributeValue::S(grant.invoice_id.clone()))
            .expression_attribute_values(
                ":invoices",
                AttributeValue::Ss(vec![grant.invoice_id.clone()]),
            )
            .expression_attribute_values(":active", AttributeValue::S("active".to_owned()))
            .expression_attribute_values(":trialing", AttributeValue::S("trialing".to_owned()))
            .send()
            .await;
        self.conditional_update_outcome(user, result).await
    }

    async fn debit(
        &self,
        user: &UserId,
        balance: Balance,
        status_seen: &str,
        debit_id: &str,
        now: i64,
    ) -> Result<DebitOutcome, StoreError> {
        let attribute = match balance {
            Balance::Credits => "credits_remaining",
            Balance::FreeMessages => "free_messages_remaining",
        };
        // One transaction: the ledger item of this debit id (new, or the transaction fails),
        // and the conditional decrement. A retry of a charged debit fails on the ledger item.
        let ledger = Put::builder()
            .table_name(&self.table)
            .set_item(Some(HashMap::from([
                (PK.to_owned(), AttributeValue::S(user_pk(user))),
                (
                    SK.to_owned(),
                    AttributeValue::S(format!("{DEBIT}{debit_id}")),
                ),
                ("entity".to_owned(), AttributeValue::S("debit".to_owned())),
                (
                    "balance".to_owned(),
                    AttributeValue::S(attribute.to_owned()),
                ),
                (
                    TTL.to_owned(),
                    AttributeValue::N((now + DEBIT_RETENTION_SECS).to_string()),
                ),
            ])))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|_| StoreError::Unavailable("build Put".into()))?;
        let decrement = Update::builder()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression("SET #balance = #balance - :one")
            .condition_expression("attribute_exists(pk) AND #balance > :zero AND #status = :seen")
            .expression_attribute_names("#balance", attribute)
            .expression_attribute_names("#status", "subscription_status")
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .expression_attribute_values(":zero", AttributeValue::N("0".to_owned()))
            .expression_attribute_values(":seen", AttributeValue::S(status_seen.to_owned()))
            .build()
            .map_err(|_| StoreError::Unavailable("build Update".into()))?;
        let items = vec![
            TransactWriteItem::builder().put(ledger).build(),
            TransactWriteItem::builder().update(decrement).build(),
        ];
        match self.transact(items).await {
            Ok(_) => Ok(DebitOutcome::Charged),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => {
                    let failed = |index: usize| {
                        canceled
                            .cancellation_reasons()
                            .get(index)
                            .and_then(|reason| reason.code())
                            == Some("ConditionalCheckFailed")
                    };
                    if failed(0) {
                        Ok(DebitOutcome::AlreadyCharged)
                    } else if failed(1) {
                        Ok(DebitOutcome::Refused)
                    } else {
                        // Conflicts beyond the retries: nothing was written; a 503 to retry.
                        Err(store_error("TransactWriteItems", err))
                    }
                }
                _ => Err(store_error("TransactWriteItems", err)),
            },
        }
    }

    async fn refund(&self, user: &UserId, debit_id: &str) -> Result<RefundOutcome, StoreError> {
        let ledger_key = HashMap::from([
            (PK.to_owned(), AttributeValue::S(user_pk(user))),
            (
                SK.to_owned(),
                AttributeValue::S(format!("{DEBIT}{debit_id}")),
            ),
        ]);
        let ledger = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(ledger_key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| store_error("GetItem", err))?
            .item;
        let Some(ledger) = ledger else {
            return Ok(RefundOutcome::NotCharged);
        };
        if ledger.contains_key("refunded_at") {
            return Ok(RefundOutcome::AlreadyRefunded);
        }
        // Ledger items written before refunds existed record no balance: they cannot be refunded.
        let (attribute, balance) = match ledger.get("balance").and_then(|v| v.as_s().ok()) {
            Some(b) if b == "credits_remaining" => ("credits_remaining", Balance::Credits),
            Some(b) if b == "free_messages_remaining" => {
                ("free_messages_remaining", Balance::FreeMessages)
            }
            _ => return Ok(RefundOutcome::NotCharged),
        };
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(ledger_key))
            .update_expression("SET refunded_at = :now")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(refunded_at)")
            .expression_attribute_values(":now", AttributeValue::N(crate::unix_now().to_string()))
            .build()
            .map_err(|_| StoreError::Unavailable("build Update".into()))?;
        let give_back = Update::builder()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression("SET #balance = #balance + :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#balance", attribute)
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .build()
            .map_err(|_| StoreError::Unavailable("build Update".into()))?;
        let items = vec![
            TransactWriteItem::builder().update(mark).build(),
            TransactWriteItem::builder().update(give_back).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(RefundOutcome::Refunded(balance)),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => {
                    let code = |i: usize| {
                        canceled
                            .cancellation_reasons()
                            .get(i)
                            .and_then(|r| r.code())
                    };
                    match (code(0), code(1)) {
                        // A concurrent refund marked it first, or the item expired meanwhile.
                        (Some("ConditionalCheckFailed"), _) => Ok(RefundOutcome::AlreadyRefunded),
                        (_, Some("ConditionalCheckFailed")) => Ok(RefundOutcome::NotCharged),
                        _ => Err(store_error("TransactWriteItems", err)),
                    }
                }
                _ => Err(store_error("TransactWriteItems", err)),
            },
        }
    }

    async fn begin_event(&self, event_id: &str, now: i64) -> Result<EventClaim, StoreError> {
        let n = |v: i64| AttributeValue::N(v.to_string());
        let mut item = event_key(event_id);
        item.extend([
            ("entity".to_owned(), AttributeValue::S("event".to_owned())),
            (
                "state".to_owned(),
                AttributeValue::S("processing".to_owned()),
            ),
            ("lease_until".to_owned(), n(now + EVENT_LEASE_SECS)),
            (TTL.to_owned(), n(now + EVENT_RETENTION_SECS)),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR #state = :failed \
                 OR (#state = :processing AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":failed", AttributeValue::S("failed".to_owned()))
            .expression_attribute_values(":processing", AttributeValue::S("processing".to_owned()))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(EventClaim::Claimed),
            Err(err) => match err.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                    Ok(claim_of(e.item.as_ref()))
                }
                other => Err(store_error("PutItem", other)),
            },
        }
    }

    async fn finish_event(&self, event_id: &str, done: bool, now: i64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(event_id)))
            .update_expression("SET #state = :state, finished_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(
                ":state",
                AttributeValue::S(if done { "done" } else { "failed" }.to_owned()),
            )
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await
            .map_err(|err| store_error("UpdateItem", err))?;
        Ok(())
    }

    async fn tombstone(&self, user: &UserId) -> Result<Option<Tombstone>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(tombstone_key(user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| store_error("GetItem", err))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let number = |name: &str| {
            let n = item.get(name).and_then(|v| v.as_n().ok());
            n.and_then(|n| n.parse::<i64>().ok())
        };
        let stage = item.get("stage").and_then(|v| v.as_s().ok());
        let corrupt = || StoreError::Corrupt("tombstone".to_owned());
        Ok(Some(Tombstone {
            erased_at: number("deleted_at").ok_or_else(corrupt)?,
            expires_at: number(TTL).ok_or_else(corrupt)?,
            stage: ErasureStage::parse(stage.map(String::as_str)).ok_or_else(corrupt)?,
        }))
    }

    async fn write_tombstone(
        &self,
        user: &UserId,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        let mut item = tombstone_key(user);
        item.extend([
            (
                "entity".to_owned(),
                AttributeValue::S("tombstone".to_owned()),
            ),
            (
                "deleted_at".to_owned(),
                AttributeValue::N(tombstone.erased_at.to_string()),
            ),
            (
                TTL.to_owned(),
                AttributeValue::N(tombstone.expires_at.to_string()),
            ),
            (
                "stage".to_owned(),
                AttributeValue::S(tombstone.stage.as_str().to_owned()),
            ),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|err| store_error("PutItem", err))?;
        Ok(())
    }

    async fn delete_owned_items(&self, user: &UserId) -> Result<usize, StoreError> {
        let mut deleted = 0;
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", AttributeValue::S(user_pk(user)))
                .consistent_read(true)
                .limit(ERASURE_PAGE_ITEMS)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| store_error("Query", err))?;
            let keys: Vec<Item> = page
                .items
                .unwrap_or_default()
                .into_iter()
                .filter(
                    |item| !matches!(item.get(SK), Some(AttributeValue::S(sk)) if sk == PROFILE),
                )
                .collect();
            for batch in keys.chunks(BATCH_SIZE) {
                self.delete_batch(batch.to_vec()).await?;
                deleted += batch.len();
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(deleted);
            }
        }
    }

    async fn delete_customer_link(&self, customer: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(customer_key(customer)))
            .send()
            .await
            .map_err(|err| store_error("DeleteItem", err))?;
        Ok(())
    }

    async fn delete_profile(&self, user: &UserId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .send()
            .await
            .map_err(|err| store_error("DeleteItem", err))?;
        Ok(())
    }
}
