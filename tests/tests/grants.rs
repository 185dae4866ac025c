//! Paid periods and their credits, on DynamoDB (emulator) with the Stripe stub: every grant comes
//! from the invoice the sync re-reads at Stripe (never from an event's body); the sync grants a
//! period whose `invoice.paid` never arrived, sync and webhook grant one invoice once in any
//! order and concurrency, a paid invoice whose subscription may still activate fails the event
//! so Stripe redelivers it while one that cannot is acknowledged, and only invoices that start a
//! period reset the balance.

use std::sync::Arc;

use common::domain::{Balance, UserId};
use common::store::Store;
use integration_tests::apps::{
    app, customer_of_new_user, invoice_paid_for, parts, request, webhook,
};
use integration_tests::conformance::debit;
use integration_tests::stripe_stub::{StripeStub, WEBHOOK_SECRET, paid_invoice, subscription};
use integration_tests::{emulator, tokens};
use serde_json::Value;

/// Credits a paid period grants in the test apps (`PLAN_CREDITS`).
const PLAN_CREDITS: i64 = 1000;

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", tokens::new_user().replace('-', ""))
}

/// The customer's one subscription at Stripe, `status`, whose latest invoice is `invoice`.
fn subscription_paid_by(customer: &str, status: &str, invoice: Value) -> Value {
    let mut sub = subscription("sub_paid", customer, status, 1_700_000_000, 1_900_000_000);
    sub["latest_invoice"] = invoice;
    sub
}

/// The Stripe stub, the table, an app on both, and a user linked to a customer.
async fn setup() -> (StripeStub, Arc<dyn Store>, common::App, UserId, String) {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let (user, customer) = customer_of_new_user(&store).await;
    (stub, store, app, user, customer)
}

/// What the user has left of the period's credits.
async fn credits(store: &Arc<dyn Store>, user: &UserId) -> i64 {
    let record = store.get_user(user).await.unwrap().unwrap();
    record.credits_remaining
}

async fn sync(app: &common::App, user: &UserId) -> Value {
    let req = request("sync-subscription.json", user.as_str());
    let (status, _, body) =
        parts(integration_tests::apps::handle("sync-subscription", app, req).await);
    assert_eq!(status, 200, "{body}");
    body
}

async fn deliver(app: &common::App, event: &Value) -> (u16, Value) {
    let req = webhook(event, WEBHOOK_SECRET, common::unix_now());
    let (status, _, body) =
        parts(integration_tests::apps::handle("stripe-webhook", app, req).await);
    (status, body)
}

