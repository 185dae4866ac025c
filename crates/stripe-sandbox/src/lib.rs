//! A Stripe sandbox on loopback, for trying the whole billing flow without a Stripe account.
//!
//! - [`api`]: the part of Stripe's API this service calls, with state, as plain requests and
//!   answers (also served by the test suite's stub);
//! - [`objects`] and [`fixtures`]: every object built from Stripe's own fixtures;
//! - [`idempotency`]: idempotent requests as Stripe runs them (409 for a twin in flight);
//! - [`webhooks`]: signed deliveries, retried with back-off, logged;
//! - [`pages`] and the server: Checkout (Pay, Cancel), the portal (cancel at period end,
//!   cancel now, renew), the deliveries log at `/`.
//!
//! The real `async-stripe` client reaches it through `STRIPE_API_BASE`, so production's code
//! paths run unchanged.

pub mod api;
pub mod fixtures;
pub mod idempotency;
pub mod objects;
pub mod pages;
mod server;
pub mod webhooks;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use api::{Pack, Plan, Stripe};
pub use webhooks::{Delivery, Endpoint};

/// The Stripe API version the objects follow (that of `async-stripe` 1.0.0-rc.10).
pub const API_VERSION: &str = "2026-09-30";

/// How long each request under an idempotency key executes at the sandbox.
const EXECUTION_TIME: Duration = Duration::from_millis(20);

/// The real time, Unix seconds (the account's clock adds its renewals to it).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A running sandbox.
pub struct Sandbox {
    url: String,
    shared: Arc<server::Shared>,
}

impl Sandbox {
    /// Serves a sandbox selling `plans` and `packs` on `listener`, delivering events to
    /// `endpoint`; its pages are handed out under `public` (e.g. `http://192.168.1.20:8090`, for
    /// a phone), else under the listener's own address.
    pub fn start(
        listener: tokio::net::TcpListener,
        public: Option<String>,
        plans: Vec<Plan>,
        packs: Vec<Pack>,
        endpoint: Endpoint,
    ) -> Sandbox {
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let url = public.unwrap_or_else(|| format!("http://{address}"));
        let shared = Arc::new(server::Shared {
            stripe: Mutex::new(Stripe::new(plans, &url, EXECUTION_TIME).with_packs(packs)),
            webhook_url: endpoint.url.clone(),
            webhooks: webhooks::Webhooks::new(endpoint),
        });
        let router = server::router(Arc::clone(&shared));
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!(error = %err, "the Stripe sandbox stopped");
            }
        });
        Sandbox { url, shared }
    }

    /// The base URL its pages are handed out under, and the deliveries page.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every webhook delivery so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.webhooks.log()
    }
}
