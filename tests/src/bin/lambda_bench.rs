//! `lambda-bench`: cold start, latency and memory of every function, each run as a Lambda against
//! the Runtime API emulator with Stripe as the loopback stub, beside its floor: the same handler
//! on the embedded store (`embedded-lambda FUNCTION`), in the same run, the two alternating run
//! by run so both see the same machine. The function binaries store in the DynamoDB emulator
//! (`TEST_DYNAMODB_ENDPOINT`). Prints markdown: the goals, met or missed, then the figures.
//! Run it through `./scripts/bench`.
//!
//! Usage: lambda-bench FUNCTION_DIR BENCH_DIR [RUNS] [WARM_INVOCATIONS]
//! (`FUNCTION_DIR` holds the function binaries, built as SAM builds them; `BENCH_DIR` holds
//! `embedded-lambda`; `FUNCTIONS=a,b` measures only those.)

use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::auth_admin_stub::AuthAdminStub;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::stripe_stub::StripeStub;
use integration_tests::tokens;
use integration_tests::{binaries, emulator};
use serde_json::Value;

/// One function and the event it is measured with.
const FUNCTIONS: &[(&str, &str)] = &[
    ("user-status", "user-status.json"),
    ("credit-history", "credit-history.json"),
    ("user-export", "user-export.json"),
    ("billing-plans", "billing-plans.json"),
    ("sync-subscription", "sync-subscription.json"),
    ("create-checkout-session", "create-checkout-session.json"),
    ("create-portal-session", "create-portal-session.json"),
    ("delete-account", "delete-account.json"),
    ("stripe-webhook", "stripe-webhook.json"),
    ("reconcile", "reconcile.json"),
];

/// Goal: init at most this many times its floor.
const INIT_GOAL_RATIO: f64 = 1.5;
/// Goal: peak RSS of every function, MiB.
const RSS_GOAL_MIB: f64 = 10.0;
/// "No growth": the resident set may move by this much over the second half of the warm
/// invocations (page-granular noise; a leak of even 100 bytes per invocation exceeds it over
/// 1,000 invocations).
const RSS_GROWTH_TOLERANCE_KIB: i64 = 64;
/// Goal: the stripped binaries of the functions that need no Stripe, MiB.
const NO_STRIPE_GOAL_MIB: f64 = 6.0;
/// The functions that need no Stripe.
const NO_STRIPE: [&str; 3] = ["user-status", "credit-history", "user-export"];

const TIMEOUT: Duration = Duration::from_secs(30);

/// What one run of one binary measured.
struct Run {
    init: Duration,
    first: Duration,
    warm: Vec<Duration>,
    peak_rss_kib: u64,
    /// Resident set after half the warm invocations, and after all of them.
    rss_mid_kib: u64,
    rss_end_kib: u64,
}

fn event_for(file: &str) -> Value {
    match file {
        "reconcile.json" => binaries::event(file),
        "stripe-webhook.json" => binaries::resigned_webhook_event(file),
        _ => binaries::event_as(file, &tokens::new_user()),
    }
}

/// Panics unless the function answered: an HTTP function with an API Gateway response
/// document, reconciliation with its report.
fn check(file: &str, outcome: Outcome) {
    match outcome {
        Outcome::Response(_) if file == "reconcile.json" => {}
        outcome => {
            outcome.http();
        }
    }
}

/// A `/proc/PID/status` field in KiB (`VmHWM`, `VmRSS`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `command` as a Lambda once: init, first invocation, `warm` more.
async fn run_once(
    mut command: tokio::process::Command,
    api: &RuntimeApi,
    file: &str,
    warm: usize,
) -> Run {
    // Logs go where Lambda would send them, but are not read here.
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let spawned = Instant::now();
    let child = command.spawn().expect("start the function");
    let pid = child.id().unwrap_or_default();
    let ready = api
        .first_poll(TIMEOUT)
        .await
        .expect("the function asked for work");
    let init = ready - spawned;

    let event = event_for(file);
    let started = Instant::now();
    check(file, api.invoke(event.clone(), TIMEOUT).await);
    let first = started.elapsed();

    let mut latencies = Vec::with_capacity(warm);
    let mut rss_mid_kib = 0;
    for i in 0..warm {
        if i == warm / 2 {
            rss_mid_kib = status_kib(pid, "VmRSS");
        }
        let started = Instant::now();
        check(file, api.invoke(event.clone(), TIMEOUT).await);
        latencies.push(started.elapsed());
    }
    let (peak_rss_kib, rss_end_kib) = (status_kib(pid, "VmHWM"), status_kib(pid, "VmRSS"));
    drop(child);
    Run {
        init,
        first,
        warm: latencies,
        peak_rss_kib,
        rss_mid_kib,
        rss_end_kib,
    }
}

/// The runs of one binary, summarised.
struct Summary {
    init: Duration,
    first: Duration,
    warm_p50: Duration,
    warm_p99: Duration,
    peak_rss_mib: f64,
    /// The largest growth of the resident set over the second half of the warm invocations.
    growth_kib: i64,
}

