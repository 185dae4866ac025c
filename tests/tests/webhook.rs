//! `POST /webhooks/stripe`, called directly, on DynamoDB (emulator) with the Stripe stub behind
//! the sync: signatures, exactly-once processing, ordering, grants and failures.

use std::sync::Arc;

use common::domain::{Balance, EventOutcome, UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::{app, customer_of_new_user, event, invoice_paid, parts, webhook};
use integration_tests::conformance::debit;
use integration_tests::stripe_stub::{StripeStub, WEBHOOK_SECRET, fixture, subscription};
use integration_tests::{apps, binaries, emulator, tokens};
use serde_json::{Value, json};

async fn store() -> Arc<dyn Store> {
    Arc::new(emulator::store().await)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", tokens::new_user().replace('-', ""))
}

fn subscription_event(id: &str, kind: &str, customer: &str, status: &str) -> Value {
    event(
        id,
        kind,
        subscription("sub_x", customer, status, 1_700_000_000, 1_800_000_000),
    )
}

async fn deliver(app: &common::App, event: &Value) -> (u16, Value) {
    let (status, _, body) = parts(
        integration_tests::apps::handle(
            "stripe-webhook",
            app,
            webhook(event, WEBHOOK_SECRET, common::unix_now()),
        )
        .await,
    );
    (status, body)
}

#[tokio::test]
async fn signatures_are_checked_on_the_raw_body_and_a_refusal_changes_nothing() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = customer_of_new_user(&store).await;
    stub.subscriptions(vec![subscription("sub_1", &customer, "active", 1, 2)])
        .await;
    let before = store.get_user(&user).await.unwrap();
    let evt = subscription_event(
        &unique("evt"),
        "customer.subscription.updated",
        &customer,
        "active",
    );
    let body = evt.to_string();
    let now = common::unix_now();
    let sign = |body: &str, secret: &str, t: i64| {
        common::webhook::signature::sign(body.as_bytes(), secret, t)
    };
    let good = sign(&body, WEBHOOK_SECRET, now);
    let good_v1 = good.split("v1=").nth(1).unwrap().to_owned();
    let cases: Vec<(&str, Option<String>, String)> = vec![
        (
            "wrong secret",
            Some(sign(&body, "whsec_wrong", now)),
            body.clone(),
        ),
        (
            "tampered body",
            Some(good.clone()),
            body.replace("active", "canceled"),
        ),
        (
            "301 s old",
            Some(sign(&body, WEBHOOK_SECRET, now - 301)),
            body.clone(),
        ),
        ("missing header", None, body.clone()),
        (
            "malformed header",
            Some("t=now,v1=nothex".into()),
            body.clone(),
        ),
    ];
    for (name, header, payload) in cases {
        let mut req = http::Request::builder()
            .method("POST")
            .uri("/webhooks/stripe");
        if let Some(header) = header {
            req = req.header("stripe-signature", header);
        }
        let req = req.body(lambda_http::Body::Text(payload)).unwrap();
        let (status, _, body) =
            parts(integration_tests::apps::handle("stripe-webhook", &app, req).await);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("INVALID_SIGNATURE")),
            "{name}"
        );
    }
    assert!(stub.sent().await.is_empty(), "nothing was processed");
    assert_eq!(store.get_user(&user).await.unwrap(), before);
    assert_eq!(
        store
            .begin_event(evt["id"].as_str().unwrap(), now)
            .await
            .unwrap(),
        common::domain::EventClaim::Claimed,
        "no event record was written"
    );
    store
        .finish_event(evt["id"].as_str().unwrap(), EventOutcome::Failed, now)
        .await
        .unwrap();

    // Two v1 signatures, one wrong (secret rotation): accepted.
    let rotated = format!("t={now},v1={},v1={good_v1}", "0".repeat(64));
    let req = http::Request::builder()
        .method("POST")
        .uri("/webhooks/stripe")
        .header("stripe-signature", rotated)
        .body(lambda_http::Body::Text(body))
        .unwrap();
    let (status, _, body) =
        parts(integration_tests::apps::handle("stripe-webhook", &app, req).await);
    assert_eq!((status, body), (200, json!({"received": true})));
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .subscription_status,
        "active"
    );
}

