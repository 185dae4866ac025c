//! `GET /v1/user/status` when storage fails: a 503 to retry, never a made-up balance.

use std::sync::Arc;

use common::domain::{UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::{app, parts, request};
use integration_tests::faulty_store::{FaultyStore, Strike};
use integration_tests::{emulator, tokens};

#[tokio::test]
async fn a_failed_read_is_503_with_retry_after_and_writes_nothing() {
    let dynamo: Arc<dyn Store> = Arc::new(emulator::store().await);
    let user = tokens::new_user();
    let id = UserId::parse(&user).unwrap();
    let mut paid = UserRecord::new_free(id.clone(), 10, 1);
    (paid.subscription_status, paid.credits_remaining) = ("active".into(), 850);
    dynamo.create_user(&paid).await.unwrap();
    let faulty = Arc::new(FaultyStore::new(dynamo.clone(), Default::default()));
    faulty.fail("get_user", 1, Strike::Before);
    let app = app(faulty.clone(), None);

    let (status, headers, body) = parts(
        integration_tests::apps::handle("user-status", &app, request("user-status.json", &user))
            .await,
    );
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(body["error"]["details"]["retry_after"], 1);
    assert!(
        body.get("credits_remaining").is_none(),
        "never a made-up balance"
    );
    assert_eq!(
        *faulty.log.lock().unwrap(),
        ["store:get_user"],
        "a failed read leads to no write"
    );

    let (status, _, body) = parts(
        integration_tests::apps::handle("user-status", &app, request("user-status.json", &user))
            .await,
    );
    assert_eq!(
        (status, body["credits_remaining"].as_i64()),
        (200, Some(850)),
        "the retry sees the balance"
    );
    assert_eq!(dynamo.get_user(&id).await.unwrap(), Some(paid));
}

#[tokio::test]
async fn an_existing_user_costs_exactly_one_read_and_no_write() {
    let dynamo: Arc<dyn Store> = Arc::new(emulator::store().await);
    let user = tokens::new_user();
    dynamo
        .create_user(&UserRecord::new_free(UserId::parse(&user).unwrap(), 10, 1))
        .await
        .unwrap();
    let counting = Arc::new(FaultyStore::new(dynamo, Default::default()));
    let app = app(counting.clone(), None);
    let (status, _, _) = parts(
        integration_tests::apps::handle("user-status", &app, request("user-status.json", &user))
            .await,
    );
    assert_eq!(status, 200);
    assert_eq!(*counting.log.lock().unwrap(), ["store:get_user"]);
}
