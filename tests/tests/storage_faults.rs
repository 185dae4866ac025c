//! Faults below the AWS SDK (throttling, 5xx, a hung or dropped connection, a lost reply),
//! injected by a proxy in front of the DynamoDB emulator, and the JWKS down. For each: the
//! documented 503 with `Retry-After`, a bounded wait, and the table checked afterwards: nothing
//! half-written, no credit made up or lost.

use std::sync::Arc;
use std::time::Instant;

use common::config::Rules;
use common::credits::{DebitError, debit_message};
use common::domain::{UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::{self, customer_of_new_user, invoice_paid, parts, request};
use integration_tests::storage_faults::{Fault, FaultProxy};
use integration_tests::stripe_stub::{StripeStub, WEBHOOK_SECRET, subscription};
use integration_tests::{FUNCTION_DEADLINE, emulator, tokens};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Attempts per DynamoDB call (the store's retry policy).
const ATTEMPTS: usize = 3;

/// A paying user with 850 credits left, written straight to the emulator.
async fn paying_user(table: &Arc<dyn Store>) -> (String, UserRecord) {
    let user = tokens::new_user();
    let mut record = UserRecord::new_free(UserId::parse(&user).unwrap(), 10, 1);
    (record.subscription_status, record.credits_remaining) = ("active".into(), 850);
    record.plan = "pro".into();
    table.create_user(&record).await.unwrap();
    (user, record)
}

/// The Stripe stub, the table read directly, the fault proxy, and a billing app storing through it.
async fn billing_behind_proxy() -> (StripeStub, Arc<dyn Store>, FaultProxy, common::App) {
    let stub = StripeStub::start().await;
    let table: Arc<dyn Store> = Arc::new(emulator::store().await);
    let proxy = FaultProxy::start().await;
    let app = apps::app(Arc::new(proxy.store().await), Some(&stub.uri()));
    (stub, table, proxy, app)
}

async fn status(app: &common::App, user: &str) -> (u16, http::HeaderMap, serde_json::Value) {
    parts(
        integration_tests::apps::handle("user-status", app, request("user-status.json", user))
            .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_read_that_keeps_failing_is_503_and_the_balance_survives() {
    let table: Arc<dyn Store> = Arc::new(emulator::store().await);
    let proxy = FaultProxy::start().await;
    let app = apps::app(Arc::new(proxy.store().await), None);
    let (user, record) = paying_user(&table).await;

    for fault in [
        Fault::Throttle,
        Fault::ServerError,
        Fault::Drop,
        Fault::Hang,
    ] {
        proxy.inject("GetItem", fault, usize::MAX);
        proxy.take_calls();
        let started = Instant::now();
        let (code, headers, body) = status(&app, &user).await;
        assert_eq!(
            (code, body["error"]["code"].as_str()),
            (503, Some("SERVICE_UNAVAILABLE")),
            "{fault:?}"
        );
        assert_eq!(headers["retry-after"], "1", "{fault:?}");
        assert!(body.get("credits_remaining").is_none(), "never a made-up 0");
        println!(
            "user-status, {fault:?} on every read: {code} after {:?}",
            started.elapsed()
        );
        assert!(
            started.elapsed() < FUNCTION_DEADLINE,
            "{fault:?}: answered after {:?}, past the function's deadline",
            started.elapsed()
        );
        let calls = proxy.take_calls();
        assert!(
            calls.iter().all(|c| c == "GetItem"),
            "{fault:?}: a failed read leads to no write: {calls:?}"
        );
        if fault != Fault::Hang {
            assert_eq!(calls.len(), ATTEMPTS, "{fault:?}: retried, then gave up");
        }
        proxy.heal();
    }
    // Healed: read as the app does, retrying a 503 after its Retry-After (the shared emulator,
    // one request at a time, can be slow under the whole suite), a few times at most.
    let (mut code, _, mut body) = status(&app, &user).await;
    for _ in 0..3 {
        if code != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        (code, _, body) = status(&app, &user).await;
    }
    assert_eq!((code, body["credits_remaining"].as_i64()), (200, Some(850)));
    assert_eq!(table.get_user(&record.user_id).await.unwrap(), Some(record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_throttle_or_hang_is_absorbed_by_a_retry() {
    let table: Arc<dyn Store> = Arc::new(emulator::store().await);
    let proxy = FaultProxy::start().await;
    let app = apps::app(Arc::new(proxy.store().await), None);
    let (user, _) = paying_user(&table).await;
    for fault in [
        Fault::Throttle,
        Fault::ServerError,
        Fault::Drop,
        Fault::Hang,
    ] {
        proxy.inject("GetItem", fault, 1);
        let (code, _, body) = status(&app, &user).await;
        assert_eq!(
            (code, body["credits_remaining"].as_i64()),
            (200, Some(850)),
            "{fault:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_write_fails_changes_nothing_and_the_retry_lands() {
    let (stub, table, proxy, app) = billing_behind_proxy().await;
    let (user, customer) = customer_of_new_user(&table).await;
    let now = common::unix_now();
    stub.subscriptions(vec![subscription(
        "sub_paid",
        &customer,
        "active",
        now,
        now + 86_400,
    )])
    .await;
    let before = table.get_user(&user).await.unwrap();

    proxy.inject("UpdateItem", Fault::ServerError, usize::MAX);
    let req = request("sync-subscription.json", user.as_str());
    let (code, headers, _) =
        parts(integration_tests::apps::handle("sync-subscription", &app, req).await);
    assert_eq!(
        (code, &headers["retry-after"]),
        (503, &"1".parse().unwrap())
    );
    assert_eq!(
        table.get_user(&user).await.unwrap(),
        before,
        "nothing written"
    );

    proxy.heal();
    let req = request("sync-subscription.json", user.as_str());
    let (code, _, body) =
        parts(integration_tests::apps::handle("sync-subscription", &app, req).await);
    assert_eq!(
        (code, body["subscription_status"].as_str()),
        (200, Some("active"))
    );
    let after = table.get_user(&user).await.unwrap().unwrap();
    assert_eq!(after.credits_remaining, 0, "a sync alone grants nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoice_paid_grants_exactly_once_through_lost_replies_and_outages() {
    let (stub, table, proxy, app) = billing_behind_proxy().await;
    let (user, customer) = customer_of_new_user(&table).await;
    let paid_by =
        apps::subscription_paid_by(&customer, "in_faults", 1_700_000_000, "subscription_cycle");
    stub.subscriptions(vec![paid_by]).await;
    let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let event = invoice_paid(&event_id, "in_faults", &customer, 1_700_000_000);
    let deliver = || async {
        let req = apps::webhook(&event, WEBHOOK_SECRET, common::unix_now());
        parts(integration_tests::apps::handle("stripe-webhook", &app, req).await).0
    };

    // Every write's reply is lost once (the writes land, the SDK retries them), then the table
    // is unreachable for good: Stripe gets a 503 and redelivers later.
    for operation in ["PutItem", "UpdateItem"] {
        proxy.inject(operation, Fault::LoseReply, 1);
    }
    let first = deliver().await;
    proxy.inject("UpdateItem", Fault::Drop, usize::MAX);
    let second = deliver().await;
    assert!(
        [200, 409, 503].contains(&second),
        "after {first}: {second} is a documented answer"
    );
    proxy.heal();
    // Redeliveries until Stripe would see a 200 (an abandoned claim is taken over after its lease).
    let mut redelivered = deliver().await;
    for _ in 0..3 {
        if redelivered == 200 {
            break;
        }
        table
            .finish_event(
                &event_id,
                common::domain::EventOutcome::Failed,
                common::unix_now(),
            )
            .await
            .unwrap();
        redelivered = deliver().await;
    }
    assert_eq!(redelivered, 200);
    let record = table.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (record.credits_remaining, record.granted_invoices.len()),
        (1000, 1),
        "granted exactly once"
    );
    assert_eq!(deliver().await, 200);
    let record = table.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.credits_remaining, 1000, "a duplicate grants nothing");
}

#[tokio::test]
async fn the_jwks_down_is_503_with_retry_after_and_creates_nothing() {
    let jwks = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&jwks)
        .await;
    let table: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = apps::jwks_app(table.clone(), format!("{}/jwks.json", jwks.uri()));
    let user = tokens::new_user();
    let claims = tokens::claims(&user, tokens::EVENTS_ISSUER);
    let token = tokens::es256(&claims, Some(tokens::ES256_KID));
    let req = apps::request_bearing("user-status.json", &token);

    let (code, headers, body) =
        parts(integration_tests::apps::handle("user-status", &app, req).await);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (503, Some("AUTH_UNAVAILABLE"))
    );
    assert_eq!(headers["retry-after"], "1");
    let fetches = jwks.received_requests().await.unwrap().len();
    assert_eq!(fetches, 1, "asked once, answered at once: no retry storm");
    let id = UserId::parse(&user).unwrap();
    assert_eq!(table.get_user(&id).await.unwrap(), None);
}

/// DynamoDB answers an SDK retry carrying the client request token of a transaction that
/// committed as that transaction: a refund whose reply was lost reports what it did, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_whose_reply_is_lost_is_reported_as_done_and_done_once() {
    let table: Arc<dyn Store> = Arc::new(emulator::store().await);
    let proxy = FaultProxy::start().await;
    let store = proxy.store().await;
    let (_, record) = paying_user(&table).await;
    let caller = common::domain::Caller::signed_in(&record.user_id);
    let message = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let rules = apps::config().rules;
    let debit =
        common::credits::debit_message(table.as_ref(), &caller, &rules, &message, "default");
    let debit = debit.await.unwrap();

    proxy.inject("TransactWriteItems", Fault::LoseReply, 1);
    let refund = common::credits::refund_message(&store, &record.user_id, &message);
    assert_eq!(
        refund.await.unwrap(),
        common::domain::RefundOutcome::Refunded,
        "the retry is answered as the refund that committed, not refused by its own mark"
    );
    let transactions = proxy.take_calls();
    let sent = transactions.iter().filter(|c| *c == "TransactWriteItems");
    assert_eq!(sent.count(), 2, "the write was retried");
    let stored = table.get_user(&record.user_id).await.unwrap().unwrap();
    assert_eq!(
        stored.balance(debit.paid_with),
        debit.remaining + 1,
        "given back once"
    );
    let entries =
        integration_tests::ledger_conformance::all_entries(table.as_ref(), &record.user_id).await;
    let refunds: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == common::domain::EntryKind::MessageRefund)
        .collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!((refunds[0].messages, refunds[0].amount), (Some(1), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debit_whose_reply_is_lost_is_charged_once() {
    let table: Arc<dyn Store> = Arc::new(emulator::store().await);
    let proxy = FaultProxy::start().await;
    let store = proxy.store().await;
    let (_, record) = paying_user(&table).await;
    let rules = apps::config().rules;
    let message = format!("msg_{}", uuid::Uuid::new_v4().simple());

    // The debit lands, its reply is lost, and the SDK retries it.
    proxy.inject("TransactWriteItems", Fault::LoseReply, 1);
    let debit = common::credits::debit_message(
        &store,
        &common::domain::Caller::signed_in(&record.user_id),
        &rules,
        &message,
        "default",
    )
    .await
    .unwrap();
    assert_eq!(debit.remaining, 849, "charged once");
    assert_eq!(
        proxy
            .take_calls()
            .iter()
            .filter(|c| *c == "TransactWriteItems")
            .count(),
        2,
        "the write was retried"
    );

    // Every attempt's reply is lost: the caller gets a 503, and its own retry is not charged.
    proxy.inject("TransactWriteItems", Fault::LoseReply, usize::MAX);
    let second = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let err = common::credits::debit_message(
        &store,
        &common::domain::Caller::signed_in(&record.user_id),
        &rules,
        &second,
        "default",
    )
    .await
    .unwrap_err();
    assert_eq!(err, common::credits::DebitError::Unavailable);
    proxy.heal();
    let debit = common::credits::debit_message(
        &store,
        &common::domain::Caller::signed_in(&record.user_id),
        &rules,
        &second,
        "default",
    )
    .await
    .unwrap();
    assert_eq!(debit.remaining, 848, "two messages, two credits");
    let stored = table.get_user(&record.user_id).await.unwrap().unwrap();
    assert_eq!(stored.credits_remaining, 848);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_conflicts_are_retried_so_a_hundred_debits_against_ten_pay_ten() {
    let table: Arc<dyn Store> = Arc::new(emulator::store().await);
    let proxy = FaultProxy::start().await;
    let store: Arc<dyn Store> = Arc::new(proxy.patient_store().await);
    let user = UserId::parse(&tokens::new_user()).unwrap();
    let mut record = UserRecord::new_free(user.clone(), 0, 1);
    (record.subscription_status, record.credits_remaining) = ("active".into(), 10);
    table.create_user(&record).await.unwrap();
    // DynamoDB cancels a share of the transactions for meeting another on the same item.
    proxy.inject("TransactWriteItems", Fault::TransactionConflict, 60);

    let debits: Vec<_> = (0..100)
        .map(|i| {
            let (store, user) = (Arc::clone(&store), user.clone());
            tokio::spawn(async move {
                let id = format!("msg_conflict_{i}");
                debit_message(
                    store.as_ref(),
                    &common::domain::Caller::signed_in(&user),
                    &Rules::default(),
                    &id,
                    "default",
                )
                .await
            })
        })
        .collect();
    let (mut paid, mut refused, mut unavailable) = (0, 0, 0);
    for debit in debits {
        match debit.await.unwrap() {
            Ok(_) => paid += 1,
            Err(DebitError::Insufficient) => refused += 1,
            Err(DebitError::Unavailable) => unavailable += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((paid, refused, unavailable), (10, 90, 0));
    let conflicts = proxy.take_calls();
    assert!(
        conflicts
            .iter()
            .filter(|c| *c == "TransactWriteItems")
            .count()
            > 60,
        "the conflicts were met and retried"
    );
    assert_eq!(
        table
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_conflicts_on_the_customer_link_are_retried_and_a_twin_link_succeeds() {
    let table: Arc<dyn Store> = Arc::new(emulator::store().await);
    let proxy = FaultProxy::start().await;
    let store: Arc<dyn Store> = Arc::new(proxy.patient_store().await);
    let user = UserId::parse(&tokens::new_user()).unwrap();
    table
        .create_user(&UserRecord::new_free(user.clone(), 10, 1))
        .await
        .unwrap();
    let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
    proxy.inject("TransactWriteItems", Fault::TransactionConflict, 8);

    let links: Vec<_> = (0..10)
        .map(|_| {
            let (store, user, customer) = (Arc::clone(&store), user.clone(), customer.clone());
            tokio::spawn(async move { store.link_customer(&user, &customer).await })
        })
        .collect();
    for link in links {
        assert_eq!(
            link.await.unwrap(),
            Ok(customer.clone()),
            "each link succeeds"
        );
    }
    assert_eq!(
        table.user_for_customer(&customer).await.unwrap(),
        Some(user.clone())
    );
    let record = table.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.stripe_customer_id, Some(customer));
}
