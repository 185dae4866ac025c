//! The workspace's binaries, built by `cargo build --workspace --bins` (the test command does),
//! or the artifacts `sam build` made (`LAMBDA_BINARIES_DIR`, set by `./scripts/package`).

use std::path::PathBuf;

/// Path of the workspace binary `name`: in `LAMBDA_BINARIES_DIR` when it is set (where
/// `./scripts/package` links each function's built `bootstrap` under its binary's name), else
/// next to the test executable's profile directory.
pub fn path(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("LAMBDA_BINARIES_DIR") {
        let bin = PathBuf::from(dir).join(name);
        assert!(bin.exists(), "{} is missing", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (./scripts/test does)",
        bin.display()
    );
    bin
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The environment of a function on the emulator's table, with the sample events' JWT settings.
/// Its `AWS_ACCESS_KEY_ID` stands for the function's role: [`lambda_at`] makes it the function's
/// own, so that the IAM proxy applies the function's policy.
pub fn lambda_env() -> Vec<(&'static str, String)> {
    let storage = crate::emulator::storage_config();
    vec![
        ("TABLE_NAME", storage.table_name),
        ("AWS_REGION", crate::emulator::REGION.to_owned()),
        (
            "DYNAMODB_ENDPOINT",
            storage.endpoint.expect("emulator endpoint"),
        ),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("JWT_HS256_SECRET", crate::tokens::EVENTS_SECRET.to_owned()),
        ("JWT_ISSUER", crate::tokens::EVENTS_ISSUER.to_owned()),
        (
            "DYNAMODB_TIMEOUT_MS",
            crate::emulator::EMULATOR_TIMEOUT_MS.to_string(),
        ),
    ]
}

/// The Stripe environment of a billing function talking to the stub at `stub_uri`.
pub fn stripe_env(stub_uri: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "STRIPE_SECRET_KEY",
            crate::stripe_stub::SECRET_KEY.to_owned(),
        ),
        ("STRIPE_PRICE_ID", crate::stripe_stub::PRICE.to_owned()),
        ("PLAN_CREDITS", "1000".to_owned()),
        ("CREDIT_PACKS", crate::stripe_stub::credit_packs()),
        ("STRIPE_API_BASE", stub_uri.to_owned()),
        (
            "STRIPE_WEBHOOK_SECRET",
            crate::stripe_stub::WEBHOOK_SECRET.to_owned(),
        ),
    ]
}

/// The login-deletion environment of the delete-account function, with the auth service's
/// admin API at the stand-in `auth_uri`.
pub fn login_env(auth_uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SUPABASE_URL", auth_uri.to_owned()),
        (
            "SUPABASE_SERVICE_ROLE_KEY",
            crate::auth_admin_stub::SERVICE_ROLE_KEY.to_owned(),
        ),
    ]
}

/// The environment of a local API on the emulator's table, with the sample events' JWT settings
/// and Stripe at the stub `stub_uri`.
pub fn local_api_env(stub_uri: &str) -> Vec<(&'static str, String)> {
    let storage = crate::emulator::storage_config();
    let mut env = stripe_env(stub_uri);
    env.extend([
        ("DYNAMODB_ENDPOINT", storage.endpoint.unwrap_or_default()),
        ("TABLE_NAME", storage.table_name),
        ("AWS_REGION", crate::emulator::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("JWT_HS256_SECRET", crate::tokens::EVENTS_SECRET.to_owned()),
        ("JWT_ISSUER", crate::tokens::EVENTS_ISSUER.to_owned()),
        (
            "DYNAMODB_TIMEOUT_MS",
            crate::emulator::EMULATOR_TIMEOUT_MS.to_string(),
        ),
        ("RUST_LOG", "warn".to_owned()),
        // The suite loops over one user's billing requests; the limit's own test sets its own.
        ("STRIPE_CALLS_PER_USER", "10000".to_owned()),
    ]);
    env
}

/// `env` as owned strings.
fn as_strings<I, K, V>(env: I) -> Vec<(String, String)>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
    env.into_iter()
        .map(|(key, value)| (text(key.as_ref()), text(value.as_ref())))
        .collect()
}

/// A command starting the Lambda binary `name` against the Runtime API at `runtime_api`, with
/// the environment Lambda provides plus `env`, the suite's secrets in it named by id (read from
/// the emulator's Secrets Manager at init, as deployed). Its stdout and stderr are piped.
pub fn lambda<I, K, V>(name: &str, runtime_api: &str, env: I) -> tokio::process::Command
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let env = as_strings(env);
    // The suite's secrets by id, read from Secrets Manager (the emulator's) at cold start.
    let env = match std::env::var("TEST_DYNAMODB_ENDPOINT") {
        Ok(endpoint) => crate::suite_secrets::by_id(env, &endpoint),
        Err(_) => env,
    };
    lambda_at(&path(name), runtime_api, env)
}

