//! The scheduled reconciliation on DynamoDB (emulator, a table of each test's own: it reads
//! across every user) with the Stripe stub: it repairs a subscriber whose renewal's
//! `invoice.paid` never came, once; a run cut by its deadline leaves a cursor the next run
//! continues from; Stripe failures for some users are counted and the others repaired; the
//! binary runs as a Lambda on its scheduled-event sample, and its metric lines are valid EMF
//! that name no user and no customer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::App;
use common::config::ReconcileConfig;
use common::domain::{ReconcileCursor, SubscriptionStatus, UserId, UserRecord};
use common::store::Store;
use integration_tests::faulty_store::{CallLog, FaultyStore};
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::stripe_stub::{PRICE, StripeStub, paid_invoice, subscription};
use integration_tests::{apps, binaries, emulator, tokens};
use reconcile::Report;
use serde_json::Value;

/// Credits a paid period grants in the test apps (`PLAN_CREDITS`).
const PLAN_CREDITS: i64 = 1000;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// A reconciliation run, as the reconcile function (its DynamoDB calls under its policy).
async fn run(
    app: &App,
    settings: &ReconcileConfig,
    deadline: std::time::Instant,
) -> Result<Report, common::ApiError> {
    emulator::as_function("reconcile", reconcile::reconcile(app, settings, deadline)).await
}

/// The Stripe stub, a table of the test's own (and its name), an app on both.
async fn setup() -> (StripeStub, Arc<dyn Store>, App, String) {
    let stub = StripeStub::start().await;
    let (store, config) = emulator::own_store().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let app = apps::app(store.clone(), Some(&stub.uri()));
    (stub, store, app, config.table_name)
}

/// A subscriber who paid the first period (credits granted, 10 spent), whose period ended two
/// hours ago: due for reconciliation. Returns the user and the customer.
async fn lapsed_subscriber(store: &Arc<dyn Store>) -> (UserId, String) {
    subscriber_due_at(store, common::unix_now() - HOUR).await
}

/// [`lapsed_subscriber`], due for reconciliation at `due_at` (Unix seconds).
async fn subscriber_due_at(store: &Arc<dyn Store>, due_at: i64) -> (UserId, String) {
    let user = UserId::parse(&tokens::new_user()).unwrap();
    let now = common::unix_now();
    let mut record = UserRecord::new_free(user.clone(), 10, now - 40 * DAY);
    record.plan = "pro".into();
    record.subscription_status = SubscriptionStatus::Active;
    record.credits_remaining = PLAN_CREDITS - 10;
    record.granted_invoices = [format!("in_first_{}", simple(&user))].into();
    record.last_grant_created = now - 31 * DAY;
    record.current_period_end = Some(now - 2 * HOUR);
    record.synced_at_ms = (now - 31 * DAY) * 1000;
    record.next_check = Some(due_at);
    let customer = format!("cus_{}", simple(&user));
    record.subscription_id = Some(format!("sub_{customer}"));
    record.price_id = Some(PRICE.to_owned());
    store.create_user(&record).await.unwrap();
    store.link_customer(&user, &customer).await.unwrap();
    (user, customer)
}

fn simple(user: &UserId) -> String {
    user.as_str().replace('-', "")
}

/// The customer's subscription at Stripe, renewed: a new period, its paid renewal invoice the
/// latest.
fn renewed(customer: &str) -> Value {
    let now = common::unix_now();
    let id = format!("sub_{customer}");
    let mut sub = subscription(&id, customer, "active", now - 40 * DAY, now + 29 * DAY);
    let invoice = format!("in_renewal_{customer}");
    sub["latest_invoice"] = paid_invoice(&invoice, &id, now - HOUR, "subscription_cycle");
    sub
}

fn settings(concurrency: usize) -> ReconcileConfig {
    ReconcileConfig {
        concurrency,
        reserve: Duration::ZERO,
        stripe_rps: std::num::NonZeroU32::new(100).unwrap(),
    }
}

