//! Logs: one JSON object per line on stdout (CloudWatch-friendly), level from `RUST_LOG`
//! (default `info`). Lines written while serving a request carry its `span` (route, request id,
//! user-id hash); each request ends with one access line (status, latency). Never log tokens, secrets or raw user ids: log [`crate::users::UserId::hash`].

use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .init();
}
