//! I/O per request is part of the contract (docs/data-model.md, "I/O per request"): counted here
//! with the call-logging store wrapper and the Stripe stub's request log.

use std::sync::Arc;

use common::credits;
use common::domain::{Balance, UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::{app, event, parts, request, webhook};
use integration_tests::faulty_store::FaultyStore;
use integration_tests::storage_faults::FaultProxy;
use integration_tests::stripe_stub::{StripeStub, WEBHOOK_SECRET, subscription};
use integration_tests::{emulator, tokens};

async fn counted() -> (Arc<dyn Store>, Arc<FaultyStore>) {
    let dynamo: Arc<dyn Store> = Arc::new(emulator::store().await);
    let counting = Arc::new(FaultyStore::new(dynamo.clone(), Default::default()));
    (dynamo, counting)
}

fn calls(store: &FaultyStore) -> Vec<String> {
    std::mem::take(&mut *store.log.lock().unwrap())
}

#[tokio::test]
async fn a_duplicate_webhook_costs_one_conditional_write_and_nothing_else() {
    let (dynamo, counting) = counted().await;
    let stub = StripeStub::start().await;
    let app = app(counting.clone(), Some(&stub.uri()));
    let user = UserId::parse(&tokens::new_user()).unwrap();
    dynamo
        .create_user(&UserRecord::new_free(user.clone(), 10, 1))
        .await
        .unwrap();
    let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
    dynamo.link_customer(&user, &customer).await.unwrap();
    stub.subscriptions(vec![subscription("sub_io", &customer, "active", 1, 2)])
        .await;
    let evt = event(
        &format!("evt_{}", tokens::new_user()),
        "customer.subscription.updated",
        subscription("sub_io", &customer, "active", 1, 2),
    );

    let first = parts(
        integration_tests::apps::handle(
            "stripe-webhook",
            &app,
            webhook(&evt, WEBHOOK_SECRET, common::unix_now()),
        )
        .await,
    );
    assert_eq!(first.0, 200);
    assert_eq!(
        calls(&counting),
        [
            "store:begin_event",
            "store:user_for_customer",
            "store:get_user",
            "store:apply_subscription",
            "store:finish_event"
        ]
    );
    let stripe_calls = stub.sent().await.len();
    assert_eq!(stripe_calls, 1, "one subscription list");

    let again = parts(
        integration_tests::apps::handle(
            "stripe-webhook",
            &app,
            webhook(&evt, WEBHOOK_SECRET, common::unix_now()),
        )
        .await,
    );
    assert_eq!(again.0, 200);
    assert_eq!(
        calls(&counting),
        ["store:begin_event"],
        "one conditional write"
    );
    assert_eq!(stub.sent().await.len(), stripe_calls, "no Stripe call");
}

#[tokio::test]
async fn checkout_io_for_new_returning_and_subscribed_users() {
    let (dynamo, counting) = counted().await;
    let stub = StripeStub::start().await;
    let app = app(counting.clone(), Some(&stub.uri()));

    // A user seen for the first time: read, create, note that a customer may exist (for the
    // erasure), customer, link, session, remember the session (expired by the next checkout).
    let newcomer = tokens::new_user();
    let (status, _, _) = parts(
        integration_tests::apps::handle(
            "create-checkout-session",
            &app,
            request("create-checkout-session.json", &newcomer),
        )
        .await,
    );
    assert_eq!(status, 200);
    assert_eq!(
        calls(&counting),
        [
            "store:get_user",
            "store:tombstone",
            "store:create_user",
            "store:count_stripe_call",
            "store:expect_customer",
            "store:link_customer",
            "store:set_open_checkout"
        ]
    );
    assert_eq!(
        stub.sent().await.len(),
        2,
        "create customer, create session"
    );

    // A returning user with a customer and no active subscription stored: Stripe is asked
    // whether one exists (a double subscription is a double charge), then the session.
    let (status, _, _) = parts(
        integration_tests::apps::handle(
            "create-checkout-session",
            &app,
            request("create-checkout-session.json", &newcomer),
        )
        .await,
    );
    assert_eq!(status, 200);
    assert_eq!(
        calls(&counting),
        [
            "store:get_user",
            "store:count_stripe_call",
            "store:apply_subscription",
            "store:set_open_checkout"
        ]
    );
    assert_eq!(
        stub.sent().await.len(),
        5,
        "+ list subscriptions, expire the previous session, create session"
    );

    // A subscriber: one read, no Stripe call.
    let subscriber = tokens::new_user();
    let mut record = UserRecord::new_free(UserId::parse(&subscriber).unwrap(), 10, 1);
    record.subscription_status = "active".into();
    dynamo.create_user(&record).await.unwrap();
    let (status, _, _) = parts(
        integration_tests::apps::handle(
            "create-checkout-session",
            &app,
            request("create-checkout-session.json", &subscriber),
        )
        .await,
    );
    assert_eq!(status, 409);
    assert_eq!(calls(&counting), ["store:get_user"]);
    assert_eq!(stub.sent().await.len(), 5);
}

/// `GET /v1/user/credits?<query>` as `user`.
fn history_request(user: &str, query: &str) -> lambda_http::Request {
    let mut event = integration_tests::binaries::event_as("credit-history.json", user);
    event["rawQueryString"] = query.into();
    event
        .as_object_mut()
        .unwrap()
        .remove("queryStringParameters");
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event")
}

#[tokio::test]
async fn the_credit_history_costs_the_status_read_and_one_query_per_page() {
    let proxy = FaultProxy::start().await;
    let dynamo: Arc<dyn Store> = Arc::new(proxy.patient_store().await);
    let counting = Arc::new(FaultyStore::new(dynamo.clone(), Default::default()));
    let app = app(counting.clone(), None);
    let history = |query: String| {
        let (app, user) = (&app, user_id());
        async move {
            parts(
                integration_tests::apps::handle(
                    "credit-history",
                    app,
                    history_request(&user, &query),
                )
                .await,
            )
        }
    };
    fn user_id() -> String {
        static USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        USER.get_or_init(tokens::new_user).clone()
    }

    // First sight: the status's read and create, then the (empty) page.
    let (status, _, body) = history(String::new()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        calls(&counting),
        [
            "store:get_user",
            "store:tombstone",
            "store:create_user",
            "store:entries"
        ]
    );
    assert_eq!(
        proxy.take_calls(),
        ["GetItem", "GetItem", "PutItem", "Query"]
    );

    let user = UserId::parse(&user_id()).unwrap();
    for i in 0..5 {
        let id = format!("io_{i}");
        let adjusted = credits::adjust(
            dynamo.as_ref(),
            &user,
            Balance::FreeMessages,
            1,
            "gift",
            "ops",
            &id,
        );
        adjusted.await.unwrap();
    }
    proxy.take_calls();

    // Each page: the one read of the record, one query.
    let (mut query, mut pages, mut seen) = ("limit=2".to_owned(), 0, 0);
    loop {
        let (status, _, body) = history(query.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(calls(&counting), ["store:get_user", "store:entries"]);
        assert_eq!(proxy.take_calls(), ["GetItem", "Query"], "page {pages}");
        pages += 1;
        seen += body["entries"].as_array().unwrap().len();
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!((pages, seen), (3, 5));
}