impl Summary {
    fn of(runs: &[Run]) -> Summary {
        let median = |mut values: Vec<Duration>| {
            values.sort();
            percentile(&values, 0.5)
        };
        let mut warm: Vec<Duration> = runs.iter().flat_map(|r| r.warm.iter().copied()).collect();
        warm.sort();
        Summary {
            init: median(runs.iter().map(|r| r.init).collect()),
            first: median(runs.iter().map(|r| r.first).collect()),
            warm_p50: percentile(&warm, 0.5),
            warm_p99: percentile(&warm, 0.99),
            peak_rss_mib: runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            growth_kib: runs
                .iter()
                .map(|r| r.rss_end_kib as i64 - r.rss_mid_kib as i64)
                .max()
                .unwrap_or(0),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**missed**" }
}

fn size_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1024.0 / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: lambda-bench FUNCTION_DIR BENCH_DIR [RUNS] [WARM]";
    let functions_dir = std::path::PathBuf::from(args.get(1).expect(usage));
    let bench_dir = std::path::PathBuf::from(args.get(2).expect(usage));
    let runs: usize = args.get(3).map_or(5, |v| v.parse().expect("RUNS"));
    let warm: usize = args.get(4).map_or(1000, |v| v.parse().expect("WARM"));
    let only = std::env::var("FUNCTIONS").ok();
    let selected: Vec<(&str, &str)> = FUNCTIONS
        .iter()
        .copied()
        .filter(|(name, _)| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == *name))
        })
        .collect();
    emulator::set_dummy_credentials();
    // Each function reads its secrets from Secrets Manager at init, as deployed: measured too.
    let endpoint = std::env::var("TEST_DYNAMODB_ENDPOINT").expect("TEST_DYNAMODB_ENDPOINT");
    integration_tests::suite_secrets::seed(&reqwest::Client::new(), &endpoint).await;
    let stub = StripeStub::executing_for(Duration::ZERO).await;
    let auth = AuthAdminStub::start().await;
    let mut env = binaries::billing_lambda_env(&stub.uri());
    env.extend(binaries::login_env(&auth.uri()));
    // The function and its floor read their secrets by id, as deployed: the fetch is work both
    // must do. What it costs shows beside them: the function's init with the values given in its
    // environment (as the local API runs), in the same run.
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let deployed = integration_tests::suite_secrets::by_id(env.clone(), &endpoint);

    let mut measured = Vec::new();
    for (name, file) in &selected {
        let (mut function, mut floor, mut given) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let api = RuntimeApi::start().await;
            let command =
                binaries::lambda_at(&functions_dir.join(name), api.address(), deployed.clone());
            function.push(run_once(command, &api, file, warm).await);
            let api = RuntimeApi::start().await;
            let embedded = bench_dir.join("embedded-lambda");
            let mut command = binaries::lambda_at(&embedded, api.address(), deployed.clone());
            command.arg(name);
            floor.push(run_once(command, &api, file, warm).await);
            let api = RuntimeApi::start().await;
            let command =
                binaries::lambda_at(&functions_dir.join(name), api.address(), env.clone());
            given.push(run_once(command, &api, file, 0).await.init);
        }
        let size = size_mib(&functions_dir.join(name));
        given.sort();
        let fetch =
            Summary::of(&function).init.as_secs_f64() - percentile(&given, 0.5).as_secs_f64();
        let (function, floor) = (Summary::of(&function), Summary::of(&floor));
        measured.push((*name, size, function, floor, fetch));
    }

    let worst_init = measured
        .iter()
        .map(|(name, _, f, e, _)| (ratio(f.init, e.init), *name))
        .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
    let worst_rss = measured
        .iter()
        .map(|(name, _, f, ..)| (f.peak_rss_mib, *name))
        .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
    let growth = measured
        .iter()
        .map(|(_, _, f, ..)| f.growth_kib)
        .max()
        .unwrap_or(0);
    println!("| goal | figure | |");
    println!("|---|---|---|");
    println!(
        "| init ≤ {INIT_GOAL_RATIO}× its floor, every function (both read their secrets from Secrets Manager) | worst {:.2}× ({}) | {} |",
        worst_init.0,
        worst_init.1,
        verdict(worst_init.0 <= INIT_GOAL_RATIO)
    );
    let worst_fetch = measured
        .iter()
        .map(|(name, .., fetch)| (*fetch, *name))
        .fold((f64::MIN, ""), |a, b| if b.0 > a.0 { b } else { a });
    println!(
        "| the secrets in one Secrets Manager call per cold start (the suite counts it) | what it costs at init: worst {:.2} ms ({}) | measured |",
        worst_fetch.0 * 1000.0,
        worst_fetch.1,
    );
    println!(
        "| peak RSS ≤ {RSS_GOAL_MIB} MiB, every function, no growth over the warm runs | worst {:.1} MiB ({}); largest growth over the second half of {warm} invocations {growth} KiB (tolerance {RSS_GROWTH_TOLERANCE_KIB}) | {} |",
        worst_rss.0,
        worst_rss.1,
        verdict(worst_rss.0 <= RSS_GOAL_MIB && growth <= RSS_GROWTH_TOLERANCE_KIB)
    );
    for (name, size, ..) in measured
        .iter()
        .filter(|(name, ..)| NO_STRIPE.contains(name))
    {
        println!(
            "| {name} stripped ≤ {NO_STRIPE_GOAL_MIB} MiB | {size:.2} MiB | {} |",
            verdict(*size <= NO_STRIPE_GOAL_MIB)
        );
    }
    println!();
    println!(
        "| function | stripped MiB | init ms | floor init ms | **init ÷ floor** | secrets read ms | first invocation ms | floor first ms | first ÷ floor | warm p50 / p99 µs | floor warm p50 / p99 µs | peak RSS MiB | floor RSS MiB | RSS growth KiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, size, f, e, fetch) in &measured {
        println!(
            "| {name} | {size:.2} | {} | {} | **{:.2}** | {:.2} | {} | {} | {:.2} | {} / {} | {} / {} | {:.1} | {:.1} | {} |",
            ms(f.init),
            ms(e.init),
            ratio(f.init, e.init),
            fetch * 1000.0,
            ms(f.first),
            ms(e.first),
            ratio(f.first, e.first),
            us(f.warm_p50),
            us(f.warm_p99),
            us(e.warm_p50),
            us(e.warm_p99),
            f.peak_rss_mib,
            e.peak_rss_mib,
            f.growth_kib,
        );
    }
}
