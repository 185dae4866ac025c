//! The Reconcile Lambda: builds the app once at init, then runs on its schedule.

use common::app::{App, Needs};
use common::config::ReconcileConfig;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    common::telemetry::init();
    let app = App::from_env_or_exit(Needs::Reconcile).await;
    let settings = ReconcileConfig::from_env().unwrap_or_else(|err| {
        tracing::error!(variable = err.variable, "{err}; refusing to start");
        std::process::exit(1);
    });
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (app, settings) = (&app, &settings);
        async move { Ok::<_, Error>(reconcile::handle(app, settings, event).await?) }
    }))
    .await
}
