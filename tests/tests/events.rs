//! Every sample event in `events/` through the real binary it is for, as operators will run
//! them (`cargo lambda invoke --data-file events/<x>.json`), with the status it must produce.
//! A new file in `events/` without a row here fails the test.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::auth_admin_stub::AuthAdminStub;
use integration_tests::binaries;
use integration_tests::emulator;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::stripe_stub::StripeStub;
use integration_tests::tokens;
use serde_json::Value;

/// How a sample is prepared before it is sent.
#[derive(Clone, Copy)]
enum Prepare {
    /// As shipped.
    AsIs,
    /// Re-signed for now (webhook signatures are valid for 300 s).
    Resign,
    /// With a fresh user's token (the sample's user is shared by other tests).
    FreshUser,
}

const SAMPLES: &[(&str, &str, Prepare, u16)] = &[
    ("user-status.json", "user-status", Prepare::AsIs, 200),
    ("credit-history.json", "credit-history", Prepare::AsIs, 200),
    ("user-export.json", "user-export", Prepare::AsIs, 200),
    ("billing-plans.json", "billing-plans", Prepare::AsIs, 200),
    (
        "user-status-no-token.json",
        "user-status",
        Prepare::AsIs,
        401,
    ),
    (
        "user-status-wrong-method.json",
        "user-status",
        Prepare::AsIs,
        405,
    ),
    ("unknown-route.json", "user-status", Prepare::AsIs, 404),
    (
        "delete-account.json",
        "delete-account",
        Prepare::FreshUser,
        200,
    ),
    (
        "create-checkout-session.json",
        "create-checkout-session",
        Prepare::FreshUser,
        200,
    ),
    (
        "create-credit-pack-session.json",
        "create-credit-pack-session",
        Prepare::FreshUser,
        200,
    ),
    (
        "create-portal-session.json",
        "create-portal-session",
        Prepare::FreshUser,
        404,
    ),
    (
        "sync-subscription.json",
        "sync-subscription",
        Prepare::AsIs,
        200,
    ),
    (
        "stripe-webhook.json",
        "stripe-webhook",
        Prepare::Resign,
        200,
    ),
    (
        "stripe-webhook-base64.json",
        "stripe-webhook",
        Prepare::Resign,
        200,
    ),
    (
        "stripe-webhook-bad-signature.json",
        "stripe-webhook",
        Prepare::AsIs,
        400,
    ),
    // Not an HTTP event: the scheduled reconciliation answers with its report (200 here).
    ("reconcile.json", "reconcile", Prepare::AsIs, 200),
];

fn prepare(file: &str, how: Prepare) -> Value {
    match how {
        Prepare::AsIs => binaries::event(file),
        Prepare::FreshUser => binaries::event_as(file, &tokens::new_user()),
        Prepare::Resign => binaries::resigned_webhook_event(file),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_gets_its_expected_status_from_the_real_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let listed: BTreeSet<String> = SAMPLES.iter().map(|(file, ..)| file.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "every file in events/ needs a row in SAMPLES"
    );

    let (stub, auth) = (StripeStub::start().await, AuthAdminStub::start().await);
    for (file, binary, how, expected) in SAMPLES {
        let api = RuntimeApi::start().await;
        let mut env = binaries::billing_lambda_env(&stub.uri());
        env.extend(binaries::login_env(&auth.uri()));
        if *binary == "reconcile" {
            // It reads across every user: a table of its own keeps other tests' users out.
            env.push(("TABLE_NAME", emulator::own_table().await.table_name));
        }
        let _child = binaries::lambda(binary, api.address(), env)
            .spawn()
            .unwrap();
        let outcome = api
            .invoke(prepare(file, *how), Duration::from_secs(20))
            .await;
        let (status, body) = match (*binary, outcome) {
            ("reconcile", Outcome::Response(report)) if report["pass_complete"] == true => {
                (200, report)
            }
            (_, outcome) => {
                let (status, _, body) = outcome.http();
                (status, body)
            }
        };
        assert_eq!(status, *expected, "{file} through {binary}: {body}");
    }
}
