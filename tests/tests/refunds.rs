//! Refunds and disputes, on DynamoDB (emulator) with the Stripe stub: the credits of the one
//! purchase whose money went back are taken back, through the webhook (each event twice, and
//! late ones out of order) and through the sync alike: in proportion to the cumulative amount
//! refunded, from what is left of that purchase only, never below zero; a dispute holds what is
//! left and a won one gives exactly that back. A charge of nothing sold here, of a past period,
//! or of an erased user takes nothing and is acknowledged.

use std::sync::Arc;

use common::config::Rules;
use common::domain::{Caller, EntryKind, MessagePrices, UserId};
use common::store::Store;
use integration_tests::apps::{app, deliver_twice, handle, parts, request};
use integration_tests::stripe_stub::{StripeStub, paid_invoice, subscription};
use integration_tests::{binaries, emulator, tokens};
use serde_json::{Value, json};

async fn setup() -> (StripeStub, Arc<dyn Store>, common::App) {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    (stub, store, app)
}

fn new_user() -> UserId {
    UserId::parse(&tokens::new_user()).unwrap()
}

/// Buys and pays pack `pack` for `user`, granted through the sync: the charge that paid it.
async fn bought(app: &common::App, stub: &StripeStub, user: &UserId, pack: &str) -> String {
    let mut event = binaries::event_as("create-credit-pack-session.json", user.as_str());
    event["body"] = json!(format!(r#"{{"pack": "{pack}"}}"#));
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, _, body) = parts(Box::pin(handle("create-credit-pack-session", app, req)).await);
    assert_eq!(status, 200, "{body}");
    let session = body["checkout_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    stub.pay(session).unwrap();
    sync(app, user).await;
    let intent = stub.checkout_session(session)["payment_intent"].clone();
    let charge = stub.charge_of(intent.as_str().unwrap()).expect("charged");
    charge["id"].as_str().unwrap().to_owned()
}

async fn sync(app: &common::App, user: &UserId) -> Value {
    let req = request("sync-subscription.json", user.as_str());
    let (status, _, body) = parts(Box::pin(handle("sync-subscription", app, req)).await);
    assert_eq!(status, 200, "{body}");
    body
}

/// The dispute object of `dispute` on `charge`, as its events carry it.
fn dispute_object(dispute: &str, charge: &str) -> Value {
    json!({"id": dispute, "object": "dispute", "charge": charge})
}

/// How money going back reaches the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Its events, each twice.
    Webhook,
    /// No event: the next sync.
    Sync,
}

/// Makes what happened at Stripe known to the service along `path`: `events` (kind, object).
async fn tell(app: &common::App, user: &UserId, path: Path, events: &[(&str, Value)]) {
    match path {
        Path::Webhook => {
            for (kind, object) in events {
                deliver_twice(app, kind, object.clone()).await;
            }
        }
        Path::Sync => drop(sync(app, user).await),
    }
}

/// `user`'s balances (plan credits, purchased) and their entries of `kinds` (kind, amount),
/// oldest first.
async fn ledger_of(
    store: &Arc<dyn Store>,
    user: &UserId,
    kinds: &[EntryKind],
) -> ((i64, i64), Vec<(EntryKind, i64)>) {
    let record = store.get_user(user).await.unwrap().unwrap();
    let (entries, _) = store.entries(user, None, 100).await.unwrap();
    let mut moves: Vec<(EntryKind, i64)> = entries
        .iter()
        .filter(|e| kinds.contains(&e.kind))
        .map(|e| (e.kind, e.amount))
        .collect();
    moves.reverse();
    ((record.credits_remaining, record.purchased_credits), moves)
}

const MONEY_BACK: [EntryKind; 3] = [
    EntryKind::PaymentRefunded,
    EntryKind::DisputeHold,
    EntryKind::DisputeReleased,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_then_a_full_refund_take_back_a_pack_s_credits_in_proportion_once() {
    let (stub, store, app) = setup().await;
    for path in [Path::Webhook, Path::Sync] {
        let user = new_user();
        // small: 500 credits for 500 cents.
        let charge = bought(&app, &stub, &user, "small").await;
        let first = stub.refund(&charge, Some(150));
        assert_eq!(first["amount_refunded"], 150);
        tell(&app, &user, path, &[("charge.refunded", first.clone())]).await;
        let partial = ((0, 350), vec![(EntryKind::PaymentRefunded, -150)]);
        assert_eq!(
            ledger_of(&store, &user, &MONEY_BACK).await,
            partial,
            "{path:?}"
        );
        sync(&app, &user).await;
        assert_eq!(
            ledger_of(&store, &user, &MONEY_BACK).await,
            partial,
            "{path:?}: again"
        );

        let full = stub.refund(&charge, None);
        assert_eq!(full["refunded"], true);
        tell(&app, &user, path, &[("charge.refunded", full)]).await;
        // The first refund's event, late: the charge re-read owes nothing more.
        deliver_twice(&app, "charge.refunded", first).await;
        sync(&app, &user).await;
        let refunded = (
            (0, 0),
            vec![
                (EntryKind::PaymentRefunded, -150),
                (EntryKind::PaymentRefunded, -350),
            ],
        );
        assert_eq!(
            ledger_of(&store, &user, &MONEY_BACK).await,
            refunded,
            "{path:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_of_a_partly_spent_pack_takes_only_what_is_left_never_below_zero() {
    let (stub, store, app) = setup().await;
    let user = new_user();
    let charge = bought(&app, &stub, &user, "small").await;
    let rules = Rules {
        message_prices: MessagePrices::new([("large".to_owned(), 100)]).unwrap(),
        ..app.config.rules.clone()
    };
    let caller = Caller::signed_in(&user);
    for message in ["msg_1", "msg_2", "msg_3"] {
        let debit =
            common::credits::debit_message(store.as_ref(), &caller, &rules, message, "large");
        debit.await.unwrap();
    }
    // 300 of 500 spent; a refund of 60 % (300 credits) takes the 200 left.
    let refunded = stub.refund(&charge, Some(300));
    deliver_twice(&app, "charge.refunded", refunded).await;
    let ((_, purchased), moves) = ledger_of(&store, &user, &MONEY_BACK).await;
    assert_eq!(
        (purchased, moves),
        (0, vec![(EntryKind::PaymentRefunded, -200)])
    );
    let (entries, _) = store.entries(&user, None, 100).await.unwrap();
    let refund = entries
        .iter()
        .find(|e| e.kind == EntryKind::PaymentRefunded);
    let refund = refund.unwrap();
    assert_eq!(
        (refund.spent, refund.cause.as_str()),
        (Some(100), charge.as_str())
    );
    // The rest refunded: nothing is left to take.
    deliver_twice(&app, "charge.refunded", stub.refund(&charge, None)).await;
    let ((_, purchased), moves) = ledger_of(&store, &user, &MONEY_BACK).await;
    assert_eq!(
        (purchased, moves),
        (
            0,
            vec![
                (EntryKind::PaymentRefunded, -200),
                (EntryKind::PaymentRefunded, 0)
            ]
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_takes_only_from_its_own_pack_never_from_another() {
    let (stub, store, app) = setup().await;
    let user = new_user();
    let small = bought(&app, &stub, &user, "small").await;
    let large = bought(&app, &stub, &user, "large").await;
    deliver_twice(&app, "charge.refunded", stub.refund(&small, None)).await;
    let ((_, purchased), moves) = ledger_of(&store, &user, &MONEY_BACK).await;
    assert_eq!(
        (purchased, moves),
        (3000, vec![(EntryKind::PaymentRefunded, -500)])
    );
    assert!(stub.charge_by_id(&large)["amount_refunded"] == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_holds_a_pack_s_credits_and_gives_them_back_exactly_once_won() {
    let (stub, store, app) = setup().await;
    for (path, won) in [
        (Path::Webhook, true),
        (Path::Webhook, false),
        (Path::Sync, true),
        (Path::Sync, false),
    ] {
        let user = new_user();
        let charge = bought(&app, &stub, &user, "large").await;
        let dispute = stub.dispute(&charge);
        let opened = [("charge.dispute.created", dispute_object(&dispute, &charge))];
        tell(&app, &user, path, &opened).await;
        let held = ((0, 0), vec![(EntryKind::DisputeHold, -3000)]);
        assert_eq!(
            ledger_of(&store, &user, &MONEY_BACK).await,
            held,
            "{path:?}"
        );

        stub.close_dispute(&dispute, won);
        let closed = [("charge.dispute.closed", dispute_object(&dispute, &charge))];
        tell(&app, &user, path, &closed).await;
        // The opening's event, late, and another sync: nothing more.
        tell(&app, &user, Path::Webhook, &opened).await;
        sync(&app, &user).await;
        let expected = match won {
            true => (
                (0, 3000),
                vec![
                    (EntryKind::DisputeHold, -3000),
                    (EntryKind::DisputeReleased, 3000),
                ],
            ),
            false => held.clone(),
        };
        let found = ledger_of(&store, &user, &MONEY_BACK).await;
        assert_eq!(found, expected, "{path:?}, won: {won}");
    }
}

/// A subscriber's current period's invoice refunded in half takes half its plan credits; a
/// dispute of it takes the rest: never the purchased credits, and the subscription stands. A
/// refund of a past period's invoice takes nothing: those credits expired with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_refund_takes_its_period_s_plan_credits_only_and_a_past_one_nothing() {
    let (stub, store, app) = setup().await;
    let user = new_user();
    bought(&app, &stub, &user, "small").await;
    let customer = store
        .get_user(&user)
        .await
        .unwrap()
        .unwrap()
        .stripe_customer_id
        .unwrap();
    let now = common::unix_now();
    let mut sub = subscription("sub_refund", &customer, "active", now - 60, now + 86_400);
    sub["latest_invoice"] = paid_invoice("in_old", "sub_refund", now - 60, "subscription_create");
    stub.subscriptions(vec![sub.clone()]).await;
    sync(&app, &user).await;
    sub["latest_invoice"] = paid_invoice("in_new", "sub_refund", now, "subscription_cycle");
    stub.subscriptions(vec![sub.clone()]).await;
    sync(&app, &user).await;
    let kinds = [EntryKind::PaymentRefunded, EntryKind::DisputeHold];
    assert_eq!(
        ledger_of(&store, &user, &kinds).await,
        ((1000, 500), vec![])
    );

    let past = stub.charge_of("pi_for_in_old").unwrap();
    let past = stub.refund(past["id"].as_str().unwrap(), None);
    deliver_twice(&app, "charge.refunded", past).await;
    assert_eq!(
        ledger_of(&store, &user, &kinds).await,
        ((1000, 500), vec![]),
        "past period"
    );

    let current = stub.charge_of("pi_for_in_new").unwrap();
    let current = current["id"].as_str().unwrap().to_owned();
    let amount = stub.charge_by_id(&current)["amount"].as_i64().unwrap();
    let half = stub.refund(&current, Some(amount / 2));
    deliver_twice(&app, "charge.refunded", half).await;
    assert_eq!(
        ledger_of(&store, &user, &kinds).await,
        ((500, 500), vec![(EntryKind::PaymentRefunded, -500)])
    );
    let dispute = stub.dispute(&current);
    deliver_twice(
        &app,
        "charge.dispute.created",
        dispute_object(&dispute, &current),
    )
    .await;
    let body = sync(&app, &user).await;
    // Both within a second: listed in the order of their keys, not of their times.
    let (balances, mut moves) = ledger_of(&store, &user, &kinds).await;
    moves.sort_by_key(|(kind, _)| kind.as_str());
    let expected = vec![
        (EntryKind::DisputeHold, -500),
        (EntryKind::PaymentRefunded, -500),
    ];
    assert_eq!((balances, moves), ((0, 500), expected));
    assert_eq!(
        body["subscription_status"], "active",
        "a dispute cancels nothing"
    );
}

/// Events for a charge this service did not sell, of a charge Stripe does not hold, of a
/// customer linked to no one, and of an erased user, are acknowledged and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_and_charges_of_nothing_sold_here_are_acknowledged() {
    let (stub, store, app) = setup().await;
    let user = new_user();
    let charge = bought(&app, &stub, &user, "small").await;
    let ((_, purchased), _) = ledger_of(&store, &user, &MONEY_BACK).await;
    deliver_twice(
        &app,
        "charge.refunded",
        json!({"id": "ch_nobody", "object": "charge"}),
    )
    .await;
    deliver_twice(
        &app,
        "charge.dispute.created",
        dispute_object("du_x", "ch_nobody"),
    )
    .await;
    deliver_twice(
        &app,
        "charge.refunded",
        json!({"id": "", "object": "charge"}),
    )
    .await;
    assert_eq!(
        ledger_of(&store, &user, &MONEY_BACK).await,
        ((0, purchased), vec![])
    );

    let req = request("delete-account.json", user.as_str());
    let (status, _, body) = parts(Box::pin(handle("delete-account", &app, req)).await);
    assert_eq!(status, 200, "{body}");
    deliver_twice(&app, "charge.refunded", stub.refund(&charge, None)).await;
    assert!(store.get_user(&user).await.unwrap().is_none());
    assert!(
        store.purchases(&user).await.unwrap().is_empty(),
        "erased with the account"
    );
}

/// A refund whose event never came is taken back by whatever syncs next: a checkout (which
/// asks Stripe before selling), or the scheduled reconciliation; each under its own policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refund_event_is_healed_by_checkout_and_by_reconciliation() {
    let stub = StripeStub::start().await;
    let (store, _) = emulator::own_store().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let app = app(store.clone(), Some(&stub.uri()));
    let (by_checkout, by_reconcile) = (new_user(), new_user());
    for user in [&by_checkout, &by_reconcile] {
        let charge = bought(&app, &stub, user, "small").await;
        stub.refund(&charge, None);
    }
    let req = request("create-checkout-session.json", by_checkout.as_str());
    let (status, _, body) = parts(Box::pin(handle("create-checkout-session", &app, req)).await);
    assert_eq!(status, 200, "{body}");
    let healed = ((0, 0), vec![(EntryKind::PaymentRefunded, -500)]);
    assert_eq!(ledger_of(&store, &by_checkout, &MONEY_BACK).await, healed);

    let now = common::unix_now();
    let due = common::domain::SubscriptionView {
        next_check: Some(now - 60),
        ..common::domain::SubscriptionView::none(common::unix_now_ms() + 1)
    };
    assert!(store.apply_subscription(&by_reconcile, &due).await.unwrap());
    let settings = common::config::ReconcileConfig {
        concurrency: 2,
        reserve: std::time::Duration::ZERO,
        stripe_rps: std::num::NonZeroU32::new(100).unwrap(),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let run = reconcile::reconcile(&app, &settings, deadline);
    emulator::as_function("reconcile", run).await.unwrap();
    assert_eq!(ledger_of(&store, &by_reconcile, &MONEY_BACK).await, healed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_lists_charges_weekly_and_again_after_a_listing_that_failed() {
    let (stub, store, app) = setup().await;
    let user = new_user();
    bought(&app, &stub, &user, "small").await;
    let listings = || async { stub.sent_to("GET /v1/charges").await.len() };
    let listed_at = || async {
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .charges_listed_at
    };
    // The purchase may be refunded: the next sync lists the charges, and records when.
    let before = listings().await;
    sync(&app, &user).await;
    assert_eq!(listings().await, before + 1);
    let first = listed_at().await.expect("recorded");
    // Within the week: not again.
    sync(&app, &user).await;
    assert_eq!(listings().await, before + 1);
    assert_eq!(listed_at().await, Some(first));

    // A week on (the record's listing set back 8 days): listed again.
    let set_back = |at: i64| {
        let store = store.clone();
        let user = user.clone();
        async move {
            let record = store.get_user(&user).await.unwrap().unwrap();
            let view = common::domain::SubscriptionView {
                next_check: record.next_check,
                charges_listed_at: Some(at),
                ..common::domain::SubscriptionView::none(record.synced_at_ms + 1)
            };
            assert!(store.apply_subscription(&user, &view).await.unwrap());
        }
    };
    let week_ago = common::unix_now() - 8 * 86_400;
    set_back(week_ago).await;
    sync(&app, &user).await;
    assert_eq!(listings().await, before + 2);
    assert!(listed_at().await > Some(week_ago));

    // A listing Stripe refuses is not recorded: the sync answers, and the next one lists.
    set_back(week_ago).await;
    stub.fail("GET", "/v1/charges", 400, Some(1)).await;
    sync(&app, &user).await;
    assert_eq!(
        listed_at().await,
        Some(week_ago),
        "a failed listing left unrecorded"
    );
    sync(&app, &user).await;
    assert!(
        listed_at().await > Some(week_ago),
        "listed by the next sync"
    );
}
