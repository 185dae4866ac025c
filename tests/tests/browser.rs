//! The whole billing flow in a real browser: headless Chromium (Debian's `chromium`), driven by
//! playwright-core (`tests/browser/billing_flow.cjs`; both installed by `scripts/tools.sh`),
//! against the local-api binary on its Stripe sandbox: Pay on the checkout page, three messages,
//! renew, a failed message refunded, the credit history, and cancel now on the portal, with the
//! public API asked after each step. Screenshots go to
//! `target/reports/browser/`.

use std::path::Path;
use std::time::Duration;

use integration_tests::binaries::start_local_api;

/// Upper bound of the whole browser run (it takes a few seconds).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn checkout_renew_and_cancel_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let modules = root.join(".venv/node/node_modules");
    assert!(
        modules.join("playwright-core").exists(),
        "playwright-core is missing from {}: run ./scripts/tools.sh (./scripts/test does)",
        modules.display()
    );
    let shots = root.join("target/reports/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let api = start_local_api(&[("PLAN_CREDITS", "50")]).await;

    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/billing_flow.cjs"))
        .args([api.base.as_str(), "50"])
        .arg(&shots)
        .env("NODE_PATH", &modules)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BROWSER_TIMEOUT, run)
        .await
        .expect("the browser flow finished in time")
        .expect("node runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}"
    );
    for shot in [
        "1-checkout",
        "2-paid",
        "3-portal",
        "4-renewed",
        "5-history",
        "6-canceled",
        "7-deliveries",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
}
