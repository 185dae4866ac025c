//! The StripeWebhook Lambda: builds the app (Stripe, signing secret) once, then serves events.

use common::app::{App, Needs};
use lambda_http::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    common::telemetry::init();
    let app = App::from_env_or_exit(Needs::Webhook).await;
    run(service_fn(|req| async {
        Ok::<_, Error>(stripe_webhook::handle(&app, req).await)
    }))
    .await
}
