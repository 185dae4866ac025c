//! `lambda-bench`: cold start, latency and memory of every function, each run as a Lambda against
//! the Runtime API emulator with Stripe as the loopback stub, storing either in the DynamoDB
//! emulator (`TEST_DYNAMODB_ENDPOINT`; the function binaries themselves, the end-to-end view) or
//! on the embedded store (`embedded-lambda FUNCTION`; the handler's and the runtime's own cost).
//! Prints a markdown table. Run it through `./scripts/bench`.
//!
//! Usage: lambda-bench BIN_DIR [RUNS] [WARM_INVOCATIONS] [dynamodb|embedded]

use std::time::{Duration, Instant};

use integration_tests::auth_admin_stub::AuthAdminStub;
use integration_tests::runtime_api::RuntimeApi;
use integration_tests::stripe_stub::StripeStub;
use integration_tests::tokens;
use integration_tests::{binaries, emulator};
use serde_json::Value;

/// One function and the event it is measured with.
const FUNCTIONS: &[(&str, &str)] = &[
    ("user-status", "user-status.json"),
    ("sync-subscription", "sync-subscription.json"),
    ("create-checkout-session", "create-checkout-session.json"),
    ("create-portal-session", "create-portal-session.json"),
    ("delete-account", "delete-account.json"),
    ("stripe-webhook", "stripe-webhook.json"),
];

const TIMEOUT: Duration = Duration::from_secs(30);

/// What one run of one function measured.
struct Run {
    init: Duration,
    first: Duration,
    warm: Vec<Duration>,
    peak_rss_kib: u64,
}

fn event_for(file: &str) -> Value {
    if file.starts_with("stripe-webhook") {
        binaries::resigned_webhook_event(file)
    } else {
        binaries::event_as(file, &tokens::new_user())
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Where the measured functions keep their records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// The function binaries, on the DynamoDB emulator.
    DynamoDb,
    /// `embedded-lambda FUNCTION`, on the embedded store.
    Embedded,
}

async fn run_once(
    bin_dir: &std::path::Path,
    name: &str,
    file: &str,
    env: &[(&'static str, String)],
    warm: usize,
    storage: Storage,
) -> Run {
    let api = RuntimeApi::start().await;
    let env = env.to_vec();
    let mut command = match storage {
        Storage::DynamoDb => binaries::lambda_at(&bin_dir.join(name), api.address(), env),
        Storage::Embedded => {
            let mut command =
                binaries::lambda_at(&bin_dir.join("embedded-lambda"), api.address(), env);
            command.arg(name);
            command
        }
    };
    // Logs go where Lambda would send them, but are not read here.
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let spawned = Instant::now();
    let child = command.spawn().expect("start the function");
    let ready = api
        .first_poll(TIMEOUT)
        .await
        .expect("the function asked for work");
    let init = ready - spawned;

    let event = event_for(file);
    let started = Instant::now();
    api.invoke(event.clone(), TIMEOUT).await.http();
    let first = started.elapsed();

    let mut latencies = Vec::with_capacity(warm);
    for _ in 0..warm {
        let started = Instant::now();
        api.invoke(event.clone(), TIMEOUT).await.http();
        latencies.push(started.elapsed());
    }
    let peak_rss_kib = peak_rss_kib(child.id().unwrap_or_default());
    drop(child);
    Run {
        init,
        first,
        warm: latencies,
        peak_rss_kib,
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin_dir = std::path::PathBuf::from(
        args.get(1)
            .expect("usage: lambda-bench BIN_DIR [RUNS] [WARM]"),
    );
    let runs: usize = args.get(2).map_or(5, |v| v.parse().expect("RUNS"));
    let warm: usize = args.get(3).map_or(1000, |v| v.parse().expect("WARM"));
    let storage = match args.get(4).map_or("dynamodb", String::as_str) {
        "dynamodb" => Storage::DynamoDb,
        "embedded" => Storage::Embedded,
        other => panic!("storage is dynamodb or embedded, not {other}"),
    };
    emulator::set_dummy_credentials();
    let (stub, auth) = (StripeStub::start().await, AuthAdminStub::start().await);
    let mut env = binaries::billing_lambda_env(&stub.uri());
    env.extend(binaries::login_env(&auth.uri()));

    println!(
        "| function | stripped size (KiB) | init ms, median (min–max) | first invocation ms, median (min–max) | warm p50 µs | warm p99 µs | peak RSS MiB, max | RSS after 1st vs last run |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, file) in FUNCTIONS {
        let size = match storage {
            Storage::DynamoDb => std::fs::metadata(bin_dir.join(name))
                .map_or_else(|_| "?".to_owned(), |m| (m.len() / 1024).to_string()),
            Storage::Embedded => "(bench binary)".to_owned(),
        };
        let mut results = Vec::new();
        for _ in 0..runs {
            results.push(run_once(&bin_dir, name, file, &env, warm, storage).await);
        }
        let mut inits: Vec<Duration> = results.iter().map(|r| r.init).collect();
        let mut firsts: Vec<Duration> = results.iter().map(|r| r.first).collect();
        let mut warms: Vec<Duration> = results
            .iter()
            .flat_map(|r| r.warm.iter().copied())
            .collect();
        inits.sort();
        firsts.sort();
        warms.sort();
        let rss: Vec<u64> = results.iter().map(|r| r.peak_rss_kib).collect();
        println!(
            "| {name} | {size} | {} ({}–{}) | {} ({}–{}) | {} | {} | {:.1} | {} / {} KiB |",
            ms(percentile(&inits, 0.5)),
            ms(inits[0]),
            ms(*inits.last().unwrap()),
            ms(percentile(&firsts, 0.5)),
            ms(firsts[0]),
            ms(*firsts.last().unwrap()),
            us(percentile(&warms, 0.5)),
            us(percentile(&warms, 0.99)),
            *rss.iter().max().unwrap() as f64 / 1024.0,
            rss[0],
            rss[rss.len() - 1],
        );
    }
}
