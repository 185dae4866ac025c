//! `cargo run -p local-api [-- --addr 127.0.0.1:8080]`: every endpoint at its real path, through
//! the same handler code as the Lambdas, on the embedded store unless DynamoDB is configured,
//! billing on the embedded Stripe sandbox unless `STRIPE_SECRET_KEY` is set.

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
    let listener = bind(addr).await;
    let bound = listener.local_addr().unwrap_or(addr);
    let billing = if local.uses_stripe() {
        let billing = or_exit(local.stripe());
        let base = billing
            .config
            .api_base
            .as_deref()
            .unwrap_or("api.stripe.com");
        println!("billing: Stripe at {base}");
        if billing.config.webhook_secret.is_none() {
            println!(
                "  webhooks: run `stripe listen --forward-to {bound}/webhooks/stripe` and set STRIPE_WEBHOOK_SECRET to the whsec_ it prints"
            );
        }
        billing
    } else {
        let listener = bind(SocketAddr::new(bound.ip(), 0)).await;
        let (sandbox, billing) = or_exit(local.sandbox(listener, bound));
        println!(
            "billing: Stripe sandbox at {} (no account needed; webhook deliveries listed there; set STRIPE_SECRET_KEY for Stripe's test mode)",
            sandbox.url()
        );
        billing
    };
    println!("listening on http://{bound}");
    let tokens = local.tokens(&config);
    if let Some(tokens) = &tokens {
        println!(
            "try it:\ncurl -s -H 'Authorization: Bearer {}' http://{bound}/v1/user/status",
            tokens.mint(dev::DEMO_USER)
        );
        println!("a token for any user: curl -s 'http://{bound}/local/token?user_id=<uuid>'");
    }
    let mut app = App::new(config, store, Some(billing));
    if let Some(login) = login {
        app = app.with_login(login);
    }
    server::serve(listener, Arc::new(server::Served { app, tokens })).await;
}

/// A listener on `addr`, or one line naming the address and exit code 1.
async fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {addr}: {err}");
            std::process::exit(1);
        }
    }
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
