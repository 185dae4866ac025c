//! Where two flows meet, or the deployed stack differs from a lone test (issue 24), on DynamoDB
//! behind the IAM stand-in and the Stripe stub: IAM as deployed, a customer whose payment failed,
//! open Checkout sessions, a second live subscription, an erasure racing a checkout at every
//! step, a paid invoice no redelivery can grant, debit ids, and an erasure without Stripe.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use common::credits::{DebitError, debit_message, refund_message};
use common::domain::{RefundOutcome, UserId, UserRecord};
use common::store::{Erasures, Profiles, Store, StoreError};
use integration_tests::apps::{self, app, customer_of_new_user, event, handle, parts, request};
use integration_tests::faulty_store::FaultyStore;
use integration_tests::stripe_stub::{StripeStub, WEBHOOK_SECRET, fixture, paid_invoice};
use integration_tests::{emulator, stripe_stub, tokens};
use serde_json::{Value, json};

async fn call(function: &str, app: &common::App, user: &str) -> (u16, Value) {
    let req = request(&format!("{function}.json"), user);
    // Boxed: a handler's future is large, and these tests hold two at once.
    let (status, _, body) = parts(Box::pin(handle(function, app, req)).await);
    (status, body)
}

async fn deliver(app: &common::App, event: &Value) -> (u16, Value) {
    let req = apps::webhook(event, WEBHOOK_SECRET, common::unix_now());
    let (status, _, body) = parts(handle("stripe-webhook", app, req).await);
    (status, body)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", tokens::new_user().replace('-', ""))
}

async fn dynamo() -> Arc<dyn Store> {
    Arc::new(emulator::store().await)
}

/// The Checkout session id at the end of a sandbox checkout URL.
fn session_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

// 1. IAM as deployed.

/// A call outside a function's policy is denied as DynamoDB denies it (400
/// `AccessDeniedException`), surfaces as a 503, and changes nothing.
#[tokio::test]
async fn a_call_outside_the_function_s_policy_is_denied_and_changes_nothing() {
    let store = emulator::store().await;
    let user = UserId::parse(&tokens::new_user()).unwrap();
    store
        .create_user(&UserRecord::new_free(user.clone(), 10, 1))
        .await
        .unwrap();
    let denied = emulator::as_function("user-status", store.delete_profile(&user)).await;
    assert!(
        matches!(denied, Err(StoreError::Unavailable(_))),
        "{denied:?}"
    );
    assert!(
        store.get_user(&user).await.unwrap().is_some(),
        "nothing deleted"
    );

    let storage = emulator::storage_config();
    let body = json!({"TableName": storage.table_name,
        "Key": {"pk": {"S": format!("USER#{}", user.as_str())}, "sk": {"S": "PROFILE"}}});
    let answer = reqwest::Client::new()
        .post(storage.endpoint.unwrap())
        .header("x-amz-target", "DynamoDB_20120810.DeleteItem")
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=user-status/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let denial: Value = answer.json().await.unwrap();
    assert_eq!(
        denial["__type"],
        "com.amazon.coral.service#AccessDeniedException"
    );
    let message = denial["Message"].as_str().unwrap();
    assert!(message.contains("is not authorized to perform: dynamodb:DeleteItem"));
    assert!(store.get_user(&user).await.unwrap().is_some());
}

/// The mapping of every customer the erasure closed goes, not only the linked one's: a mapping
/// left by an earlier customer (e.g. one whose unlink was denied before its policy was fixed)
/// named the user after the erasure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_deletes_the_mapping_of_every_customer_it_closed() {
    let (stub, store) = (StripeStub::start().await, dynamo().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, linked) = customer_of_new_user(&store).await;
    stub.add_customer(&linked, user.as_str());
    let earlier = unique("cus");
    stub.add_customer(&earlier, user.as_str());
    let storage = emulator::storage_config();
    emulator::client()
        .await
        .put_item()
        .table_name(&storage.table_name)
        .item("pk", AttributeValue::S(format!("CUSTOMER#{earlier}")))
        .item("sk", AttributeValue::S("CUSTOMER".into()))
        .item("entity", AttributeValue::S("customer".into()))
        .item("user_id", AttributeValue::S(user.as_str().into()))
        .send()
        .await
        .unwrap();

    assert_eq!(call("delete-account", &app, user.as_str()).await.0, 200);
    assert!(stub.customer_deleted(&earlier) && stub.customer_deleted(&linked));
    assert_eq!(emulator::items_mentioning(user.as_str()).await, 0);
    assert_eq!(emulator::items_mentioning(&earlier).await, 0);
}

