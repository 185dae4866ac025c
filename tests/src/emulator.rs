//! The real DynamoDB implementation on loopback, started by `./scripts/test`, which exports
//! `TEST_DYNAMODB_ENDPOINT` and `TEST_TABLE_NAME` (the table is created from `template.yaml`).
//! The endpoint is the IAM proxy in front of the emulator (`crate::iam`): the stores built here
//! sign each call as the function whose handler makes it ([`as_function`]), and as the harness
//! otherwise, so a handler reaches the table with exactly its function's policy.

use aws_sdk_dynamodb::Client;
use common::config::StorageConfig;
use common::store::DynamoStore;

/// Region the emulator is addressed in.
pub const REGION: &str = "us-east-1";

/// Endpoint and table of the running emulator.
pub fn storage_config() -> StorageConfig {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the suite through ./scripts/test, which starts the DynamoDB emulator")
        })
    };
    StorageConfig {
        table_name: var("TEST_TABLE_NAME"),
        region: REGION.to_owned(),
        endpoint: Some(var("TEST_DYNAMODB_ENDPOINT")),
        timeout_ms: EMULATOR_TIMEOUT_MS,
    }
}

/// Per-attempt timeout of calls to the emulator, as `DYNAMODB_TIMEOUT_MS`. The emulator answers
/// one request at a time for every test running at once, on a machine that may be busy: a
/// request can wait seconds in its queue, which says nothing about the code under test. Tests of
/// timeouts themselves (`storage_faults`) use the production default instead.
pub const EMULATOR_TIMEOUT_MS: u64 = 15_000;

/// Dummy credentials the emulator accepts; set before any client is built.
pub fn set_dummy_credentials() {
    // SAFETY: called by tests before they build clients; all threads set the same values.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
}

tokio::task_local! {
    /// The function whose code is running (its binary's name), while [`as_function`] runs it.
    static PRINCIPAL: &'static str;
}

/// Runs `work` as the function `function` (a binary's name, `stripe-webhook`): every call of a
/// store built here, made within it, is signed with that function's credentials, and the IAM
/// proxy allows it only what the function's policy in `template.yaml` grants.
pub async fn as_function<F: std::future::Future>(function: &'static str, work: F) -> F::Output {
    PRINCIPAL.scope(function, work).await
}

/// Credentials naming the caller: the function [`as_function`] runs, else the harness.
#[derive(Debug)]
struct Principal;

impl aws_sdk_dynamodb::config::ProvideCredentials for Principal {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let key = PRINCIPAL.try_with(|p| *p).unwrap_or(crate::iam::HARNESS);
        aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
            aws_sdk_dynamodb::config::Credentials::new(key, "test", None, None, "principal"),
        ))
    }
}

/// A store with `config`, signing each call as its caller ([`as_function`]).
pub fn connect(config: &StorageConfig) -> DynamoStore {
    DynamoStore::connect_with(config, Principal)
}

/// A store on the emulator's table.
pub async fn store() -> DynamoStore {
    set_dummy_credentials();
    connect(&storage_config())
}

/// A table of its own on the emulator, with the shared table's keys and indexes (as
/// `template.yaml` defines them): for tests that read across every user, such as
/// reconciliation, which must neither see nor touch other tests' users. Returns its settings.
pub async fn own_table() -> StorageConfig {
    let client = client().await;
    let mut config = storage_config();
    let shared = client
        .describe_table()
        .table_name(&config.table_name)
        .send()
        .await
        .expect("describe the shared table")
        .table
        .expect("a table description");
    config.table_name = format!(
        "{}-{}",
        config.table_name,
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let indexes = shared.global_secondary_indexes().iter().map(|index| {
        aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
            .index_name(index.index_name().unwrap_or_default())
            .set_key_schema(Some(index.key_schema().to_vec()))
            .set_projection(index.projection().cloned())
            .build()
            .expect("an index copy")
    });
    client
        .create_table()
        .table_name(&config.table_name)
        .set_key_schema(Some(shared.key_schema().to_vec()))
        .set_attribute_definitions(Some(shared.attribute_definitions().to_vec()))
        .set_global_secondary_indexes(Some(indexes.collect()))
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create a table of the test's own");
    config
}

/// A store on a table of its own ([`own_table`]).
pub async fn own_store() -> (DynamoStore, StorageConfig) {
    let config = own_table().await;
    (connect(&config), config)
}

/// A raw client on the emulator, to inspect the table behind the store's back.
pub async fn client() -> Client {
    set_dummy_credentials();
    let config = storage_config();
    let sdk = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "emulator",
        ))
        .endpoint_url(config.endpoint.unwrap())
        .http_client(common::store::https_client())
        .build();
    Client::from_conf(sdk)
}

/// Every item under `USER#<user>`, straight from the table.
pub async fn items_of(
    user: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    client()
        .await
        .query()
        .table_name(storage_config().table_name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}")))
        .consistent_read(true)
        .send()
        .await
        .expect("query the emulator")
        .items
        .unwrap_or_default()
}

/// Writes `count` items `<prefix>#<n>` under `USER#<user>`, as other services would.
pub async fn seed_items(user: &str, prefix: &str, count: usize) {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    let client = client().await;
    let table = storage_config().table_name;
    let items: Vec<WriteRequest> = (0..count)
        .map(|n| {
            let item = std::collections::HashMap::from([
                ("pk".to_owned(), AttributeValue::S(format!("USER#{user}"))),
                (
                    "sk".to_owned(),
                    AttributeValue::S(format!("{prefix}#{n:05}")),
                ),
                ("user_id".to_owned(), AttributeValue::S(user.to_owned())),
                (
                    "payload".to_owned(),
                    AttributeValue::S("ciphertext".repeat(20)),
                ),
            ]);
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect();
    for chunk in items.chunks(25) {
        let mut pending = chunk.to_vec();
        while !pending.is_empty() {
            let output = client
                .batch_write_item()
                .request_items(&table, pending)
                .send()
                .await
                .expect("seed the emulator");
            pending = output
                .unprocessed_items
                .and_then(|mut u| u.remove(&table))
                .unwrap_or_default();
        }
    }
}

/// How many items anywhere in the table mention `needle` in their key or any string attribute
/// (a full scan: the erasure check).
pub async fn items_mentioning(needle: &str) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue;
    let client = client().await;
    let mut found = 0;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(storage_config().table_name)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the emulator");
        found += page
            .items
            .unwrap_or_default()
            .iter()
            .filter(|item| {
                item.values()
                    .any(|v| matches!(v, AttributeValue::S(s) if s.contains(needle)))
            })
            .count();
        start = page.last_evaluated_key;
        if start.is_none() {
            return found;
        }
    }
}
