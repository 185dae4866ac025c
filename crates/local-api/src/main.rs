//! `cargo run -p local-api [-- --addr 127.0.0.1:8080]`: every endpoint at its real path, through
//! the same handler code as the Lambdas, on the embedded store unless DynamoDB is configured.

use std::net::SocketAddr;
use std::sync::Arc;

use common::App;
use common::config::ConfigError;
use common::store::{DynamoStore, MemoryStore, Store};
use local_api::{dev, server};

const DEFAULT_ADDR: &str = "127.0.0.1:8080";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    common::telemetry::init();
    let addr = match parse_addr(std::env::args().skip(1)) {
        Ok(addr) => addr,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let local = dev::LocalConfig::from_env();
    let config = or_exit(local.config());
    let store: Arc<dyn Store> = if local.uses_dynamodb() {
        println!("storage: DynamoDB table {}", config.storage.table_name);
        Arc::new(or_exit(DynamoStore::connect(&config.storage).await))
    } else {
        println!("storage: embedded in-memory store (data is lost on exit)");
        Arc::new(MemoryStore::new())
    };
    let billing = match or_exit(local.billing()) {
        Some(billing) => {
            println!(
                "billing: Stripe at {}",
                billing
                    .config
                    .api_base
                    .as_deref()
                    .unwrap_or("api.stripe.com")
            );
            Some(billing)
        }
        None => {
            println!(
                "billing: not configured (set STRIPE_SECRET_KEY, STRIPE_PRICE_ID, PLAN_CREDITS)"
            );
            None
        }
    };
    let login = match or_exit(local.login()) {
        Some(login) => {
            println!("erasure: deletes the login at the auth service (SUPABASE_URL)");
            Some(login)
        }
        None => {
            println!(
                "erasure: leaves the login at the auth service (set SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY to delete it)"
            );
            None
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {addr}: {err}");
            std::process::exit(1);
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    println!("listening on http://{bound}");
    if let Some(token) = local.demo_token(&config) {
        println!(
            "try it:\ncurl -s -H 'Authorization: Bearer {token}' http://{bound}/v1/user/status"
        );
    }
    let mut app = App::new(config, store, billing);
    if let Some(login) = login {
        app = app.with_login(login);
    }
    server::serve(listener, Arc::new(app)).await;
}

/// The value, or one log line naming the bad variable and exit code 1.
fn or_exit<T>(result: Result<T, ConfigError>) -> T {
    result.unwrap_or_else(|err| {
        tracing::error!(variable = err.variable, "{err}; refusing to start");
        std::process::exit(1);
    })
}

fn parse_addr(mut args: impl Iterator<Item = String>) -> Result<SocketAddr, String> {
    let usage = format!("usage: local-api [--addr HOST:PORT]   (default {DEFAULT_ADDR})");
    let addr = match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => DEFAULT_ADDR.to_owned(),
        (Some("--addr"), Some(addr), None) => addr,
        _ => return Err(usage),
    };
    addr.parse().map_err(|_| usage)
}
