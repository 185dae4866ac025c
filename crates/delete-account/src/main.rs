//! The DeleteAccount Lambda: builds the app (with Stripe and the auth service's admin API) once at
//! init, then serves invocations.

use common::app::{App, Needs};
use lambda_http::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    common::telemetry::init();
    let app = App::from_env_or_exit(Needs::Erasure).await;
    run(service_fn(|req| async {
        Ok::<_, Error>(delete_account::handle(&app, req).await)
    }))
    .await
}