#[tokio::test]
async fn a_base64_encoded_body_is_verified_on_its_decoded_bytes() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store, Some(&stub.uri()));
    let mut sample = binaries::event("stripe-webhook-base64.json");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sample["body"].as_str().unwrap())
        .unwrap();
    let now = common::unix_now();
    sample["headers"]["stripe-signature"] =
        json!(common::webhook::signature::sign(&raw, WEBHOOK_SECRET, now));
    let req = lambda_http::request::from_str(&sample.to_string()).unwrap();
    let (status, _, body) =
        parts(integration_tests::apps::handle("stripe-webhook", &app, req).await);
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoice_paid_grants_once_however_often_and_concurrently_it_arrives() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = Arc::new(app(store.clone(), Some(&stub.uri())));
    let (user, customer) = customer_of_new_user(&store).await;
    let paid_by = |invoice, created| {
        apps::subscription_paid_by(&customer, invoice, created, "subscription_cycle")
    };
    stub.subscriptions(vec![paid_by("in_period1", 1_700_000_000)])
        .await;

    let first = invoice_paid(&unique("evt"), "in_period1", &customer, 1_700_000_000);
    for _ in 0..5 {
        assert_eq!(deliver(&app, &first).await.0, 200);
    }
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (record.credits_remaining, record.plan.as_str()),
        (1000, "pro")
    );
    let msg = common::domain::DebitId::parse(&unique("msg")).unwrap();
    debit(store.as_ref(), &user, Balance::Credits, "active", &msg, 1)
        .await
        .unwrap();

    // Five deliveries at once of the next period's invoice, plus the same invoice under
    // another event id: credits reset once.
    stub.subscriptions(vec![paid_by("in_period2", 1_702_000_000)])
        .await;
    let second = invoice_paid(&unique("evt"), "in_period2", &customer, 1_702_000_000);
    let again = invoice_paid(&unique("evt"), "in_period2", &customer, 1_702_000_000);
    let deliveries: Vec<_> = (0..5)
        .map(|_| {
            let (app, second) = (Arc::clone(&app), second.clone());
            tokio::spawn(async move { deliver(&app, &second).await.0 })
        })
        .collect();
    for delivery in deliveries {
        let status = delivery.await.unwrap();
        assert!(
            status == 200 || status == 409,
            "200 or in-progress, got {status}"
        );
    }
    assert_eq!(deliver(&app, &second).await.0, 200);
    let msg = common::domain::DebitId::parse(&unique("msg")).unwrap();
    debit(store.as_ref(), &user, Balance::Credits, "active", &msg, 1)
        .await
        .unwrap();
    assert_eq!(deliver(&app, &again).await.0, 200);
    assert_eq!(
        deliver(&app, &first).await.0,
        200,
        "the old period's event, redelivered"
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        record.credits_remaining, 999,
        "granted once for period 2, then one debit"
    );
    assert_eq!(record.granted_invoices.len(), 2);
}

#[tokio::test]
async fn out_of_order_events_end_in_stripes_state() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = customer_of_new_user(&store).await;
    stub.subscriptions(vec![subscription(
        "sub_x",
        &customer,
        "active",
        1,
        1_800_000_000,
    )])
    .await;
    // `updated` before `created`.
    for kind in [
        "customer.subscription.updated",
        "customer.subscription.created",
    ] {
        assert_eq!(
            deliver(
                &app,
                &subscription_event(&unique("evt"), kind, &customer, "active")
            )
            .await
            .0,
            200
        );
    }
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .subscription_status,
        "active"
    );

    // Then Stripe ends it; `deleted` arrives, then a stale `updated` saying active.
    let (stub2, _) = (StripeStub::start().await, ());
    let app2 = integration_tests::apps::app(store.clone(), Some(&stub2.uri()));
    stub2
        .subscriptions(vec![subscription(
            "sub_x",
            &customer,
            "canceled",
            1,
            1_800_000_000,
        )])
        .await;
    deliver(
        &app2,
        &invoice_paid(&unique("evt"), "in_x", &customer, 1_700_000_000),
    )
    .await;
    assert_eq!(
        deliver(
            &app2,
            &subscription_event(
                &unique("evt"),
                "customer.subscription.deleted",
                &customer,
                "canceled"
            )
        )
        .await
        .0,
        200
    );
    assert_eq!(
        deliver(
            &app2,
            &subscription_event(
                &unique("evt"),
                "customer.subscription.updated",
                &customer,
                "active"
            )
        )
        .await
        .0,
        200
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (record.subscription_status.as_str(), record.plan.as_str()),
        ("canceled", "free")
    );
    assert_eq!(
        (record.credits_remaining, record.free_messages_remaining),
        (0, 10),
        "credits lapse, free messages stay"
    );
}

