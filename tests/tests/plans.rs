//! Several plans and model prices, on DynamoDB (emulator) with the Stripe stub selling two
//! plans (plus: 1,000 credits, pro: 5,000): a paid upgrade grants the difference once, through
//! the webhook (events twice and out of order) and through the sync alike; a downgrade and a
//! switch back grant nothing; the renewal grants the new plan; checkout sells the plan asked
//! for and refuses one not sold before calling Stripe; the catalogue endpoint answers with
//! Stripe's prices, cached, and without them when Stripe fails; a debit takes its model's price
//! all or nothing, and its refund gives exactly that back.

use std::sync::Arc;

use common::config::Rules;
use common::credits::{self, DebitError};
use common::domain::{Caller, EntryKind, MessagePrices, RefundOutcome, UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::{
    config, customer_of_new_user, event, handle, parts, request, stripe_config_with, webhook,
};
use integration_tests::stripe_stub::{
    PRICE, PRO_PRICE, StripeStub, WEBHOOK_SECRET, paid_invoice, two_plans, with_lines,
};
use integration_tests::{emulator, tokens};
use serde_json::{Value, json};
use stripe_sandbox::objects;

/// An app selling plus and pro (and a retired `old` plan), on `store`, Stripe at `stub`.
fn two_plan_app(store: Arc<dyn Store>, stub: &StripeStub) -> common::App {
    let plans = two_plans();
    let set = [
        ("PLANS", plans.as_str()),
        ("RETIRED_PLANS", "old:price_retired_plan:300"),
    ];
    let billing = common::billing::Billing::new(stripe_config_with(&stub.uri(), &set)).unwrap();
    common::App::new(config(), store, Some(billing))
}

async fn setup() -> (StripeStub, Arc<dyn Store>, common::App, UserId, String) {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = two_plan_app(store.clone(), &stub);
    let (user, customer) = customer_of_new_user(&store).await;
    (stub, store, app, user, customer)
}

/// The first period's start in these tests, and a period's length.
const START: i64 = 1_700_000_000;
const MONTH: i64 = 30 * 86_400;

/// The customer's one subscription, on `price`, whose latest invoice (paid) is `id`, created at
/// `created` for `reason`, with `lines` (amount, price) over the rest of the period ending at
/// `period_end`.
fn on_plan(
    customer: &str,
    price: &str,
    (id, created, reason): (&str, i64, &str),
    lines: &[(i64, &str)],
    period_end: i64,
) -> Value {
    let mut sub = objects::subscription("sub_plan", customer, price, "active", 1, period_end);
    let invoice = with_lines(paid_invoice(id, "sub_plan", created, reason), lines, "usd");
    let mut invoice = objects::over(invoice, [created, period_end]);
    invoice["customer"] = json!(customer);
    sub["latest_invoice"] = invoice;
    sub
}

/// The events Stripe sends for `sub`'s change: its update and its latest invoice's payment,
/// under fresh ids (a redelivery under the same id is deduplicated before any of this).
fn events_of(sub: &Value) -> [Value; 2] {
    let unique = || format!("evt_{}", tokens::new_user().replace('-', ""));
    [
        event(&unique(), "invoice.paid", sub["latest_invoice"].clone()),
        event(
            &unique(),
            "customer.subscription.updated",
            objects::collapsed(sub),
        ),
    ]
}

async fn deliver(app: &common::App, event: &Value) {
    let req = webhook(event, WEBHOOK_SECRET, common::unix_now());
    let (status, _, body) = parts(Box::pin(handle("stripe-webhook", app, req)).await);
    assert_eq!(status, 200, "{body}");
}

async fn status(app: &common::App, user: &UserId) -> Value {
    let req = request("user-status.json", user.as_str());
    parts(Box::pin(handle("user-status", app, req)).await).2
}

async fn sync(app: &common::App, user: &UserId) -> Value {
    let req = request("sync-subscription.json", user.as_str());
    let (code, _, body) = parts(Box::pin(handle("sync-subscription", app, req)).await);
    assert_eq!(code, 200, "{body}");
    body
}

/// Spends `credits` one-credit messages of `user`.
async fn spend(store: &Arc<dyn Store>, user: &UserId, credits: usize) {
    let caller = Caller::signed_in(user);
    for _ in 0..credits {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        credits::debit_message(store.as_ref(), &caller, &Rules::default(), &id, "small")
            .await
            .unwrap();
    }
}

/// Takes `credits` of `user`'s plan credits in one operator's adjustment: as `spend` leaves
/// them, in one write.
async fn take(store: &Arc<dyn Store>, user: &UserId, credits: i64) {
    let id = format!("adj_{}", uuid::Uuid::new_v4().simple());
    let taken = credits::adjust(
        store.as_ref(),
        user,
        common::domain::Balance::Credits,
        -credits,
        "spent",
        "tests",
        &id,
    );
    taken.await.unwrap();
}

/// The `plan_upgrade` entries of `user`: their amounts.
async fn upgrades(store: &Arc<dyn Store>, user: &UserId) -> Vec<i64> {
    let (entries, _) = store.entries(user, None, 100).await.unwrap();
    entries
        .iter()
        .filter(|e| e.kind == EntryKind::PlanUpgrade)
        .map(|e| e.amount)
        .collect()
}

/// Plus bought, 600 spent, then pro: the states of Stripe the tests move through, in order.
struct Moves {
    plus: Value,
    upgrade: Value,
    downgrade: Value,
    back_up: Value,
    renewal: Value,
}

fn moves(customer: &str) -> Moves {
    let day = 86_400;
    let end = START + MONTH;
    let change = |price, id, at, lines: &[(i64, &str)]| {
        on_plan(customer, price, (id, at, "subscription_update"), lines, end)
    };
    Moves {
        plus: on_plan(
            customer,
            PRICE,
            ("in_plus", START, "subscription_create"),
            &[(2000, PRICE)],
            end,
        ),
        upgrade: change(
            PRO_PRICE,
            "in_up",
            START + day,
            &[(-1900, PRICE), (9500, PRO_PRICE)],
        ),
        downgrade: change(
            PRICE,
            "in_down",
            START + 2 * day,
            &[(-9000, PRO_PRICE), (1800, PRICE)],
        ),
        back_up: change(
            PRO_PRICE,
            "in_up_again",
            START + 3 * day,
            &[(-1700, PRICE), (8500, PRO_PRICE)],
        ),
        renewal: on_plan(
            customer,
            PRICE,
            ("in_cycle", end, "subscription_cycle"),
            &[(2000, PRICE)],
            end + MONTH,
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_through_the_webhook_grants_the_difference_once_in_any_order() {
    let (stub, store, app, user, customer) = setup().await;
    let moves = moves(&customer);

    stub.subscriptions(vec![moves.plus.clone()]).await;
    for event in events_of(&moves.plus) {
        deliver(&app, &event).await;
    }
    let body = status(&app, &user).await;
    assert_eq!(
        (
            body["current_plan"].as_str(),
            body["credits_remaining"].as_i64()
        ),
        (Some("plus"), Some(1000))
    );
    spend(&store, &user, 600).await;

    // The upgrade's events, the invoice before the subscription's update, each twice.
    stub.subscriptions(vec![moves.upgrade.clone()]).await;
    let [paid, updated] = events_of(&moves.upgrade);
    let [paid_again, updated_again] = events_of(&moves.upgrade);
    for event in [paid, updated, updated_again, paid_again] {
        deliver(&app, &event).await;
    }
    let body = status(&app, &user).await;
    assert_eq!(
        (
            body["current_plan"].as_str(),
            body["credits_remaining"].as_i64()
        ),
        (Some("pro"), Some(4400))
    );
    assert_eq!(upgrades(&store, &user).await, [4000]);

    // Down to plus: the credits stand. Back to pro: pro was granted in this period already.
    for state in [&moves.downgrade, &moves.back_up] {
        stub.subscriptions(vec![state.clone()]).await;
        for event in events_of(state) {
            deliver(&app, &event).await;
        }
        assert_eq!(status(&app, &user).await["credits_remaining"], 4400);
    }
    assert_eq!(upgrades(&store, &user).await, [4000]);

    // The renewal on plus grants plus's credits; what was left expires.
    stub.subscriptions(vec![moves.renewal.clone()]).await;
    for event in events_of(&moves.renewal) {
        deliver(&app, &event).await;
    }
    let body = status(&app, &user).await;
    assert_eq!(
        (
            body["current_plan"].as_str(),
            body["credits_remaining"].as_i64()
        ),
        (Some("plus"), Some(1000))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_upgrade_invoice_heals_through_the_sync_and_never_twice() {
    let (stub, store, app, user, customer) = setup().await;
    let moves = moves(&customer);
    stub.subscriptions(vec![moves.plus]).await;
    assert_eq!(sync(&app, &user).await["credits_remaining"], 1000);
    spend(&store, &user, 600).await;

    stub.subscriptions(vec![moves.upgrade]).await;
    for _ in 0..2 {
        let body = sync(&app, &user).await;
        assert_eq!(
            (
                body["current_plan"].as_str(),
                body["credits_remaining"].as_i64()
            ),
            (Some("pro"), Some(4400))
        );
    }
    stub.subscriptions(vec![moves.downgrade]).await;
    assert_eq!(sync(&app, &user).await["credits_remaining"], 4400);
    stub.subscriptions(vec![moves.back_up]).await;
    assert_eq!(sync(&app, &user).await["credits_remaining"], 4400);
    assert_eq!(upgrades(&store, &user).await, [4000]);
    stub.subscriptions(vec![moves.renewal]).await;
    assert_eq!(sync(&app, &user).await["credits_remaining"], 1000);
}

/// The kinds and amounts of `user`'s grants, oldest first.
async fn grants(store: &Arc<dyn Store>, user: &UserId) -> Vec<(EntryKind, String, i64)> {
    let (entries, _) = store.entries(user, None, 100).await.unwrap();
    let granting = [EntryKind::PeriodGrant, EntryKind::PlanUpgrade];
    let mut grants: Vec<_> = entries
        .into_iter()
        .filter(|e| granting.contains(&e.kind))
        .map(|e| (e.kind, e.cause, e.amount))
        .collect();
    grants.reverse();
    grants
}

/// Brings `app` up to Stripe's `state`: through its events (each twice), or through a sync.
async fn settle(app: &common::App, user: &UserId, state: &Value, through_webhook: bool) {
    match through_webhook {
        true => {
            for event in events_of(state).iter().chain(&events_of(state)) {
                deliver(app, event).await;
            }
        }
        false => drop(sync(app, user).await),
    }
}

/// Stripe finalises a renewal up to an hour after its period began. A plan change paid in that
/// hour is the subscription's latest invoice, and the renewal is paid after it: the renewal is
/// granted first (plus in full, what was left expiring), then the change's difference, once
/// each, through the webhook (events twice) and through the sync alike. Before the renewal is
/// paid, the change grants nothing: its period was not granted yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_paid_after_a_change_in_its_first_hour_is_granted_before_the_change() {
    for through_webhook in [true, false] {
        let (stub, store, app, user, customer) = setup().await;
        let moves = moves(&customer);
        stub.subscriptions(vec![moves.plus.clone()]).await;
        assert_eq!(sync(&app, &user).await["credits_remaining"], 1000);
        take(&store, &user, 600).await;

        let end = START + MONTH;
        let mut draft = moves.renewal["latest_invoice"].clone();
        draft["status"] = json!("draft");
        let changed = on_plan(
            &customer,
            PRO_PRICE,
            ("in_up_early", end + 600, "subscription_update"),
            &[(-2000, PRICE), (10_000, PRO_PRICE)],
            end + MONTH,
        );
        stub.invoice(draft);
        stub.subscriptions(vec![changed.clone()]).await;
        settle(&app, &user, &changed, through_webhook).await;
        let body = status(&app, &user).await;
        assert_eq!(
            (
                body["current_plan"].as_str(),
                body["credits_remaining"].as_i64()
            ),
            (Some("pro"), Some(400)),
            "the change waits for its period's renewal"
        );

        // The renewal is finalised and paid; the change stays the latest invoice.
        let paid_renewal = moves.renewal["latest_invoice"].clone();
        stub.invoice(paid_renewal.clone());
        let mut renewal_paid = changed.clone();
        renewal_paid["latest_invoice"] = paid_renewal;
        match through_webhook {
            true => {
                let paid = &events_of(&renewal_paid)[0];
                for _ in 0..2 {
                    deliver(&app, paid).await;
                }
            }
            false => drop(sync(&app, &user).await),
        }
        settle(&app, &user, &changed, through_webhook).await;
        assert_eq!(status(&app, &user).await["credits_remaining"], 5000);
        assert_eq!(
            grants(&store, &user).await,
            [
                (EntryKind::PeriodGrant, "in_plus".to_owned(), 1000),
                (EntryKind::PeriodGrant, "in_cycle".to_owned(), 600),
                (EntryKind::PlanUpgrade, "in_up_early".to_owned(), 4000),
            ],
            "webhook: {through_webhook}"
        );
    }
}

/// A `subscription_update` invoice that charges a whole new period while crediting the unused
/// time of the one before (the billing cycle reset with `billing_cycle_anchor=now`, a switch to
/// yearly) starts a period, but adds only beyond the most granted in the period it cuts short:
/// nothing on the same plan, the difference to a dearer one; what was left stays, cut to the
/// new plan's credits on a switch down. A change of the period before it grants nothing after
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_that_starts_a_period_grants_only_beyond_the_most_granted() {
    let (stub, store, app, user, customer) = setup().await;
    let moves = moves(&customer);
    stub.subscriptions(vec![moves.plus.clone()]).await;
    assert_eq!(sync(&app, &user).await["credits_remaining"], 1000);
    take(&store, &user, 600).await;

    let reset_at = START + 10 * 86_400;
    let whole_period = |price, id, at, credit: i64, amount| {
        let mut sub = on_plan(
            &customer,
            price,
            (id, at, "subscription_update"),
            &[(-credit, PRICE), (amount, price)],
            at + MONTH,
        );
        let line = &mut sub["latest_invoice"]["lines"]["data"][1];
        line["parent"]["subscription_item_details"]["proration"] = json!(false);
        sub
    };
    let reset = whole_period(PRICE, "in_reset", reset_at, 1300, 2000);
    stub.subscriptions(vec![reset.clone()]).await;
    for event in events_of(&reset) {
        deliver(&app, &event).await;
    }
    assert_eq!(status(&app, &user).await["credits_remaining"], 400);

    stub.subscriptions(vec![moves.upgrade.clone()]).await;
    assert_eq!(
        sync(&app, &user).await["credits_remaining"],
        400,
        "a change of the period before the reset grants nothing"
    );
    let yearly = whole_period(PRO_PRICE, "in_yearly", reset_at + 86_400, 1900, 100_000);
    stub.subscriptions(vec![yearly.clone()]).await;
    assert_eq!(sync(&app, &user).await["credits_remaining"], 4400);
    let back = whole_period(PRICE, "in_back", reset_at + 2 * 86_400, 95_000, 2000);
    stub.subscriptions(vec![back]).await;
    assert_eq!(
        sync(&app, &user).await["credits_remaining"],
        1000,
        "down to plus at once: Stripe credited pro's unused time, the balance is cut to plus's"
    );
    let again = whole_period(PRO_PRICE, "in_again", reset_at + 3 * 86_400, 1900, 100_000);
    stub.subscriptions(vec![again]).await;
    assert_eq!(
        sync(&app, &user).await["credits_remaining"],
        1000,
        "switching back and forth farms nothing: pro was granted in this period"
    );
    assert_eq!(
        grants(&store, &user).await,
        [
            (EntryKind::PeriodGrant, "in_plus".to_owned(), 1000),
            (EntryKind::PeriodGrant, "in_reset".to_owned(), 0),
            (EntryKind::PeriodGrant, "in_yearly".to_owned(), 4000),
            (EntryKind::PeriodGrant, "in_back".to_owned(), -3400),
            (EntryKind::PeriodGrant, "in_again".to_owned(), 0),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_to_a_price_in_neither_list_entitles_and_grants_nothing() {
    let (stub, store, app, user, customer) = setup().await;
    let foreign = on_plan(
        &customer,
        "price_other_app",
        ("in_x", START, "subscription_create"),
        &[(500, "price_other_app")],
        START + MONTH,
    );
    stub.subscriptions(vec![foreign]).await;
    let body = sync(&app, &user).await;
    assert_eq!(
        (
            body["current_plan"].as_str(),
            body["has_subscription"].as_bool()
        ),
        (Some("free"), Some(false))
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (record.credits_remaining, record.granted_invoices.len()),
        (0, 0)
    );
}

/// A checkout request of `user` with `body`.
fn checkout(user: &UserId, body: Option<&str>) -> lambda_http::Request {
    let mut event =
        integration_tests::binaries::event_as("create-checkout-session.json", user.as_str());
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_sells_the_plan_asked_for_and_refuses_one_not_sold_before_calling_stripe() {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = two_plan_app(store.clone(), &stub);

    let refused = [
        (r#"{"plan": "team"}"#, "UNKNOWN_PLAN"),
        (r#"{"plan": "old"}"#, "UNKNOWN_PLAN"),
        (r#"{"plan": 5}"#, "INVALID_BODY"),
        (r#"{"plan": "pro", "seats": 3}"#, "INVALID_BODY"),
        ("plan=pro", "INVALID_BODY"),
    ];
    for (body, code) in refused {
        let user = UserId::parse(&tokens::new_user()).unwrap();
        let (status, _, answer) = parts(
            Box::pin(handle(
                "create-checkout-session",
                &app,
                checkout(&user, Some(body)),
            ))
            .await,
        );
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
        assert!(answer["detail"].is_string());
        assert!(
            store.get_user(&user).await.unwrap().is_none(),
            "{body}: nothing created"
        );
    }
    assert!(stub.sent().await.is_empty(), "nothing was asked of Stripe");

    for (body, price) in [
        (None, PRICE),
        (Some(""), PRICE),
        (Some("{}"), PRICE),
        (Some(r#"{"plan": null}"#), PRICE),
        (Some(r#"{"plan": "pro"}"#), PRO_PRICE),
        (Some(r#"{"plan": "plus"}"#), PRICE),
    ] {
        let user = UserId::parse(&tokens::new_user()).unwrap();
        let (status, _, answer) = parts(
            Box::pin(handle(
                "create-checkout-session",
                &app,
                checkout(&user, body),
            ))
            .await,
        );
        assert_eq!(status, 200, "{body:?}: {answer}");
        let sessions = stub.sent_to("POST /v1/checkout/sessions").await;
        let last = sessions.last().unwrap();
        assert_eq!(last.field("line_items[0][price]"), Some(price), "{body:?}");
    }
}

/// Past the caller's Stripe allowance, checkout answers the open session only for the plan it
/// sells: asked for another plan, it is 429, never a session of the plan not chosen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_allowance_checkout_reuses_only_a_session_of_the_plan_asked_for() {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let mut app = two_plan_app(store.clone(), &stub);
    let allowance = &mut app.config.rules.stripe_allowance;
    allowance.calls = 1;
    allowance.window_secs = 86_400;
    // A run that would straddle the day's end waits for the next window.
    let left = allowance.retry_after(common::unix_now());
    if left < 120 {
        tokio::time::sleep(std::time::Duration::from_secs(left + 1)).await;
    }
    let user = UserId::parse(&tokens::new_user()).unwrap();
    let buy = |body: &'static str| {
        let (app, user) = (&app, &user);
        async move {
            parts(
                Box::pin(handle(
                    "create-checkout-session",
                    app,
                    checkout(user, Some(body)),
                ))
                .await,
            )
        }
    };
    let (status, _, first) = buy(r#"{"plan": "plus"}"#).await;
    assert_eq!(status, 200, "{first}");
    let reached = stub.sent().await.len();

    let (status, headers, body) = buy(r#"{"plan": "pro"}"#).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("RATE_LIMITED")),
        "{body}"
    );
    assert!(headers.contains_key("retry-after"));
    let (status, _, again) = buy(r#"{"plan": "plus"}"#).await;
    assert_eq!(
        (status, &again["checkout_url"]),
        (200, &first["checkout_url"])
    );
    assert_eq!(
        stub.sent().await.len(),
        reached,
        "nothing more reached Stripe"
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        record.open_checkout.map(|open| open.price_id).as_deref(),
        Some(PRICE),
        "the open session is still plus's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_shows_stripe_s_prices_cached_and_the_plans_without_them_when_stripe_fails() {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = two_plan_app(store.clone(), &stub);
    let user = tokens::new_user();
    for _ in 0..3 {
        let (status, _, body) = parts(
            Box::pin(handle(
                "billing-plans",
                &app,
                request("billing-plans.json", &user),
            ))
            .await,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["default_plan"], "plus");
        let plans: Vec<(&str, i64, i64)> = body["plans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap(),
                    p["credits_per_period"].as_i64().unwrap(),
                    p["price"]["amount"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            plans,
            [("plus", 1000, 2000), ("pro", 5000, 10_000)],
            "the retired plan is not sold"
        );
        assert_eq!(body["plans"][1]["price"]["interval"], "month");
        let packs: Vec<(&str, i64, &str)> = body["packs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let interval = p["price"]["interval"].as_str().unwrap();
                (
                    p["id"].as_str().unwrap(),
                    p["credits"].as_i64().unwrap(),
                    interval,
                )
            })
            .collect();
        assert_eq!(packs, [("small", 500, "once"), ("large", 3000, "once")]);
    }
    assert_eq!(
        stub.sent().await.len(),
        4,
        "each price (two plans, two packs) read once for the container"
    );
    let user = UserId::parse(&user).unwrap();
    assert!(
        store.get_user(&user).await.unwrap().is_none(),
        "no record is made"
    );

    // A container meeting a Stripe that fails: the plans, without prices; never an error.
    let down = StripeStub::start().await;
    down.fail("GET", &format!("/v1/prices/{PRO_PRICE}"), 500, None)
        .await;
    let app = two_plan_app(store.clone(), &down);
    let (status, _, body) = parts(
        handle(
            "billing-plans",
            &app,
            request("billing-plans.json", user.as_str()),
        )
        .await,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plans"][0]["price"]["amount"], 2000);
    assert_eq!(
        (
            body["plans"][1]["id"].as_str(),
            body["plans"][1]["price"].is_null()
        ),
        (Some("pro"), true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debit_takes_its_model_s_price_all_or_nothing_and_its_refund_gives_that_back() {
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let rules = Rules {
        message_prices: MessagePrices::new([("large".to_owned(), 3)]).unwrap(),
        ..Rules::default()
    };
    // A subscriber with 5 credits.
    let user = UserId::parse(&tokens::new_user()).unwrap();
    let mut record = UserRecord::new_free(user.clone(), 10, common::unix_now());
    record.subscription_status = "active".into();
    record.credits_remaining = 5;
    assert!(store.create_user(&record).await.unwrap());
    let caller = Caller::signed_in(&user);
    let debit = |id: &'static str, model: &'static str| {
        let (store, caller, rules) = (store.clone(), caller.clone(), rules.clone());
        async move { credits::debit_message(store.as_ref(), &caller, &rules, id, model).await }
    };
    assert_eq!(debit("m1", "large").await.unwrap().remaining, 2);
    assert_eq!(
        debit("m1", "large").await.unwrap().remaining,
        2,
        "a retry is charged once"
    );
    assert_eq!(debit("m2", "large").await, Err(DebitError::Insufficient));
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        2,
        "nothing taken"
    );
    assert_eq!(debit("m3", "small").await.unwrap().remaining, 1);
    let refunded = credits::refund_message(store.as_ref(), &user, "m1")
        .await
        .unwrap();
    assert!(matches!(refunded, RefundOutcome::Refunded));
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        4
    );
    let (entries, _) = store.entries(&user, None, 10).await.unwrap();
    let usage = entries.iter().find(|e| e.kind == EntryKind::Usage).unwrap();
    assert_eq!(
        (usage.messages, usage.amount),
        (Some(2), -4),
        "two messages, four credits"
    );
    let refund = entries
        .iter()
        .find(|e| e.kind == EntryKind::MessageRefund)
        .unwrap();
    assert_eq!((refund.messages, refund.amount), (Some(1), 3));

    // Free messages pay for messages of 1-credit models only.
    let free = UserId::parse(&tokens::new_user()).unwrap();
    let caller = Caller::signed_in(&free);
    let err = credits::debit_message(store.as_ref(), &caller, &rules, "f1", "large").await;
    assert_eq!(err, Err(DebitError::Insufficient));
    let paid = credits::debit_message(store.as_ref(), &caller, &rules, "f2", "small")
        .await
        .unwrap();
    assert_eq!(paid.remaining, Rules::default().free_messages - 1);
}

/// Stripe's invoice fixture, paid, for `billing_reason`, with `lines` (amount, price,
/// proration), as the client reads it.
fn invoice_with(reason: &str, lines: &[(i64, &str, bool)]) -> stripe_billing::Invoice {
    let mut invoice = stripe_sandbox::fixtures::fixture("invoice");
    invoice["id"] = json!("in_lines");
    invoice["status"] = json!("paid");
    invoice["billing_reason"] = json!(reason);
    let priced: Vec<(i64, &str)> = lines.iter().map(|(a, p, _)| (*a, *p)).collect();
    let mut invoice = objects::with_lines(invoice, &priced, "usd");
    for (n, (_, _, proration)) in lines.iter().enumerate() {
        invoice["lines"]["data"][n]["parent"]["subscription_item_details"]["proration"] =
            json!(proration);
    }
    serde_json::from_value(invoice).expect("Stripe's invoice shape")
}

/// The plan of a paid invoice: a renewal's is its period's price, never a larger proration
/// left over from a change (up, then down, invoiced with the renewal); a plan change's is its
/// new plan's positive line, never the old plan's negative one.
#[test]
fn the_plan_of_an_invoice_is_its_period_s_price_never_a_leftover_proration() {
    let plan = |id: &str, price: &str, credits| common::domain::Plan {
        id: common::domain::PlanId::parse(id).unwrap(),
        price_id: price.into(),
        credits,
        sold: true,
    };
    let sold = vec![
        plan("plus", "price_plus", 1000),
        plan("pro", "price_pro", 5000),
    ];
    let catalogue = common::domain::Catalogue::new(sold, vec![]).unwrap();
    let read_paid =
        |invoice: &stripe_billing::Invoice| common::sync::paid_invoice(invoice, &catalogue);
    let renewal = invoice_with(
        "subscription_cycle",
        &[
            (2500, "price_pro", true),
            (-1500, "price_plus", true),
            (1000, "price_plus", false),
        ],
    );
    let paid = read_paid(&renewal).unwrap();
    assert!(paid.starts_a_period());
    assert_eq!(paid.price_id.as_deref(), Some("price_plus"));

    let upgrade = invoice_with(
        "subscription_update",
        &[(-1000, "price_plus", true), (2500, "price_pro", true)],
    );
    let paid = read_paid(&upgrade).unwrap();
    assert_eq!(paid.price_id.as_deref(), Some("price_pro"));
    let downgrade = invoice_with(
        "subscription_update",
        &[(-2500, "price_pro", true), (0, "price_plus", true)],
    );
    let paid = read_paid(&downgrade).unwrap();
    assert_eq!(paid.price_id, None, "a downgrade names no plan to grant");

    let reset = invoice_with(
        "subscription_update",
        &[(-700, "price_plus", true), (2500, "price_pro", false)],
    );
    let paid = read_paid(&reset).unwrap();
    assert!(
        paid.starts_a_period() && !paid.changes_plan(),
        "a change charging a whole period starts one"
    );
    let line_end = reset.lines.data[1].period.end;
    assert_eq!(
        (paid.price_id.as_deref(), paid.period_end),
        (Some("price_pro"), Some(line_end))
    );

    let mut open = invoice_with("subscription_cycle", &[(1000, "price_plus", false)]);
    open.status = Some(stripe_billing::InvoiceStatus::Open);
    assert_eq!(read_paid(&open), None, "only a paid invoice grants");

    // Another product's whole-period line on the same subscription, and a one-off fee, name
    // nothing: the change is still a change of plus to pro.
    let mixed = invoice_with(
        "subscription_update",
        &[
            (-1000, "price_plus", true),
            (2500, "price_pro", true),
            (90_000, "price_other_product", false),
        ],
    );
    let read = read_paid(&mixed).unwrap();
    assert!(read.changes_plan() && !read.starts_a_period(), "{read:?}");
    assert_eq!(read.price_id.as_deref(), Some("price_pro"));
}