// 2. A customer whose payment failed is never sold a second subscription.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_whose_payment_failed_gets_the_payment_update_not_a_second_subscription() {
    for status in ["past_due", "unpaid", "incomplete", "paused"] {
        let (stub, store) = (StripeStub::start().await, dynamo().await);
        let app = app(store.clone(), Some(&stub.uri()));
        let (user, customer) = customer_of_new_user(&store).await;
        stub.add_customer(&customer, user.as_str());
        let sub = stripe_stub::subscription("sub_dunning", &customer, status, 1, 1_900_000_000);
        stub.subscriptions(vec![sub]).await;

        let (code, body) = call("create-checkout-session", &app, user.as_str()).await;
        assert_eq!(code, 200, "{status}: {body}");
        let url = body["checkout_url"].as_str().unwrap();
        assert!(url.contains("/portal/"), "{status}: {url}");
        let portals = stub.sent_to("POST /v1/billing_portal/sessions").await;
        assert_eq!(
            portals[0].field("flow_data[type]"),
            Some("payment_method_update"),
            "{status}"
        );
        assert!(
            stub.sent_to("POST /v1/checkout/sessions").await.is_empty(),
            "{status}: no second subscription can be opened"
        );
        let record = store.get_user(&user).await.unwrap().unwrap();
        assert_eq!(record.subscription_status.as_str(), status);
    }

    // With its renewal invoice open, the user pays that invoice's hosted page with a new card.
    let (stub, store) = (StripeStub::start().await, dynamo().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = customer_of_new_user(&store).await;
    let mut sub = stripe_stub::subscription("sub_dunning", &customer, "past_due", 1, 1_900_000_000);
    let mut open = paid_invoice(
        "in_open",
        "sub_dunning",
        1_800_000_000,
        "subscription_cycle",
    );
    open["status"] = json!("open");
    open["hosted_invoice_url"] = json!("https://invoice.stripe.com/i/acct_1/in_open");
    sub["latest_invoice"] = open;
    stub.subscriptions(vec![sub]).await;
    let (code, body) = call("create-checkout-session", &app, user.as_str()).await;
    assert_eq!(
        (code, body["checkout_url"].as_str()),
        (200, Some("https://invoice.stripe.com/i/acct_1/in_open"))
    );
    assert!(stub.sent_to("POST /v1/checkout/sessions").await.is_empty());
}

/// Every session expires within Stripe's bounds, and opening a new one expires the previous:
/// at most one is payable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_checkout_expires_the_previous_session() {
    let (stub, store) = (StripeStub::start().await, dynamo().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let user = tokens::new_user();
    let (code, first) = call("create-checkout-session", &app, &user).await;
    assert_eq!(code, 200, "{first}");
    let first = session_of(first["checkout_url"].as_str().unwrap());
    let created = stub.sent_to("POST /v1/checkout/sessions").await;
    let expires_at: i64 = created[0].field("expires_at").unwrap().parse().unwrap();
    let now = common::unix_now();
    assert!(
        (now + 30 * 60..=now + 24 * 3600).contains(&expires_at),
        "{expires_at}"
    );

    let (code, second) = call("create-checkout-session", &app, &user).await;
    assert_eq!(code, 200, "{second}");
    let second = session_of(second["checkout_url"].as_str().unwrap());
    assert_eq!(stub.checkout_status(&first).as_deref(), Some("expired"));
    assert!(stub.pay(&first).is_err(), "the first can no longer be paid");
    assert_eq!(stub.checkout_status(&second).as_deref(), Some("open"));
    let record = store
        .get_user(&UserId::parse(&user).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.open_checkout.map(|o| o.id), Some(second));
}