#[tokio::test]
async fn a_failed_event_is_marked_failed_and_redelivery_succeeds() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = customer_of_new_user(&store).await;
    stub.subscriptions(vec![subscription("sub_f", &customer, "past_due", 1, 2)])
        .await;
    stub.fail("GET", "/v1/subscriptions", 500, Some(3)).await;
    let evt = event(
        &unique("evt"),
        "invoice.payment_failed",
        json!({"id": "in_f", "customer": customer}),
    );
    let (status, body) = deliver(&app, &evt).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("STRIPE_ERROR"))
    );
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .subscription_status,
        "none"
    );
    assert_eq!(deliver(&app, &evt).await.0, 200, "Stripe's redelivery");
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .subscription_status,
        "past_due"
    );
    assert_eq!(deliver(&app, &evt).await.0, 200);
    assert_eq!(
        stub.sent_to("GET /v1/subscriptions").await.len(),
        4,
        "3 failed attempts, 1 success, no more"
    );
}

/// The account takeover of issue 25: a Checkout session made outside this service (a Payment
/// Link with `?client_reference_id=<victim>`, on a customer of the attacker's) completes. Before,
/// the webhook linked that customer to the victim, who became subscribed with this plan's
/// credits and whose portal opened on the attacker's customer. No event links a customer now.
#[tokio::test]
async fn a_checkout_session_made_elsewhere_links_no_customer_to_the_user_it_names() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let victim = UserId::parse(&tokens::new_user()).unwrap();
    store
        .create_user(&UserRecord::new_free(victim.clone(), 10, 1))
        .await
        .unwrap();
    let attacker = unique("cus");
    stub.add_customer(&attacker, &tokens::new_user());
    stub.subscriptions(vec![apps::subscription_paid_by(
        &attacker,
        &unique("in"),
        1_700_000_000,
        "subscription_create",
    )])
    .await;
    let mut session = fixture("checkout.session");
    session["customer"] = json!(attacker);
    session["client_reference_id"] = json!(victim.as_str());
    session["metadata"] = json!({"user_id": victim.as_str()});
    let completed = event(&unique("evt"), "checkout.session.completed", session);
    assert_eq!(deliver(&app, &completed).await.0, 200);
    assert_eq!(store.user_for_customer(&attacker).await.unwrap(), None);
    let record = store.get_user(&victim).await.unwrap().unwrap();
    assert_eq!(
        (
            record.subscription_status.as_str(),
            record.credits_remaining,
            record.stripe_customer_id
        ),
        ("none", 0, None),
        "the victim is untouched"
    );
}

#[tokio::test]
async fn events_for_unknown_customers_or_users_without_records_create_nothing() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let ghost = tokens::new_user();
    let customer = unique("cus");
    let mut session = fixture("checkout.session");
    session["customer"] = json!(customer);
    session["client_reference_id"] = json!(ghost);
    for evt in [
        event(&unique("evt"), "checkout.session.completed", session),
        subscription_event(
            &unique("evt"),
            "customer.subscription.deleted",
            &customer,
            "canceled",
        ),
        invoice_paid(&unique("evt"), "in_ghost", &customer, 1),
        event(
            &unique("evt"),
            "charge.refunded",
            json!({"id": "ch_1", "customer": customer}),
        ),
    ] {
        assert_eq!(deliver(&app, &evt).await.0, 200);
    }
    assert!(emulator::items_of(&ghost).await.is_empty());
    assert_eq!(store.user_for_customer(&customer).await.unwrap(), None);
    // Stripe is only asked whom the customer belongs to (an erased user's is closed): nothing
    // is written there.
    let routes: Vec<String> = stub.sent().await.into_iter().map(|s| s.route).collect();
    let lookup = format!("GET /v1/customers/{customer}");
    assert!(routes.iter().all(|r| *r == lookup), "{routes:?}");
}
