//! `DELETE /v1/user/delete-account`, called directly, on DynamoDB (emulator) and the Stripe stub.

use std::sync::Arc;

use common::domain::{UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::{app, event, parts, request, webhook};
use integration_tests::faulty_store::{FaultyStore, Strike};
use integration_tests::stripe_stub::{StripeStub, WEBHOOK_SECRET, subscription};
use integration_tests::{emulator, tokens};
use serde_json::Value;

/// A user with a profile, a customer mapping, and `items` conversation and key-metadata items.
async fn seeded_user(store: &Arc<dyn Store>, items: usize) -> (String, String) {
    let id = tokens::new_user();
    let user = UserId::parse(&id).unwrap();
    store
        .create_user(&UserRecord::new_free(user.clone(), 10, 1))
        .await
        .unwrap();
    let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
    store.link_customer(&user, &customer).await.unwrap();
    emulator::seed_items(&id, "CONV", items).await;
    emulator::seed_items(&id, "KEY", 5).await;
    (id, customer)
}

async fn delete(app: &common::App, user: &str) -> (u16, Value) {
    let (status, _, body) = parts(
        integration_tests::apps::handle(
            "delete-account",
            app,
            request("delete-account.json", user),
        )
        .await,
    );
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_goes_and_the_neighbour_stays() {
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = seeded_user(&store, 3000).await;
    let (neighbour, neighbour_customer) = seeded_user(&store, 40).await;
    let neighbour_items = emulator::items_mentioning(&neighbour).await;
    assert_eq!(
        emulator::items_mentioning(&user).await,
        3000 + 5 + 2,
        "seeded (items, profile, mapping)"
    );

    let (status, body) = delete(&app, &user).await;
    assert_eq!((status, body), (200, serde_json::json!({"deleted": true})));
    assert_eq!(
        emulator::items_mentioning(&user).await,
        0,
        "a scan finds nothing of theirs"
    );
    assert_eq!(
        emulator::items_mentioning(&customer).await,
        0,
        "nor their customer"
    );
    assert_eq!(
        emulator::items_mentioning(&neighbour).await,
        neighbour_items
    );
    assert_eq!(
        store.user_for_customer(&neighbour_customer).await.unwrap(),
        Some(UserId::parse(&neighbour).unwrap())
    );
    let erased = UserId::parse(&user).unwrap();
    assert!(store.tombstone(&erased).await.unwrap().is_some());
    assert_eq!(
        emulator::items_mentioning(&erased.full_hash()).await,
        1,
        "one tombstone, keyed by a hash"
    );

    // Replay after success: 200, still nothing.
    assert_eq!(delete(&app, &user).await.0, 200);
    assert_eq!(emulator::items_mentioning(&user).await, 0);
}

#[tokio::test]
async fn stripe_is_closed_first_cancel_then_delete_before_any_table_write() {
    let (stub, dynamo) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let (user, customer) = seeded_user(&dynamo, 3).await;
    stub.subscriptions(vec![
        subscription("sub_live", &customer, "active", 2, 3),
        subscription("sub_old", &customer, "canceled", 1, 2),
    ])
    .await;
    let faulty = Arc::new(FaultyStore::new(dynamo.clone(), Default::default()));
    faulty.fail("write_tombstone", 1, Strike::Before);
    let app = app(faulty.clone(), Some(&stub.uri()));

    let (status, body) = delete(&app, &user).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("SERVICE_UNAVAILABLE"))
    );
    let routes: Vec<String> = stub.sent().await.into_iter().map(|s| s.route).collect();
    assert_eq!(
        routes,
        [
            "GET /v1/customers/search".to_owned(),
            "GET /v1/subscriptions".to_owned(),
            "DELETE /v1/subscriptions/sub_live".to_owned(),
            format!("DELETE /v1/customers/{customer}")
        ],
        "only the live subscription is canceled, then the customer deleted"
    );
    let cancel = &stub.sent_to("DELETE /v1/subscriptions/sub_live").await[0];
    assert_eq!(
        (cancel.field("prorate"), cancel.field("invoice_now")),
        (Some("false"), Some("false"))
    );
    assert_eq!(
        emulator::items_mentioning(&user).await,
        3 + 5 + 2,
        "nothing deleted yet"
    );

    // The retry: Stripe objects already gone (404) count as done; the table is emptied.
    assert_eq!(delete(&app, &user).await.0, 200);
    let store_calls: Vec<String> = faulty
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.contains("delete") || c.contains("tombstone"))
        .cloned()
        .collect();
    assert_eq!(
        store_calls,
        [
            "store:tombstone",
            "store:write_tombstone",
            "store:tombstone",
            "store:write_tombstone",
            "store:delete_owned_items",
            "store:delete_customer_link",
            "store:delete_profile",
            "store:write_tombstone"
        ],
        "each call reads how far the last got; the tombstone moves on after each step"
    );
    assert_eq!(emulator::items_mentioning(&user).await, 0);
}

