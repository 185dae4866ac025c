//! `embedded-lambda FUNCTION`: one function's handler as a Lambda on the embedded store, for
//! `./scripts/bench`'s embedded-store table (the handler's and the runtime's own cost, with no
//! storage emulator in the path). Never deployed: the Lambdas always use DynamoDB.

use std::sync::Arc;

use common::App;
use common::billing::Billing;
use common::config::{Config, StripeConfig};
use common::login::{LoginAdmin, LoginConfig};
use common::store::MemoryStore;
use integration_tests::apps;
use lambda_http::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = std::env::args()
        .nth(1)
        .expect("usage: embedded-lambda FUNCTION");
    let config = Config::from_env().expect("valid configuration");
    let billing = StripeConfig::from_env()
        .ok()
        .map(|stripe| Billing::new(stripe).expect("valid Stripe configuration"));
    let mut app = App::new(config, Arc::new(MemoryStore::new()), billing);
    if let Ok(Some(login)) = LoginConfig::from_env() {
        app = app.with_login(LoginAdmin::new(login));
    }
    let (app, function) = (&app, function.as_str());
    run(service_fn(move |req| async move {
        Ok::<_, Error>(apps::handle(function, app, req).await)
    }))
    .await
}
