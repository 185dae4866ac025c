//! Logs: one JSON object per line on stdout (CloudWatch-friendly; a tool's on stderr), at the level `RUST_LOG` names
//! (`error`, `warn`, `info`, `debug` or `trace`; default `info`). Lines written while serving a
//! request carry its `span` (route, request id, user-id hash); each request ends with one access
//! line (status, latency). Never log tokens, secrets or raw user ids: log
//! [`crate::domain::UserId::hash`].
//!
//! A plain level, not `EnvFilter`'s per-module directives: the directive parser links the regex
//! engine into every binary (~230 KiB, `docs/performance-decisions.md`) for a feature the
//! functions do not need.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::prelude::*;

/// Installs the JSON log subscriber. Call once, first thing in `main`.
pub fn init() {
    let level = level(std::env::var("RUST_LOG").ok().as_deref(), LevelFilter::INFO);
    install(level, std::io::stdout);
}

/// [`init`] for a command-line tool, whose stdout is its output: the lines go to stderr, at
/// `RUST_LOG` or else `warn`.
pub fn init_on_stderr() {
    let level = level(std::env::var("RUST_LOG").ok().as_deref(), LevelFilter::WARN);
    install(level, std::io::stderr);
}

fn install<W>(level: LevelFilter, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let lines = tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_writer(writer)
        .with_filter(level)
        .with_filter(filter_fn(never_a_raw_event));
    tracing_subscriber::registry().with(lines).init();
}

/// The libraries whose TRACE lines carry whole requests and answers: the Lambda runtime's (the
/// raw invocation event: the `Authorization` header, a webhook's body and signature), the AWS
/// SDK's (DynamoDB request and response bodies: user ids, customer ids, balances) and the HTTP
/// stack's under them.
const RAW_TRACERS: [&str; 6] = [
    "lambda_runtime",
    "aws_smithy",
    "aws_sdk",
    "aws_runtime",
    "hyper",
    "h2",
];

/// Whether a log line may be written: never a TRACE line of [`RAW_TRACERS`]. Everything else
/// follows `RUST_LOG`.
fn never_a_raw_event(metadata: &Metadata<'_>) -> bool {
    let raw = RAW_TRACERS
        .iter()
        .any(|prefix| metadata.target().starts_with(prefix));
    !(*metadata.level() == Level::TRACE && raw)
}

/// The level `RUST_LOG` names; `default` when it is unset or names none.
fn level(rust_log: Option<&str>, default: LevelFilter) -> LevelFilter {
    rust_log
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_names_the_level_and_anything_else_is_info() {
        let level = |value| level(value, LevelFilter::INFO);
        assert_eq!(level(Some("debug")), LevelFilter::DEBUG);
        assert_eq!(level(Some(" WARN ")), LevelFilter::WARN);
        assert_eq!(level(Some("off")), LevelFilter::OFF);
        assert_eq!(level(None), LevelFilter::INFO);
        assert_eq!(level(Some("common=debug")), LevelFilter::INFO);
    }
}