#[tokio::test]
async fn stripe_failing_on_the_cancel_is_502_and_every_item_stays() {
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = seeded_user(&store, 10).await;
    stub.subscriptions(vec![subscription("sub_live", &customer, "active", 2, 3)])
        .await;
    stub.fail("DELETE", "/v1/subscriptions/sub_live", 500, None)
        .await;
    let (status, body) = delete(&app, &user).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("STRIPE_ERROR"))
    );
    assert_eq!(emulator::items_mentioning(&user).await, 10 + 5 + 2);
    assert!(
        stub.sent_to(&format!("DELETE /v1/customers/{customer}"))
            .await
            .is_empty()
    );
    let id = UserId::parse(&user).unwrap();
    assert_eq!(store.tombstone(&id).await.unwrap(), None);
}

#[tokio::test]
async fn storage_failing_midway_is_503_and_the_retry_finishes() {
    let (stub, dynamo) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let (user, customer) = seeded_user(&dynamo, 60).await;
    let faulty = Arc::new(FaultyStore::new(dynamo.clone(), Default::default()));
    faulty.fail("delete_customer_link", 1, Strike::Before);
    let app = app(faulty, Some(&stub.uri()));

    let (status, body) = delete(&app, &user).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("SERVICE_UNAVAILABLE"))
    );
    assert_eq!(
        emulator::items_mentioning(&user).await,
        2,
        "items gone; mapping and profile left"
    );
    let (status, _, body) = parts(
        integration_tests::apps::handle("user-status", &app, request("user-status.json", &user))
            .await,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("ACCOUNT_DELETED")),
        "from the moment the erasure began, the account serves no one"
    );

    assert_eq!(delete(&app, &user).await.0, 200);
    assert_eq!(emulator::items_mentioning(&user).await, 0);
    assert_eq!(emulator::items_mentioning(&customer).await, 0);
}

#[tokio::test]
async fn nothing_comes_back_after_erasure() {
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = seeded_user(&store, 2).await;
    assert_eq!(delete(&app, &user).await.0, 200);

    // A late webhook for the deleted customer.
    let late = event(
        &format!("evt_{}", tokens::new_user()),
        "customer.subscription.deleted",
        subscription("sub_x", &customer, "canceled", 1, 2),
    );
    let (status, _, _) = parts(
        integration_tests::apps::handle(
            "stripe-webhook",
            &app,
            webhook(&late, WEBHOOK_SECRET, common::unix_now()),
        )
        .await,
    );
    assert_eq!(status, 200);

    // The deleted user's still-valid token.
    for response in [
        integration_tests::apps::handle("user-status", &app, request("user-status.json", &user))
            .await,
        integration_tests::apps::handle(
            "create-checkout-session",
            &app,
            request("create-checkout-session.json", &user),
        )
        .await,
        integration_tests::apps::handle(
            "sync-subscription",
            &app,
            request("sync-subscription.json", &user),
        )
        .await,
    ] {
        let (status, _, body) = parts(response);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (410, Some("ACCOUNT_DELETED"))
        );
    }
    assert_eq!(
        emulator::items_mentioning(&user).await,
        0,
        "nothing was recreated"
    );
    assert_eq!(emulator::items_mentioning(&customer).await, 0);
    assert!(stub.sent_to("POST /v1/customers").await.is_empty());
}

#[tokio::test]
async fn stripe_objects_already_gone_count_as_done() {
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = seeded_user(&store, 1).await;
    stub.subscriptions(vec![subscription("sub_gone", &customer, "active", 2, 3)])
        .await;
    stub.fail("DELETE", "/v1/subscriptions/sub_gone", 404, None)
        .await;
    stub.fail("DELETE", &format!("/v1/customers/{customer}"), 404, None)
        .await;
    assert_eq!(delete(&app, &user).await.0, 200);
    assert_eq!(emulator::items_mentioning(&user).await, 0);
}