/// A double tap: concurrent checkouts all answer 200 with one session, the only payable one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checkouts_leave_one_payable_session() {
    let (stub, store) = (StripeStub::start().await, dynamo().await);
    let app = Arc::new(app(store.clone(), Some(&stub.uri())));
    let user = tokens::new_user();
    assert_eq!(call("create-checkout-session", &app, &user).await.0, 200);
    let taps: Vec<_> = (0..5)
        .map(|_| {
            let (app, user) = (app.clone(), user.clone());
            tokio::spawn(async move { call("create-checkout-session", &app, &user).await })
        })
        .collect();
    let mut urls = std::collections::BTreeSet::new();
    for tap in taps {
        let (code, body) = tap.await.unwrap();
        assert_eq!(code, 200, "{body}");
        urls.insert(body["checkout_url"].as_str().unwrap().to_owned());
    }
    let record = store
        .get_user(&UserId::parse(&user).unwrap())
        .await
        .unwrap()
        .unwrap();
    let customer = record.stripe_customer_id.unwrap();
    assert_eq!(stub.payable_checkouts_of(&customer), 1);
    let open = record.open_checkout.unwrap();
    assert_eq!(stub.checkout_status(&open.id).as_deref(), Some("open"));
    assert!(urls.contains(&open.url), "{urls:?}");
}

/// Subscription `id` of `customer` in `status`, created at `created`, its first invoice
/// `in_<id>` paid (and expanded, as the sync lists it).
fn subscription_paid_first(id: &str, customer: &str, created: i64, status: &str) -> Value {
    let mut sub = stripe_stub::subscription(id, customer, status, created, 1_900_000_000);
    let mut invoice = paid_invoice(&format!("in_{id}"), id, created, "subscription_create");
    invoice["customer"] = json!(customer);
    sub["latest_invoice"] = invoice;
    sub
}

/// A second live subscription (opened through the dashboard, or a race): the sync keeps the
/// older, refunds the newer's payment and cancels it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_subscription_is_refunded_and_canceled_once() {
    let (stub, store) = (StripeStub::start().await, dynamo().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = customer_of_new_user(&store).await;
    let with_invoice = |id: &str, created: i64, status: &str| {
        subscription_paid_first(id, &customer, created, status)
    };
    stub.subscriptions(vec![
        with_invoice("sub_new", 1_700_000_500, "active"),
        with_invoice("sub_old", 1_700_000_000, "active"),
    ])
    .await;

    let (code, body) = call("sync-subscription", &app, user.as_str()).await;
    assert_eq!(
        (code, body["has_subscription"].as_bool()),
        (200, Some(true))
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.subscription_id.as_deref(), Some("sub_old"));
    assert!(stub.invoice_refunded("in_sub_new"));
    assert!(!stub.invoice_refunded("in_sub_old"));
    let canceled = stub.sent_to("DELETE /v1/subscriptions/sub_new").await;
    assert_eq!(canceled.len(), 1);
    assert!(
        stub.sent_to("DELETE /v1/subscriptions/sub_old")
            .await
            .is_empty()
    );

    // Stripe now lists it canceled: later syncs change nothing more.
    stub.subscriptions(vec![
        with_invoice("sub_new", 1_700_000_500, "canceled"),
        with_invoice("sub_old", 1_700_000_000, "active"),
    ])
    .await;
    for _ in 0..2 {
        assert_eq!(call("sync-subscription", &app, user.as_str()).await.0, 200);
    }
    assert_eq!(stub.sent_to("POST /v1/refunds").await.len(), 1);
    assert_eq!(
        stub.sent_to("DELETE /v1/subscriptions/sub_new").await.len(),
        1
    );

    // An older one in dunning beside a newer paying one: the paying one is kept.
    let (user, customer) = customer_of_new_user(&store).await;
    let with_invoice = |id: &str, created: i64, status: &str| {
        subscription_paid_first(id, &customer, created, status)
    };
    stub.subscriptions(vec![
        with_invoice("sub_paying", 1_700_000_500, "active"),
        with_invoice("sub_dunning", 1_700_000_000, "past_due"),
    ])
    .await;
    let (code, body) = call("sync-subscription", &app, user.as_str()).await;
    assert_eq!(
        (code, body["has_subscription"].as_bool()),
        (200, Some(true))
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.subscription_id.as_deref(), Some("sub_paying"));
    let canceled = stub.sent_to("DELETE /v1/subscriptions/sub_dunning").await;
    assert_eq!(canceled.len(), 1);
    let kept = stub.sent_to("DELETE /v1/subscriptions/sub_paying").await;
    assert!(kept.is_empty());
}

