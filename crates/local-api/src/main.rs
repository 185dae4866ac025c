//! `cargo run -p local-api [-- --addr 127.0.0.1:8080]`: every endpoint at its real path, through
//! the same handler code as the Lambdas, on the embedded store unless DynamoDB is configured,
//! billing on the embedded Stripe sandbox unless `STRIPE_SECRET_KEY` is set.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use common::App;
use common::config::ConfigError;
use common::store::{DynamoStore, MemoryStore, Store};
use local_api::{dev, server};

/// Serves every endpoint locally, through the Lambdas' own handlers: on the embedded store
/// unless DYNAMODB_ENDPOINT and TABLE_NAME are set, billing on the embedded Stripe sandbox
/// unless STRIPE_SECRET_KEY (test mode) is set. Settings as in the README, "Configuration".
#[derive(Debug, Parser)]
#[command(name = "local-api", version)]
struct Args {
    /// Where to listen (`0.0.0.0:8080` for other devices on the network).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The host a phone or an emulator reaches this machine by (`192.168.1.20`; `10.0.2.2` from
    /// the Android emulator): the sandbox's checkout and portal pages are handed out under it
    /// instead of the address listened on (listen on `0.0.0.0` too).
    #[arg(long)]
    public_host: Option<String>,
    /// The sandbox's port (default: any free one), to open it on a device as a fixed address.
    #[arg(long, default_value_t = 0)]
    sandbox_port: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    common::telemetry::init();
    let args = Args::parse();
    let addr = args.addr;
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
        let listener = bind(SocketAddr::new(bound.ip(), args.sandbox_port)).await;
        let public_host = args.public_host.as_deref();
        let (sandbox, billing) = or_exit(local.sandbox(listener, bound, public_host));
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
    let cors = local_api::cors::Cors::new(std::env::var("ALLOWED_ORIGINS").ok().as_deref());
    server::serve(listener, Arc::new(server::Served { app, tokens, cors })).await;
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