fn within(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Whether the renewal reached the user's record: the new period, its credits, both invoices.
async fn renewed_once(store: &Arc<dyn Store>, user: &UserId) -> bool {
    let record = store.get_user(user).await.unwrap().unwrap();
    record.credits_remaining == PLAN_CREDITS
        && record.granted_invoices.len() == 2
        && record.current_period_end > Some(common::unix_now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_whose_invoice_paid_never_came_is_repaired_once() {
    let (stub, store, app, _) = setup().await;
    let (user, customer) = lapsed_subscriber(&store).await;
    let (settled, _) = lapsed_subscriber(&store).await;
    // The other subscriber's state at Stripe is what we hold already: nothing to repair.
    let mut unchanged = store.get_user(&settled).await.unwrap().unwrap();
    let settled_customer = unchanged.stripe_customer_id.clone().unwrap();
    let mut as_held = subscription(
        &format!("sub_{settled_customer}"),
        &settled_customer,
        "active",
        1,
        unchanged.current_period_end.unwrap(),
    );
    as_held["latest_invoice"] = Value::Null;
    stub.subscriptions_of_each_customer(vec![renewed(&customer), as_held])
        .await;

    let report = run(&app, &settings(4), within(120)).await.unwrap();
    assert_eq!(
        report,
        Report {
            checked: 2,
            repaired: 1,
            failed: 0,
            subscribers: 2,
            pass_complete: true
        }
    );
    assert!(renewed_once(&store, &user).await);
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.subscription_status, SubscriptionStatus::Active);
    assert!(record.next_check > Some(common::unix_now()), "not due now");
    unchanged.next_check = None;
    let mut now_settled = store.get_user(&settled).await.unwrap().unwrap();
    now_settled.next_check = None;
    now_settled.synced_at_ms = unchanged.synced_at_ms;
    // A record from before `status_since` was kept gets it at its first sync.
    assert!(now_settled.status_since.is_some());
    now_settled.status_since = unchanged.status_since;
    assert_eq!(now_settled, unchanged, "nothing moved for the settled one");
    assert_eq!(store.reconcile_cursor().await.unwrap(), None, "pass ended");

    // A second run finds nobody due and changes nothing.
    let calls = stub.sent_to("GET /v1/subscriptions").await.len();
    let again = run(&app, &settings(4), within(120)).await.unwrap();
    assert_eq!((again.checked, again.repaired, again.failed), (0, 0, 0));
    assert_eq!(stub.sent_to("GET /v1/subscriptions").await.len(), calls);
    assert!(renewed_once(&store, &user).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_by_its_deadline_leaves_a_cursor_and_the_next_run_continues() {
    let (stub, store, app, _) = setup().await;
    let mut users = Vec::new();
    let mut subscriptions = Vec::new();
    for _ in 0..5 {
        let (user, customer) = lapsed_subscriber(&store).await;
        subscriptions.push(renewed(&customer));
        users.push(user);
    }
    stub.subscriptions_of_each_customer(subscriptions).await;
    stub.list_delay(Duration::from_millis(800));

    let first = run(&app, &settings(1), within(2)).await.unwrap();
    assert!(!first.pass_complete, "{first:?}");
    let cursor = store.reconcile_cursor().await.unwrap().expect("a cursor");

    stub.list_delay(Duration::ZERO);
    let second = run(&app, &settings(1), within(120)).await.unwrap();
    assert!(second.pass_complete, "{second:?}");
    assert_eq!(store.reconcile_cursor().await.unwrap(), None);
    for user in &users {
        assert!(renewed_once(&store, user).await, "{user:?}");
    }
    // The second run went on from the cursor: no user finished in the first was synced again.
    // (At most one sync was in flight when the deadline came; it may have finished its write.)
    let listed = stub.sent_to("GET /v1/subscriptions").await.len();
    assert!(
        listed <= users.len() + 1,
        "{listed} lists for {} users",
        users.len()
    );
    let synced = first.checked + second.checked;
    assert!(
        synced == users.len() || synced == users.len() - 1,
        "{first:?} {second:?}"
    );
    assert!(cursor.pass_started_at <= common::unix_now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_pass_that_ends_early_begins_the_run_s_own_pass() {
    let (stub, store, app, _) = setup().await;
    let now = common::unix_now();
    // A pass begun two hours ago was cut short before its last user; another user fell due
    // after it began.
    let (in_old_pass, old_customer) = subscriber_due_at(&store, now - 3 * HOUR).await;
    let (due_since, new_customer) = subscriber_due_at(&store, now - HOUR).await;
    let old_pass = ReconcileCursor {
        pass_started_at: now - 2 * HOUR,
        after: None,
    };
    store.save_reconcile_cursor(Some(&old_pass)).await.unwrap();
    stub.subscriptions_of_each_customer(vec![renewed(&old_customer), renewed(&new_customer)])
        .await;

    let report = run(&app, &settings(2), within(120)).await.unwrap();
    assert_eq!(
        (report.checked, report.pass_complete),
        (2, true),
        "{report:?}"
    );
    assert_eq!(store.reconcile_cursor().await.unwrap(), None);
    for user in [&in_old_pass, &due_since] {
        assert!(renewed_once(&store, user).await, "{user:?}");
    }
    // Each synced once: the new pass does not visit the old pass's users again.
    assert_eq!(stub.sent_to("GET /v1/subscriptions").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_failures_for_some_users_are_counted_and_the_others_repaired() {
    let (stub, store, app, _) = setup().await;
    let mut users = Vec::new();
    let mut subscriptions = Vec::new();
    for _ in 0..4 {
        let (user, customer) = lapsed_subscriber(&store).await;
        subscriptions.push(renewed(&customer));
        users.push((user, customer));
    }
    stub.subscriptions_of_each_customer(subscriptions).await;
    // Every attempt of the client (3) fails, for two of the customers.
    stub.fail_subscriptions_of(&users[0].1, 429, 3).await;
    stub.fail_subscriptions_of(&users[1].1, 500, 3).await;

    let report = run(&app, &settings(2), within(120)).await.unwrap();
    assert_eq!(
        (
            report.checked,
            report.repaired,
            report.failed,
            report.pass_complete
        ),
        (2, 2, 2, true)
    );
    let pace = app.billing().unwrap().calls_per_second().unwrap();
    assert!(
        pace < 100,
        "each 429 halved the run's pace: {pace} a second"
    );
    for (user, _) in &users[2..] {
        assert!(renewed_once(&store, user).await);
    }
    for (user, _) in &users[..2] {
        let record = store.get_user(user).await.unwrap().unwrap();
        assert_eq!(
            (record.credits_remaining, record.granted_invoices.len()),
            (PLAN_CREDITS - 10, 1),
            "a failed user is left as it was"
        );
        assert!(record.next_check < Some(common::unix_now()), "still due");
    }

    // Stripe is back: the next pass, at its full pace again, repairs them.
    let next = run(&app, &settings(2), within(120)).await.unwrap();
    assert_eq!((next.checked, next.repaired, next.failed), (2, 2, 0));
    assert_eq!(app.billing().unwrap().calls_per_second(), Some(100));
    for (user, _) in &users {
        assert!(renewed_once(&store, user).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_on_its_scheduled_event_and_its_metric_lines_are_emf_without_ids() {
    let (stub, store, _app, table) = setup().await;
    let (user, customer) = lapsed_subscriber(&store).await;
    stub.subscriptions_of_each_customer(vec![renewed(&customer)])
        .await;

    let api = RuntimeApi::start().await;
    let mut env = binaries::billing_lambda_env(&stub.uri());
    env.push(("TABLE_NAME", table));
    let child = binaries::lambda("reconcile", api.address(), env)
        .spawn()
        .unwrap();
    let outcome = api
        .invoke(binaries::event("reconcile.json"), Duration::from_secs(60))
        .await;
    let Outcome::Response(report) = outcome else {
        panic!("the run failed: {outcome:?}")
    };
    assert_eq!(report["repaired"], 1, "{report}");
    assert_eq!(report["pass_complete"], true, "{report}");
    assert!(renewed_once(&store, &user).await);

    let output = binaries::output_of(child).await;
    let lines: Vec<Value> = output
        .lines()
        .filter(|line| line.contains("\"_aws\""))
        .map(|line| serde_json::from_str(line).expect("an EMF line is one JSON document"))
        .collect();
    let names: Vec<&str> = lines.iter().flat_map(metric_names).collect();
    for expected in [
        "Grants",
        "ReconcileChecked",
        "ReconcileRepaired",
        "ReconcileFailed",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    for line in &lines {
        assert_valid_emf(line);
        let text = line.to_string();
        for id in [user.as_str(), &simple(&user), &customer] {
            assert!(!text.contains(id), "an id in a metric line: {text}");
        }
    }
}

fn metric_names(line: &Value) -> Vec<&str> {
    line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["Name"].as_str())
        .collect()
}

/// The rules of the Embedded Metric Format specification: a millisecond timestamp, a namespace,
/// dimension sets of at most 30 keys that are string members, metrics (at most 100) that are
/// numeric members with a unit.
fn assert_valid_emf(line: &Value) {
    let aws = &line["_aws"];
    assert!(
        aws["Timestamp"].as_i64().unwrap() > 1_600_000_000_000,
        "{line}"
    );
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1, "{line}");
    let directive = &directives[0];
    assert!(!directive["Namespace"].as_str().unwrap().is_empty());
    for set in directive["Dimensions"].as_array().unwrap() {
        let keys = set.as_array().unwrap();
        assert!(!keys.is_empty() && keys.len() <= 30, "{line}");
        for key in keys {
            assert!(line[key.as_str().unwrap()].is_string(), "{key} in {line}");
        }
    }
    let metrics = directive["Metrics"].as_array().unwrap();
    assert!(!metrics.is_empty() && metrics.len() <= 100, "{line}");
    for metric in metrics {
        assert!(line[metric["Name"].as_str().unwrap()].is_number(), "{line}");
        // A pass's age is a time; every other metric a count.
        let unit = match metric["Name"].as_str() {
            Some("ReconcilePassAge") => "Seconds",
            _ => "Count",
        };
        assert_eq!(metric["Unit"], unit, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reads_only_the_due_users_one_stripe_call_each() {
    let (stub, inner, _, _) = setup().await;
    let (due, customer) = lapsed_subscriber(&inner).await;
    let mut not_due = Vec::new();
    for _ in 0..3 {
        let (user, _) = subscriber_due_at(&inner, common::unix_now() + DAY).await;
        not_due.push(user);
    }
    stub.subscriptions_of_each_customer(vec![renewed(&customer)])
        .await;
    let log = CallLog::default();
    let store: Arc<dyn Store> = Arc::new(FaultyStore::new(inner.clone(), log.clone()));
    let app = apps::app(store, Some(&stub.uri()));

    let report = run(&app, &settings(4), within(120)).await.unwrap();
    assert_eq!((report.checked, report.repaired), (1, 1));
    let calls = log.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "store:reconcile_cursor",
            "store:due_users",
            "store:get_user",
            "store:apply_subscription",
            "store:get_user",
            "store:post",
            "store:apply_subscription",
            "store:get_user",
            "store:save_reconcile_cursor",
        ],
        "per run: the cursor, one index page; per due user: a read, the view (the user kept due), the grant, the view's next check, a read back"
    );
    assert_eq!(stub.sent_to("GET /v1/subscriptions").await.len(), 1);
    assert!(renewed_once(&inner, &due).await);
    for user in &not_due {
        let record = inner.get_user(user).await.unwrap().unwrap();
        assert_eq!(record.granted_invoices.len(), 1, "not due: left alone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_quiet_for_ninety_days_leaves_the_index_until_anything_moves() {
    let (stub, store, app, _) = setup().await;
    let (user, customer) = apps::customer_of_new_user(&store).await;
    let now = common::unix_now();
    // Canceled 91 days ago, and due now.
    let view = common::domain::SubscriptionView {
        status: SubscriptionStatus::Canceled,
        status_since: now - 91 * DAY,
        next_check: Some(now - 60),
        ..common::domain::SubscriptionView::none(common::unix_now_ms())
    };
    assert!(store.apply_subscription(&user, &view).await.unwrap());
    let canceled = subscription(
        &format!("sub_{customer}"),
        &customer,
        "canceled",
        now - 200 * DAY,
        now - 91 * DAY,
    );
    stub.subscriptions_of_each_customer(vec![canceled]).await;

    let report = run(&app, &settings(2), within(120)).await.unwrap();
    assert_eq!((report.checked, report.pass_complete), (1, true));
    let left = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(left.next_check, None, "out of the due index");
    let (due, _) = store.due_users(now + 400 * DAY, None, 100).await.unwrap();
    assert!(due.iter().all(|d| d.user != user));
    assert_eq!(
        run(&app, &settings(2), within(120)).await.unwrap().checked,
        0
    );

    // The user subscribes again: the webhook's (here the endpoint's) sync puts them back.
    stub.subscriptions_of_each_customer(vec![renewed(&customer)])
        .await;
    let req = apps::request("sync-subscription.json", user.as_str());
    let (status, _, body) =
        apps::parts(Box::pin(apps::handle("sync-subscription", &app, req)).await);
    assert_eq!(status, 200, "{body}");
    let back = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(back.subscription_status, SubscriptionStatus::Active);
    assert!(back.next_check.is_some(), "due again");
    assert!(back.status_since.unwrap() >= now, "the new status's start");
}
