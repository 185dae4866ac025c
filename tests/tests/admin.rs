//! The operators' tool, `billing-admin`, each subcommand run against DynamoDB (emulator) and the
//! Stripe stub, checked by its effect: the adjustment entry naming the operator, the sync's
//! changes, the erasure, the replay that is a no-op the second time, the dry run that writes
//! nothing; each refusal with its exit code and nothing changed; every write's audit line.
//! The binary itself: `--help` everywhere, and a mistyped id refused before any call.

use std::sync::Arc;

use billing_admin::{Cli, Exit, Failure, Ops, Report};
use clap::Parser;
use common::billing::Billing;
use common::domain::{EntryKind, UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::{self, handle, parts};
use integration_tests::stripe_stub::{SECRET_KEY, StripeStub, WEBHOOK_SECRET};
use integration_tests::{binaries, emulator, tokens};
use serde_json::{Value, json};

const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/support/alice";

/// The tool's services: the emulator's table `store`, the stub, logins kept.
fn ops(store: Arc<dyn Store>, stub: &StripeStub) -> Ops {
    Ops {
        store,
        rules: apps::config().rules,
        billing: Ok(Billing::new(apps::stripe_config(&stub.uri())).unwrap()),
        login: Ok(None),
    }
}

/// Runs `billing-admin <args>` on `ops`, its DynamoDB calls allowed only what the template's
/// `BillingAdminPolicy` grants: its report or failure, and its audit lines.
async fn admin(ops: &Ops, args: &[&str]) -> (Result<Report, Failure>, Vec<Value>) {
    let cli = Cli::try_parse_from(std::iter::once("billing-admin").chain(args.iter().copied()))
        .expect("valid arguments");
    let mut log = Vec::new();
    let result =
        emulator::as_function("billing-admin", billing_admin::run(&cli, ops, &mut log)).await;
    let lines = String::from_utf8(log).unwrap();
    let audit = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (result, audit)
}

fn new_user() -> UserId {
    UserId::parse(&tokens::new_user()).unwrap()
}

async fn free_user(store: &Arc<dyn Store>) -> UserId {
    let user = new_user();
    let record = UserRecord::new_free(user.clone(), 10, common::unix_now());
    store.create_user(&record).await.unwrap();
    user
}

async fn purchased(store: &Arc<dyn Store>, user: &UserId) -> i64 {
    store
        .get_user(user)
        .await
        .unwrap()
        .unwrap()
        .purchased_credits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_and_revoke_write_one_adjustment_naming_the_operator_never_below_zero() {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let ops = ops(store.clone(), &stub);
    let user = free_user(&store).await;
    let id = user.as_str();

    let args = [
        "--operator",
        OPERATOR,
        "grant",
        id,
        "100",
        "--reason",
        "apology",
        "--id",
        "adm-1",
    ];
    let (granted, audit) = admin(&ops, &args).await;
    let granted = granted.unwrap();
    assert_eq!(granted.json["balance_after"], 100, "{}", granted.text);
    assert_eq!(purchased(&store, &user).await, 100);
    let (entries, _) = store.entries(&user, None, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, EntryKind::Adjustment);
    assert_eq!(entries[0].operator.as_deref(), Some(OPERATOR));
    assert_eq!(entries[0].reason.as_deref(), Some("apology"));
    assert_eq!(audit.len(), 1, "one line per write");
    assert_eq!(audit[0]["operator"], OPERATOR);
    assert_eq!(audit[0]["command"], "grant");
    assert_eq!(audit[0]["user"], user.hash());
    assert_eq!(audit[0]["outcome"], "adjusted");
    assert!(!audit[0].to_string().contains(SECRET_KEY));

    // The same command again (a retry): nothing more.
    let (again, audit) = admin(&ops, &args).await;
    assert_eq!(again.unwrap().json["applied"], false);
    assert_eq!(audit[0]["outcome"], "already applied");
    assert_eq!(purchased(&store, &user).await, 100);

    // More than is left: refused, exit 4, nothing taken.
    let revoke = [
        "--operator",
        OPERATOR,
        "revoke",
        id,
        "101",
        "--reason",
        "mistake",
    ];
    let (refused, audit) = admin(&ops, &revoke).await;
    assert_eq!(refused.unwrap_err().exit, Exit::Refused);
    assert_eq!(audit[0]["outcome"], "refused");
    assert_eq!(purchased(&store, &user).await, 100);
    let (revoked, _) = admin(
        &ops,
        &[
            "--operator",
            OPERATOR,
            "revoke",
            id,
            "40",
            "--reason",
            "mistake",
        ],
    )
    .await;
    assert_eq!(revoked.unwrap().json["balance_after"], 60);

    // No operator named: usage, nothing written; an unknown user: not found.
    let (unnamed, audit) = admin(&ops, &["grant", id, "5", "--reason", "x"]).await;
    assert_eq!((unnamed.unwrap_err().exit, audit.len()), (Exit::Usage, 0));
    let stranger = new_user();
    let (missing, _) = admin(
        &ops,
        &[
            "--operator",
            OPERATOR,
            "grant",
            stranger.as_str(),
            "5",
            "--reason",
            "x",
        ],
    )
    .await;
    assert_eq!(missing.unwrap_err().exit, Exit::NotFound);
    assert_eq!(store.get_user(&stranger).await.unwrap(), None);
    assert_eq!(purchased(&store, &user).await, 60);

    // show: the balances and the entries, the operator named.
    let (shown, _) = admin(&ops, &["--json", "show", id]).await;
    let shown = shown.unwrap();
    assert_eq!(shown.json["profile"]["purchased_credits"], 60);
    let entries = shown.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["operator"], OPERATOR);
    assert!(shown.text.contains("purchased 60"), "{}", shown.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_prints_what_changed_and_erase_needs_yes_then_removes_everything() {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let ops = ops(store.clone(), &stub);
    let (user, customer) = apps::customer_of_new_user(&store).await;
    let now = common::unix_now();
    stub.subscriptions(vec![apps::subscription_paid_by(
        &customer,
        "in_admin",
        now - 60,
        "subscription_create",
    )])
    .await;

    let (synced, audit) = admin(&ops, &["--operator", OPERATOR, "sync", user.as_str()]).await;
    let synced = synced.unwrap();
    let fields: Vec<&str> = synced.json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"subscription_status"), "{}", synced.text);
    assert_eq!(synced.json["new_entries"][0]["kind"], "period_grant");
    assert_eq!(audit[0]["command"], "sync");
    let (again, _) = admin(&ops, &["--operator", OPERATOR, "sync", user.as_str()]).await;
    assert!(again.unwrap().text.starts_with("nothing changed"));

    // Without --yes: nothing is done.
    emulator::seed_items(user.as_str(), "CONV", 3).await;
    let before = emulator::items_mentioning(user.as_str()).await;
    let stranger = new_user();
    let (unknown, _) = admin(
        &ops,
        &["--operator", OPERATOR, "erase", stranger.as_str(), "--yes"],
    )
    .await;
    assert_eq!(
        unknown.unwrap_err().exit,
        Exit::NotFound,
        "a mistyped id erases nothing"
    );
    assert!(store.tombstone(&stranger).await.unwrap().is_none());
    let (unsure, audit) = admin(&ops, &["--operator", OPERATOR, "erase", user.as_str()]).await;
    assert_eq!((unsure.unwrap_err().exit, audit.len()), (Exit::Usage, 0));
    assert_eq!(emulator::items_mentioning(user.as_str()).await, before);

    let (erased, audit) = admin(
        &ops,
        &["--operator", OPERATOR, "erase", user.as_str(), "--yes"],
    )
    .await;
    let erased = erased.unwrap();
    assert_eq!(erased.json["stage"], "stored_erased", "logins kept here");
    assert_eq!(audit[0]["outcome"], "erased");
    assert_eq!(emulator::items_mentioning(user.as_str()).await, 0);
    let routes: Vec<String> = stub.sent().await.into_iter().map(|s| s.route).collect();
    assert!(
        routes.contains(&format!("DELETE /v1/customers/{customer}")),
        "{routes:?}"
    );
    let (gone, _) = admin(&ops, &["show", user.as_str()]).await;
    let gone = gone.unwrap_err();
    assert_eq!(gone.exit, Exit::NotFound);
    assert!(gone.message.contains("erased"), "{}", gone.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_event_is_shown_unprocessed_and_its_replay_grants_once() {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = apps::app(store.clone(), Some(&stub.uri()));
    let ops = ops(store.clone(), &stub);
    // A pack paid whose webhook never arrived (the stub delivers no event).
    let user = new_user();
    let mut event = binaries::event_as("create-credit-pack-session.json", user.as_str());
    event["body"] = json!(r#"{"pack": "small"}"#);
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, _, body) = parts(Box::pin(handle("create-credit-pack-session", &app, req)).await);
    assert_eq!(status, 200, "{body}");
    let session = body["checkout_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    stub.pay(&session).unwrap();
    let completed = stub.events_of("checkout.session.completed");
    let lost = completed
        .iter()
        .find(|e| e["data"]["object"]["id"] == session)
        .expect("Stripe keeps the event");
    let lost = lost["id"].as_str().unwrap();

    let (shown, _) = admin(&ops, &["--json", "event", lost]).await;
    let shown = shown.unwrap();
    assert_eq!(shown.json["type"], "checkout.session.completed");
    assert_eq!(shown.json["state"], Value::Null, "never arrived");
    assert_eq!(purchased(&store, &user).await, 0);

    let (replayed, audit) = admin(
        &ops,
        &["--operator", OPERATOR, "--json", "event", lost, "--replay"],
    )
    .await;
    assert_eq!(replayed.unwrap().json["state"], "done");
    assert_eq!(audit[0]["outcome"], "processed");
    assert_eq!(purchased(&store, &user).await, 500);
    let (entries, _) = store.entries(&user, None, 50).await.unwrap();

    // Again: processed again, nothing more; and a delivery now is a duplicate.
    let (again, _) = admin(&ops, &["--operator", OPERATOR, "event", lost, "--replay"]).await;
    assert!(again.is_ok());
    assert_eq!(purchased(&store, &user).await, 500);
    assert_eq!(store.entries(&user, None, 50).await.unwrap().0, entries);
    let delivered = stub.events_of("checkout.session.completed");
    let delivery = delivered.iter().find(|e| e["id"] == lost).unwrap();
    let req = apps::webhook(delivery, WEBHOOK_SECRET, common::unix_now());
    let (status, _, _) = parts(Box::pin(handle("stripe-webhook", &app, req)).await);
    assert_eq!(status, 200);
    assert_eq!(purchased(&store, &user).await, 500);

    let (unknown, _) = admin(&ops, &["event", "evt_does_not_exist"]).await;
    assert_eq!(unknown.unwrap_err().exit, Exit::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciliation_dry_run_lists_who_is_due_and_writes_nothing() {
    let stub = StripeStub::start().await;
    let (store, _) = emulator::own_store().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let ops = ops(store.clone(), &stub);
    let (user, customer) = apps::customer_of_new_user(&store).await;
    let mut record = store.get_user(&user).await.unwrap().unwrap();
    record.next_check = Some(common::unix_now() - 60);
    let view = common::domain::SubscriptionView {
        next_check: record.next_check,
        ..common::domain::SubscriptionView::none(1)
    };
    store.apply_subscription(&user, &view).await.unwrap();
    let now = common::unix_now();
    stub.subscriptions(vec![apps::subscription_paid_by(
        &customer,
        "in_due",
        now - 60,
        "subscription_create",
    )])
    .await;
    let before = emulator::items_of(user.as_str()).await;

    let (listed, audit) = admin(&ops, &["--json", "reconcile", "--dry-run"]).await;
    let listed = listed.unwrap();
    let due = listed.json["due"].as_array().unwrap();
    assert_eq!(due.len(), 1, "{}", listed.json);
    assert_eq!(due[0]["user_id"], user.as_str());
    assert_eq!(listed.json["would_change"], 1);
    assert!(audit.is_empty(), "no write");
    assert_eq!(
        emulator::items_of(user.as_str()).await,
        before,
        "nothing written"
    );
}

#[tokio::test]
async fn the_binary_helps_everywhere_and_refuses_a_mistyped_id_before_any_call() {
    let bin = binaries::path("billing-admin");
    for args in [
        vec!["--help"],
        vec!["show", "--help"],
        vec!["grant", "--help"],
        vec!["revoke", "--help"],
        vec!["sync", "--help"],
        vec!["erase", "--help"],
        vec!["event", "--help"],
        vec!["reconcile", "--help"],
    ] {
        let out = std::process::Command::new(&bin)
            .args(&args)
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    // No settings at all: the parser refuses first, naming the argument.
    for args in [
        vec!["show", "not-a-uuid"],
        vec!["event", "in_123"],
        vec!["grant", &tokens::new_user(), "0", "--reason", "x"],
        vec!["reconcile"],
        vec![
            "grant",
            &tokens::new_user(),
            "5",
            "--reason",
            &"x".repeat(201),
        ],
    ] {
        let out = std::process::Command::new(&bin)
            .args(&args)
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // Settings but no --yes: exit 2, and the emulator was not asked (there is none at this port).
    let user = tokens::new_user();
    let out = std::process::Command::new(&bin)
        .args(["--operator", OPERATOR, "erase", &user])
        .env_clear()
        .envs([
            ("TABLE_NAME", "users"),
            ("AWS_REGION", "eu-central-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            (
                "DYNAMODB_ENDPOINT",
                &format!("http://127.0.0.1:{}", binaries::free_port()),
            ),
            ("AUTH_USER_DELETION", "off"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
}
