//! A Stripe customer deleted behind our back (in the Stripe dashboard), as Stripe really answers
//! then: the deleted customer is kept as `{"deleted": true}`, and a Checkout or portal session
//! for it is refused with 400 `resource_missing`. Checkout replaces it, the portal says there is
//! nothing to manage, the sync answers the free status, the `customer.deleted` event forgets it,
//! and an erasure still completes.

use std::sync::Arc;

use common::domain::{UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::{app, event, parts, request, webhook};
use integration_tests::stripe_stub::{StripeStub, WEBHOOK_SECRET, customer_for_key, fixture};
use integration_tests::{emulator, tokens};
use serde_json::{Value, json};

async fn call(function: &str, app: &common::App, user: &str) -> (u16, Value) {
    let req = request(&format!("{function}.json"), user);
    let (status, _, body) = parts(integration_tests::apps::handle(function, app, req).await);
    (status, body)
}

/// A user who checked out once: a record linked to the customer the stub created.
async fn customer_of(app: &common::App, store: &Arc<dyn Store>) -> (String, UserId, String) {
    let user = tokens::new_user();
    assert_eq!(call("create-checkout-session", app, &user).await.0, 200);
    let id = UserId::parse(&user).unwrap();
    let customer = store
        .get_user(&id)
        .await
        .unwrap()
        .unwrap()
        .stripe_customer_id
        .unwrap();
    assert_eq!(customer, customer_for_key(&format!("customer-{user}")));
    (user, id, customer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_replaces_a_customer_deleted_in_the_dashboard() {
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = Arc::new(app(store.clone(), Some(&stub.uri())));
    let (user, id, gone) = customer_of(&app, &store).await;
    stub.delete_customer(&gone);

    // A double tap: both answer 200, one new customer.
    let taps: Vec<_> = (0..5)
        .map(|_| {
            let (app, user) = (app.clone(), user.clone());
            tokio::spawn(async move { call("create-checkout-session", &app, &user).await })
        })
        .collect();
    for tap in taps {
        let (status, body) = tap.await.unwrap();
        let routes: Vec<String> = stub.sent().await.into_iter().map(|s| s.route).collect();
        assert_eq!(status, 200, "{body} {routes:?}");
    }
    let fresh = customer_for_key(&format!("customer-{user}-after-{gone}"));
    assert_ne!(
        fresh, gone,
        "a new key, since the old one would replay the deleted customer"
    );
    let record = store.get_user(&id).await.unwrap().unwrap();
    assert_eq!(record.stripe_customer_id.as_deref(), Some(fresh.as_str()));
    assert_eq!(store.user_for_customer(&fresh).await.unwrap(), Some(id));
    assert_eq!(
        store.user_for_customer(&gone).await.unwrap(),
        None,
        "re-linked both ways"
    );
    let sessions = stub.sent_to("POST /v1/checkout/sessions").await;
    assert_eq!(
        sessions.last().unwrap().field("customer"),
        Some(fresh.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_with_a_deleted_customer_is_404_no_subscription() {
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, id, gone) = customer_of(&app, &store).await;
    stub.delete_customer(&gone);

    let (status, body) = call("create-portal-session", &app, &user).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NO_SUBSCRIPTION"))
    );
    let record = store.get_user(&id).await.unwrap().unwrap();
    assert_eq!(record.stripe_customer_id, None, "forgotten");
    assert_eq!(record.free_messages_remaining, 10, "free messages stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_with_a_deleted_customer_answers_the_free_status() {
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = app(store.clone(), Some(&stub.uri()));
    let user = tokens::new_user();
    let id = UserId::parse(&user).unwrap();
    let mut record = UserRecord::new_free(id.clone(), 10, 1);
    (
        record.subscription_status,
        record.plan,
        record.credits_remaining,
    ) = ("active".into(), "pro".into(), 300);
    store.create_user(&record).await.unwrap();
    let gone = format!("cus_{}", tokens::new_user().replace('-', ""));
    store.link_customer(&id, &gone).await.unwrap();
    stub.delete_customer(&gone);

    let (status, body) = call("sync-subscription", &app, &user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["has_subscription"].as_bool(),
            body["subscription_status"].as_str(),
            body["credits_remaining"].as_i64()
        ),
        (Some(false), Some("none"), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_deleted_event_unlinks_the_customer() {
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = app(store.clone(), Some(&stub.uri()));
    let (_, id, gone) = customer_of(&app, &store).await;
    stub.delete_customer(&gone);
    let mut deleted = fixture("deleted_customer");
    deleted["id"] = json!(gone);
    let evt = event(
        &format!("evt_{}", tokens::new_user()),
        "customer.deleted",
        deleted,
    );

    let req = webhook(&evt, WEBHOOK_SECRET, common::unix_now());
    let (status, _, _) = parts(integration_tests::apps::handle("stripe-webhook", &app, req).await);
    assert_eq!(status, 200);
    let record = store.get_user(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            record.stripe_customer_id,
            record.subscription_status.as_str()
        ),
        (None, "none")
    );
    assert_eq!(store.user_for_customer(&gone).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_after_stripe_deleted_the_customer_completes() {
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, _, gone) = customer_of(&app, &store).await;
    stub.delete_customer(&gone);

    let (status, body) = call("delete-account", &app, &user).await;
    assert_eq!((status, body), (200, json!({"deleted": true})));
    assert_eq!(emulator::items_mentioning(&user).await, 0);
    assert_eq!(emulator::items_mentioning(&gone).await, 0);
}
