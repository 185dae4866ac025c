//! `embedded-lambda FUNCTION`: one function's handler as a Lambda on the embedded store, the
//! floor `./scripts/bench` measures each function against: at init it builds what the
//! function's own `main` builds (its `Needs`: Stripe, the auth service's admin API; its secrets,
//! read as the environment names them; its JSON logs), but no DynamoDB client; the handler's and the runtime's own cost, with no storage
//! emulator in the path. `reconcile`, which no route reaches, runs on its schedule's event as its
//! own `main` does. Never deployed: the Lambdas always use DynamoDB.

use std::sync::Arc;

use common::App;
use common::app::Needs;
use common::config::ReconcileConfig;
use common::store::MemoryStore;
use integration_tests::apps;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = std::env::args()
        .nth(1)
        .expect("usage: embedded-lambda FUNCTION");
    // The function's own logs, as its main sets them up: they are part of the handler.
    common::telemetry::init();
    // What each function's own main builds at init, but the store.
    let needs = match function.as_str() {
        "user-status" | "credit-history" | "user-export" => Needs::Storage,
        "stripe-webhook" => Needs::Webhook,
        "delete-account" => Needs::Erasure,
        "reconcile" => Needs::Reconcile,
        _ => Needs::Billing,
    };
    let store = Arc::new(MemoryStore::new());
    let app = App::from_env_with_store(needs, store)
        .await
        .expect("valid configuration");
    if function == "reconcile" {
        let settings = ReconcileConfig::from_env().expect("valid configuration");
        let (app, settings) = (&app, &settings);
        return lambda_runtime::run(service_fn(
            move |event: LambdaEvent<serde_json::Value>| async move {
                Ok::<_, Error>(reconcile::handle(app, settings, event).await?)
            },
        ))
        .await;
    }
    let (app, function) = (&app, function.as_str());
    run(service_fn(move |req| async move {
        Ok::<_, Error>(apps::handle(function, app, req).await)
    }))
    .await
}