/// A subscription to a price this service does not sell (on the same Stripe account) neither
/// entitles nor grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_to_another_price_entitles_nothing() {
    let (stub, store) = (StripeStub::start().await, dynamo().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = customer_of_new_user(&store).await;
    let mut cheaper =
        apps::subscription_paid_by(&customer, "in_cheap", 1_700_000_000, "subscription_create");
    cheaper["items"]["data"][0]["price"]["id"] = json!("price_cheaper_product");
    stub.subscriptions(vec![cheaper]).await;
    let (code, body) = call("sync-subscription", &app, user.as_str()).await;
    assert_eq!(code, 200);
    assert_eq!(
        (
            body["has_subscription"].as_bool(),
            body["credits_remaining"].as_i64()
        ),
        (Some(false), Some(0))
    );

    // A price this service sold before and retired (`STRIPE_RETIRED_PRICE_IDS`) still counts.
    let retired = [("STRIPE_RETIRED_PRICE_IDS", "price_cheaper_product")];
    let stripe = apps::stripe_config_with(&stub.uri(), &retired);
    let billing = common::billing::Billing::new(stripe).unwrap();
    let retiring = common::App::new(apps::config(), store.clone(), Some(billing));
    let (code, body) = call("sync-subscription", &retiring, user.as_str()).await;
    assert_eq!(
        (
            code,
            body["has_subscription"].as_bool(),
            body["credits_remaining"].as_i64()
        ),
        (200, Some(true), Some(1000))
    );
}

// 3. Erasure and checkout cannot interleave into a paying ghost.

/// After both flows ended, however they interleaved: nothing of the user is stored, every
/// customer ever made for the user is deleted at Stripe (once the webhook of its creation came),
/// and no Checkout session of the user can be paid.
async fn assert_no_paying_ghost(
    stub: &StripeStub,
    webhook_app: &common::App,
    user: &str,
    checkout: &(u16, Value),
) {
    assert!([200, 410].contains(&checkout.0), "checkout: {checkout:?}");
    for customer in stub.customers_made_for(user) {
        let mut created = fixture("customer");
        created["id"] = json!(customer);
        let evt = event(&unique("evt"), "customer.created", created);
        assert_eq!(deliver(webhook_app, &evt).await.0, 200);
        assert!(
            stub.customer_deleted(&customer),
            "{customer} of the erased user is closed"
        );
    }
    if let Some(url) = checkout.1["checkout_url"].as_str() {
        assert!(
            stub.pay(&session_of(url)).is_err(),
            "its session cannot be paid"
        );
    }
    assert_eq!(emulator::items_mentioning(user).await, 0, "nothing stored");
}

/// Runs `first` until its call number `step` reaches the store, runs `second` to its end, then
/// lets `first` finish. `None` when `first` ended before making that many calls.
async fn interleave<A, B>(
    faulty: &FaultyStore,
    step: usize,
    first: A,
    second: impl std::future::Future<Output = B>,
) -> Option<(A::Output, B)>
where
    A: std::future::Future + Send + 'static,
    A::Output: Send + 'static,
{
    let pause = faulty.pause_at(step);
    let mut first = tokio::spawn(first);
    tokio::select! {
        () = pause.reached() => {}
        ended = &mut first => {
            ended.unwrap();
            return None;
        }
    }
    let second = Box::pin(second).await;
    pause.resume();
    Some((first.await.unwrap(), second))
}