async fn spend(store: &Arc<dyn Store>, user: &UserId, messages: usize) {
    for _ in 0..messages {
        let id = common::domain::DebitId::parse(&unique("msg")).unwrap();
        debit(
            store.as_ref(),
            user,
            Balance::Credits,
            "active",
            &id,
            common::unix_now(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_grants_a_paid_period_whose_invoice_paid_never_arrived() {
    let (stub, store, app, user, customer) = setup().await;

    let first = paid_invoice("in_first", "sub_paid", 1_700_000_000, "subscription_create");
    stub.subscriptions(vec![subscription_paid_by(&customer, "active", first)])
        .await;
    let body = sync(&app, &user).await;
    assert_eq!(
        (
            body["has_subscription"].as_bool(),
            body["credits_remaining"].as_i64()
        ),
        (Some(true), Some(PLAN_CREDITS))
    );
    spend(&store, &user, 3).await;
    assert_eq!(
        sync(&app, &user).await["credits_remaining"],
        PLAN_CREDITS - 3,
        "once"
    );

    // The renewal is paid at Stripe; its webhook never comes. The next sync repairs it.
    let renewal = paid_invoice(
        "in_renewal",
        "sub_paid",
        1_702_600_000,
        "subscription_cycle",
    );
    stub.subscriptions(vec![subscription_paid_by(&customer, "active", renewal)])
        .await;
    assert_eq!(sync(&app, &user).await["credits_remaining"], PLAN_CREDITS);
    spend(&store, &user, 1).await;
    assert_eq!(
        sync(&app, &user).await["credits_remaining"],
        PLAN_CREDITS - 1
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.granted_invoices.len(), 2);
    let listed = stub.sent_to("GET /v1/subscriptions").await;
    assert!(
        listed
            .iter()
            .all(|s| s.field("expand[0]") == Some("data.latest_invoice")),
        "one call per sync: the latest invoice comes expanded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_webhook_grant_one_invoice_once_in_any_order_and_concurrency() {
    let (stub, store, app, user, customer) = setup().await;
    let app = Arc::new(app);
    let created = 1_700_000_000;
    let invoice = paid_invoice("in_once", "sub_paid", created, "subscription_create");
    stub.subscriptions(vec![subscription_paid_by(&customer, "active", invoice)])
        .await;

    let mut calls = Vec::new();
    for i in 0..8 {
        let (app, user, customer) = (app.clone(), user.clone(), customer.clone());
        calls.push(tokio::spawn(async move {
            if i % 2 == 0 {
                sync(&app, &user).await;
            } else {
                let event = invoice_paid_for(
                    &unique("evt"),
                    "in_once",
                    &customer,
                    created,
                    "subscription_create",
                );
                let (status, body) = deliver(&app, &event).await;
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.credits_remaining, PLAN_CREDITS);
    assert_eq!(record.granted_invoices.len(), 1);
    spend(&store, &user, 2).await;
    sync(&app, &user).await;
    let event = invoice_paid_for(
        &unique("evt"),
        "in_once",
        &customer,
        created,
        "subscription_create",
    );
    assert_eq!(deliver(&app, &event).await.0, 200);
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        record.credits_remaining,
        PLAN_CREDITS - 2,
        "never granted twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_grant_fails_the_event_and_stripes_redelivery_grants_it() {
    let (stub, store, app, user, customer) = setup().await;
    // `invoice.paid` overtakes the activation: Stripe still says incomplete.
    let invoice = paid_invoice("in_early", "sub_paid", 1_700_000_000, "subscription_create");
    stub.subscriptions(vec![subscription_paid_by(
        &customer,
        "incomplete",
        invoice.clone(),
    )])
    .await;
    let event = invoice_paid_for(
        &unique("evt"),
        "in_early",
        &customer,
        1_700_000_000,
        "subscription_create",
    );

    let (status, body) = deliver(&app, &event).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("SUBSCRIPTION_NOT_ACTIVE")),
        "not done: Stripe will redeliver"
    );
    assert_eq!(credits(&store, &user).await, 0);

    stub.subscriptions(vec![subscription_paid_by(&customer, "active", invoice)])
        .await;
    let (status, _) = deliver(&app, &event).await;
    assert_eq!(status, 200, "the redelivery of the same event is processed");
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.credits_remaining, PLAN_CREDITS);
    assert_eq!(deliver(&app, &event).await.0, 200, "then it is done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_invoices_that_start_a_period_reset_the_balance() {
    let (stub, store, app, user, customer) = setup().await;
    let start = paid_invoice("in_start", "sub_paid", 1_700_000_000, "subscription_create");
    stub.subscriptions(vec![subscription_paid_by(&customer, "active", start)])
        .await;
    let created = 1_700_000_000;
    let start = invoice_paid_for(
        &unique("evt"),
        "in_start",
        &customer,
        created,
        "subscription_create",
    );
    assert_eq!(deliver(&app, &start).await.0, 200);
    spend(&store, &user, 5).await;

    // Mid-period invoices: a prorated plan change, a usage threshold, a one-off. Paid, processed,
    // and the balance stays.
    for (i, reason) in ["subscription_update", "subscription_threshold", "manual"]
        .into_iter()
        .enumerate()
    {
        let later = created + 1_000 * (i as i64 + 1);
        let id = format!("in_{reason}");
        let latest = paid_invoice(&id, "sub_paid", later, reason);
        stub.subscriptions(vec![subscription_paid_by(&customer, "active", latest)])
            .await;
        let event = invoice_paid_for(&unique("evt"), &id, &customer, later, reason);
        assert_eq!(deliver(&app, &event).await.0, 200, "{reason}");
        let record = store.get_user(&user).await.unwrap().unwrap();
        assert_eq!(
            record.credits_remaining,
            PLAN_CREDITS - 5,
            "{reason}: no reset"
        );
        assert!(!record.granted_invoices.contains(&id), "{reason}");
    }

    let latest = paid_invoice(
        "in_cycle",
        "sub_paid",
        created + 2_600_000,
        "subscription_cycle",
    );
    stub.subscriptions(vec![subscription_paid_by(&customer, "active", latest)])
        .await;
    let renewal = invoice_paid_for(
        &unique("evt"),
        "in_cycle",
        &customer,
        created + 2_600_000,
        "subscription_cycle",
    );
    assert_eq!(deliver(&app, &renewal).await.0, 200);
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        record.credits_remaining, PLAN_CREDITS,
        "a renewal starts a period"
    );
}