/// [`lambda`] for the binary at `binary` (e.g. a release build), its `env` as given: secrets
/// by value unless the caller names them by id ([`crate::suite_secrets::by_id`]).
pub fn lambda_at<I, K, V>(
    binary: &std::path::Path,
    runtime_api: &str,
    env: I,
) -> tokio::process::Command
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function");
    let env = as_strings(env);
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream")
        .envs(env.into_iter().map(|(key, value)| {
            // The role's credentials: the function's own name, which the IAM proxy knows.
            let own_role = key == "AWS_ACCESS_KEY_ID" && value == "test";
            let value = if own_role { name.to_owned() } else { value };
            (key, value)
        }))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Reads a sample event from `events/`.
pub fn event(file: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("sample events are JSON")
}

/// Stops `child` and returns everything it printed (stdout, then stderr).
pub async fn output_of(mut child: tokio::process::Child) -> String {
    use tokio::io::AsyncReadExt;
    let _ = child.start_kill();
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out).await;
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut out).await;
    }
    out
}

/// A running local API.
pub struct LocalApi {
    /// The process, killed on drop.
    pub child: tokio::process::Child,
    /// Its base URL.
    pub base: String,
    /// What it printed before serving, up to the curl line if one was printed.
    pub banner: Vec<String>,
}

impl LocalApi {
    /// The printed `curl -s -H 'Authorization: Bearer T' URL` line, if any.
    pub fn curl(&self) -> Option<&str> {
        self.banner
            .iter()
            .find(|l| l.starts_with("curl "))
            .map(String::as_str)
    }

    /// The banner line starting with `prefix`, if any.
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.banner
            .iter()
            .find(|l| l.starts_with(prefix))
            .map(String::as_str)
    }
}

/// Starts the local API (`local-api --addr 127.0.0.1:<free port>`) with exactly `env`.
pub async fn start_local_api(env: &[(&str, &str)]) -> LocalApi {
    start_local_api_with(&[], env).await
}

/// [`start_local_api`] with more arguments, `args`.
pub async fn start_local_api_with(args: &[&str], env: &[(&str, &str)]) -> LocalApi {
    let port = free_port();
    let mut child = tokio::process::Command::new(path("local-api"))
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start local-api");
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    // A curl line is printed only when tokens are minted: no JWT settings, nothing real behind.
    let real = [
        "JWT_",
        "DYNAMODB_ENDPOINT",
        "TABLE_NAME",
        "STRIPE_SECRET_KEY",
        "SUPABASE_URL",
    ];
    let no_curl = env
        .iter()
        .any(|(k, _)| real.iter().any(|r| k.starts_with(r)));
    let read_banner = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let last = line.starts_with("curl ") || (line.starts_with("listening on") && no_curl);
            banner.push(line);
            if last {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read_banner)
        .await
        .expect("local-api started");
    // Keep draining its output, so its logs never hit a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    LocalApi {
        child,
        base: format!("http://127.0.0.1:{port}"),
        banner,
    }
}

/// The sample webhook event `file` of `events/`, re-signed for now with the test signing secret
/// (a signature is only valid for 300 s), on its raw body (base64-decoded if so encoded).
pub fn resigned_webhook_event(file: &str) -> serde_json::Value {
    use base64::Engine;
    let mut sample = event(file);
    let body = sample["body"]
        .as_str()
        .expect("a webhook sample has a body");
    let raw = if sample["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64 body")
    } else {
        body.as_bytes().to_vec()
    };
    let secret = crate::stripe_stub::WEBHOOK_SECRET;
    let signature = common::webhook::signature::sign(&raw, secret, common::unix_now());
    sample["headers"]["stripe-signature"] = signature.into();
    sample
}

/// The sample event `file` of `events/`, sent by `user` with a fresh valid token.
pub fn event_as(file: &str, user: &str) -> serde_json::Value {
    use crate::tokens::{EVENTS_ISSUER, EVENTS_SECRET, claims, hs256};
    let mut sample = event(file);
    let token = hs256(&claims(user, EVENTS_ISSUER), EVENTS_SECRET);
    sample["headers"]["authorization"] = format!("Bearer {token}").into();
    sample
}

/// The environment of a billing function: [`lambda_env`] plus [`stripe_env`] for the stub.
pub fn billing_lambda_env(stub_uri: &str) -> Vec<(&'static str, String)> {
    lambda_env()
        .into_iter()
        .chain(stripe_env(stub_uri))
        .collect()
}

/// Starts the Lambda binary `name` with `env` against a fresh Runtime API, waits (up to 20 s)
/// for it to exit, asserts that it failed, and returns everything it printed.
pub async fn failed_init_output(name: &str, env: Vec<(&'static str, String)>) -> String {
    let api = crate::runtime_api::RuntimeApi::start().await;
    let mut child = lambda(name, api.address(), env)
        .spawn()
        .expect("start the function");
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("the function exits")
        .expect("exit status");
    assert!(
        !status.success(),
        "{name} started with a broken configuration"
    );
    output_of(child).await
}
