//! Every function answers with the contract's JSON before its deadline, whatever hangs: the
//! handler gets the invocation's deadline from the Lambda context, keeps a margin, and answers
//! 503 `DEADLINE_EXCEEDED` with `Retry-After` when a dependency hangs past it. An erasure cut off
//! so resumes on the next call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::domain::{ErasureStage, UserId};
use common::store::Store;
use integration_tests::apps::{app, erasure_app, parts, request};
use integration_tests::auth_admin_stub::AuthAdminStub;
use integration_tests::storage_faults::{Fault, FaultProxy};
use integration_tests::stripe_stub::StripeStub;
use integration_tests::{emulator, tokens};
use lambda_http::Context;
use lambda_http::RequestExt;

/// The sample event `file` of `user`, as an invocation whose deadline is `budget` from now.
fn due_in(file: &str, user: &str, budget: Duration) -> lambda_http::Request {
    let mut context = Context::default();
    context.deadline = (common::unix_now_ms() + budget.as_millis() as i64) as u64;
    request(file, user).with_lambda_context(context)
}

/// Calls `function` with a deadline `budget` away; returns status, code, whether `Retry-After`
/// was set, and how long the answer took.
async fn call_due(
    function: &str,
    app: &common::App,
    user: &str,
    budget: Duration,
) -> (u16, Option<String>, bool, Duration) {
    let started = Instant::now();
    let req = due_in(&format!("{function}.json"), user, budget);
    let (status, headers, body) = parts(integration_tests::apps::handle(function, app, req).await);
    let code = body["error"]["code"].as_str().map(str::to_owned);
    let took = started.elapsed();
    println!("{function}: {status} {code:?} after {took:?} (deadline {budget:?} away)");
    (status, code, headers.contains_key("retry-after"), took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_stripe_is_answered_503_before_the_deadline() {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = app(store, Some(&stub.uri()));
    stub.delay("POST", "/v1/customers", Duration::from_secs(60))
        .await;
    let budget = Duration::from_secs(3);

    let (status, code, retry, took) =
        call_due("create-checkout-session", &app, &tokens::new_user(), budget).await;
    assert_eq!(
        (status, code.as_deref(), retry),
        (503, Some("DEADLINE_EXCEEDED"), true)
    );
    assert!(took < budget, "answered after {took:?}, past the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_storage_is_answered_503_before_the_deadline() {
    let proxy = FaultProxy::start().await;
    let app = app(Arc::new(proxy.patient_store().await), None);
    proxy.inject("GetItem", Fault::Hang, usize::MAX);
    let budget = Duration::from_secs(2);

    let (status, code, retry, took) =
        call_due("user-status", &app, &tokens::new_user(), budget).await;
    assert_eq!(
        (status, code.as_deref(), retry),
        (503, Some("DEADLINE_EXCEEDED"), true)
    );
    assert!(took < budget, "answered after {took:?}, past the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_cut_off_by_its_deadline_resumes_on_the_next_call() {
    let (stub, auth) = (StripeStub::start().await, AuthAdminStub::start().await);
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = erasure_app(store.clone(), &stub.uri(), &auth.uri());
    let user = tokens::new_user();
    emulator::seed_items(&user, "CONV", 20).await;
    auth.add_user(&user);
    auth.hang(Duration::from_secs(60), 3).await;
    let budget = Duration::from_secs(3);

    let (status, code, retry, took) = call_due("delete-account", &app, &user, budget).await;
    assert_eq!(
        (status, code.as_deref(), retry),
        (503, Some("DEADLINE_EXCEEDED"), true)
    );
    assert!(took < budget, "answered after {took:?}, past the deadline");
    let id = UserId::parse(&user).unwrap();
    let stage = store.tombstone(&id).await.unwrap().map(|t| t.stage);
    assert_eq!(
        stage,
        Some(ErasureStage::StoredErased),
        "everything but the login is done"
    );

    let (status, _, _, _) = call_due("delete-account", &app, &user, Duration::from_secs(20)).await;
    assert_eq!(status, 200, "the next call resumes and finishes");
    assert!(!auth.has_user(&user));
    assert_eq!(emulator::items_mentioning(&user).await, 0);
}