/// A checkout held back by nothing, run while the erasure is held at each of its store calls in
/// turn: for a user with a record, and for one whose first request of all is that checkout (no
/// record yet: the erasure's mark stands in for one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_at_any_step_of_an_erasure_leaves_no_paying_ghost() {
    let stub = StripeStub::start().await;
    let dynamo = dynamo().await;
    let plain = Arc::new(app(dynamo.clone(), Some(&stub.uri())));
    for seeded in [true, false] {
        for step in 0.. {
            let user = tokens::new_user();
            if seeded {
                assert_eq!(call("user-status", &plain, &user).await.0, 200);
            }
            let faulty = Arc::new(FaultyStore::new(dynamo.clone(), Default::default()));
            let erasing = Arc::new(app(faulty.clone(), Some(&stub.uri())));
            let erase = {
                let (erasing, user) = (erasing.clone(), user.clone());
                async move { call("delete-account", &erasing, &user).await }
            };
            let checkout = call("create-checkout-session", &plain, &user);
            let Some((erased, checkout)) = interleave(&faulty, step, erase, checkout).await else {
                assert!(step > 3, "the erasure makes several store calls");
                break;
            };
            assert_eq!(erased.0, 200, "step {step}: {erased:?}");
            assert_no_paying_ghost(&stub, &plain, &user, &checkout).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_at_any_step_of_a_checkout_leaves_no_paying_ghost() {
    let stub = StripeStub::start().await;
    let dynamo = dynamo().await;
    let plain = Arc::new(app(dynamo.clone(), Some(&stub.uri())));
    for step in 0.. {
        let user = tokens::new_user();
        assert_eq!(call("user-status", &plain, &user).await.0, 200);
        let faulty = Arc::new(FaultyStore::new(dynamo.clone(), Default::default()));
        let buying = Arc::new(app(faulty.clone(), Some(&stub.uri())));
        let buy = {
            let (buying, user) = (buying.clone(), user.clone());
            async move { call("create-checkout-session", &buying, &user).await }
        };
        let Some((checkout, erased)) =
            interleave(&faulty, step, buy, call("delete-account", &plain, &user)).await
        else {
            assert!(step > 3, "the checkout makes several store calls");
            break;
        };
        assert_eq!(erased.0, 200, "step {step}: {erased:?}");
        assert_no_paying_ghost(&stub, &plain, &user, &checkout).await;
    }
}

/// A webhook about a customer made for an erased user (found by its own `metadata.user_id`)
/// closes it at Stripe; a customer of nobody known is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_about_an_erased_user_s_customer_closes_it() {
    let (stub, store) = (StripeStub::start().await, dynamo().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let user = tokens::new_user();
    assert_eq!(call("user-status", &app, &user).await.0, 200);
    assert_eq!(call("delete-account", &app, &user).await.0, 200);
    let (ghost, stranger) = (unique("cus"), unique("cus"));
    stub.add_customer(&ghost, &user);
    stub.add_customer(&stranger, &tokens::new_user());
    let live = stripe_stub::subscription("sub_ghost", &ghost, "active", 1, 1_900_000_000);
    stub.subscriptions_of_each_customer(vec![live]).await;
    for customer in [&ghost, &stranger] {
        let updated = stripe_stub::subscription("sub_x", customer, "active", 1, 2);
        let evt = event(&unique("evt"), "customer.subscription.updated", updated);
        assert_eq!(deliver(&app, &evt).await.0, 200);
    }
    assert!(stub.customer_deleted(&ghost));
    assert_eq!(
        stub.sent_to("DELETE /v1/subscriptions/sub_ghost")
            .await
            .len(),
        1
    );
    assert!(!stub.customer_deleted(&stranger), "not ours to close");
}

// 4. Stripe gets a 2xx for what can never succeed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_invoice_of_an_ended_subscription_is_acknowledged_and_grants_nothing() {
    for status in ["canceled", "past_due", "unpaid", "incomplete_expired"] {
        let (stub, store) = (StripeStub::start().await, dynamo().await);
        let app = app(store.clone(), Some(&stub.uri()));
        let (user, customer) = customer_of_new_user(&store).await;
        let mut sub =
            apps::subscription_paid_by(&customer, "in_late", 1_700_000_000, "subscription_cycle");
        sub["status"] = json!(status);
        stub.subscriptions(vec![sub]).await;
        let paid = apps::invoice_paid(&unique("evt"), "in_late", &customer, 1_700_000_000);
        assert_eq!(
            deliver(&app, &paid).await,
            (200, json!({"received": true})),
            "{status}"
        );
        let record = store.get_user(&user).await.unwrap().unwrap();
        assert_eq!(record.credits_remaining, 0, "{status}");
        let lists = stub.sent_to("GET /v1/subscriptions").await.len();
        assert_eq!(deliver(&app, &paid).await.0, 200);
        assert_eq!(
            stub.sent_to("GET /v1/subscriptions").await.len(),
            lists,
            "{status}: done for good"
        );
    }
}

// 5. Debits, refunds and their ids.

#[tokio::test]
async fn a_debit_after_its_refund_is_charged_again() {
    let store = dynamo().await;
    let rules = apps::config().rules;
    let user = UserId::parse(&tokens::new_user()).unwrap();
    let message = unique("msg");
    let first = debit_message(
        store.as_ref(),
        &common::domain::Caller::signed_in(&user),
        &rules,
        &message,
        "default",
    )
    .await
    .unwrap();
    assert_eq!(
        refund_message(store.as_ref(), &user, &message)
            .await
            .unwrap(),
        RefundOutcome::Refunded
    );
    let retried = debit_message(
        store.as_ref(),
        &common::domain::Caller::signed_in(&user),
        &rules,
        &message,
        "default",
    )
    .await
    .unwrap();
    assert_eq!(retried.remaining, first.remaining, "the retry is paid for");
    let again = debit_message(
        store.as_ref(),
        &common::domain::Caller::signed_in(&user),
        &rules,
        &message,
        "default",
    )
    .await
    .unwrap();
    assert_eq!(again.remaining, first.remaining, "and only once");
}

#[tokio::test]
async fn a_bad_debit_id_is_a_distinct_error_and_changes_nothing() {
    let store = dynamo().await;
    let rules = apps::config().rules;
    let user = UserId::parse(&tokens::new_user()).unwrap();
    debit_message(
        store.as_ref(),
        &common::domain::Caller::signed_in(&user),
        &rules,
        "msg_first",
        "default",
    )
    .await
    .unwrap();
    let before = store.get_user(&user).await.unwrap();
    let items = emulator::items_of(user.as_str()).await.len();
    for bad in [
        "",
        &"m".repeat(129),
        "caf\u{e9}",
        "tab\there",
        &"k".repeat(2000),
    ] {
        let err = debit_message(
            store.as_ref(),
            &common::domain::Caller::signed_in(&user),
            &rules,
            bad,
            "default",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DebitError::InvalidId(_)), "{bad:?}");
        let err = common::ApiError::from(err);
        assert_eq!(
            (err.status().as_u16(), err.code()),
            (400, "INVALID_DEBIT_ID")
        );
        assert!(err.retry_after().is_none(), "never worth a retry");
        let refund = refund_message(store.as_ref(), &user, bad)
            .await
            .unwrap_err();
        assert!(matches!(refund, DebitError::InvalidId(_)));
    }
    assert_eq!(store.get_user(&user).await.unwrap(), before);
    assert_eq!(emulator::items_of(user.as_str()).await.len(), items);
}

// 6. Erasing a user who never paid needs no Stripe.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_never_opened_a_checkout_is_erased_with_stripe_down() {
    let (stub, store) = (StripeStub::start().await, dynamo().await);
    for route in ["/v1/customers/search", "/v1/customers"] {
        for verb in ["GET", "POST"] {
            stub.fail(verb, route, 500, None).await;
        }
    }
    let app = app(store.clone(), Some(&stub.uri()));
    let free = tokens::new_user();
    assert_eq!(call("user-status", &app, &free).await.0, 200);
    assert_eq!(
        call("delete-account", &app, &free).await,
        (200, json!({"deleted": true}))
    );
    assert!(stub.sent().await.is_empty(), "Stripe was not asked");
    assert_eq!(emulator::items_mentioning(&free).await, 0);

    // One whose checkout reached Stripe (the customer may exist) is not erased blind.
    let tried = tokens::new_user();
    assert_eq!(call("create-checkout-session", &app, &tried).await.0, 502);
    let (code, body) = call("delete-account", &app, &tried).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (502, Some("STRIPE_ERROR"))
    );
}
