//! The UserExport Lambda: builds the app once at init, then serves invocations.

use common::app::{App, Needs};
use lambda_http::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    common::telemetry::init();
    let app = App::from_env_or_exit(Needs::Storage).await;
    run(service_fn(|req| async {
        Ok::<_, Error>(user_export::handle(&app, req).await)
    }))
    .await
}
