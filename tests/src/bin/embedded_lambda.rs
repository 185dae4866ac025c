//! `embedded-lambda FUNCTION`: one function's handler as a Lambda on the embedded store, for
//! `./scripts/bench`'s embedded-store table (the handler's and the runtime's own cost, with no
//! storage emulator in the path). Never deployed: the Lambdas always use DynamoDB.

use std::sync::Arc;

use common::App;
use common::billing::Billing;
use common::config::{Config, StripeConfig};
use common::store::MemoryStore;
use lambda_http::{Body, Error, Request, Response, run, service_fn};

async fn handle(function: &str, app: &App, req: Request) -> Response<Body> {
    match function {
        "user-status" => user_status::handle(app, req).await,
        "sync-subscription" => sync_subscription::handle(app, req).await,
        "create-checkout-session" => create_checkout_session::handle(app, req).await,
        "create-portal-session" => create_portal_session::handle(app, req).await,
        "delete-account" => delete_account::handle(app, req).await,
        "stripe-webhook" => stripe_webhook::handle(app, req).await,
        other => panic!("no function {other}"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = std::env::args()
        .nth(1)
        .expect("usage: embedded-lambda FUNCTION");
    let config = Config::from_env().expect("valid configuration");
    let billing = StripeConfig::from_env()
        .ok()
        .map(|stripe| Billing::new(stripe).expect("valid Stripe configuration"));
    let app = App::new(config, Arc::new(MemoryStore::new()), billing);
    let (app, function) = (&app, function.as_str());
    run(service_fn(move |req| async move {
        Ok::<_, Error>(handle(function, app, req).await)
    }))
    .await
}
