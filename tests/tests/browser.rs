//! Billing flows in a real browser: headless Chromium (Debian's `chromium`), driven by
//! playwright-core (`tests/browser/*.cjs`; both installed by `scripts/tools.sh`), against the
//! local-api binary on its Stripe sandbox, with the public API asked after each step.
//! Screenshots go to `target/reports/browser/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use integration_tests::binaries::start_local_api;

/// Upper bound of one browser run (it takes a few seconds).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `tests/browser/<script>` with `args` and the screenshot directory last, fails the test
/// when it fails, and returns the screenshot directory.
async fn run_flow(script: &str, args: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let modules = root.join(".venv/node/node_modules");
    assert!(
        modules.join("playwright-core").exists(),
        "playwright-core is missing from {}: run ./scripts/tools.sh (./scripts/test does)",
        modules.display()
    );
    let shots = root.join("target/reports/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .args(args)
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
        "{script} failed:\n{stdout}\n{stderr}"
    );
    shots
}

/// Pay on the checkout page, three messages, renew, a failed message refunded, the credit
/// history, and cancel now on the portal.
#[tokio::test]
async fn checkout_renew_and_cancel_in_chromium() {
    let api = start_local_api(&[("PLAN_CREDITS", "50")]).await;
    let shots = run_flow("billing_flow.cjs", &[api.base.as_str(), "50"]).await;
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

/// The catalogue, checkout of a chosen plan, messages at two prices, then an upgrade, switches
/// back and forth, and a renewal on the portal.
#[tokio::test]
async fn plans_upgrade_and_switch_back_in_chromium() {
    let api = start_local_api(&[
        ("PLANS", "plus:price_plus:50,pro:price_pro:200"),
        ("MESSAGE_PRICES", "default:1,large:5"),
    ])
    .await;
    let shots = run_flow("plans_flow.cjs", &[api.base.as_str(), "50", "200", "5"]).await;
    for shot in [
        "plans-1-checkout",
        "plans-2-portal",
        "plans-3-upgraded",
        "plans-4-renewed",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
}

/// Credit packs for a free user: the catalogue's packs, one paid by card, a free message before
/// them, one paid by bank debit and settled on the sandbox's deliveries page, the history.
#[tokio::test]
async fn packs_by_card_and_bank_debit_in_chromium() {
    let api = start_local_api(&[
        ("CREDIT_PACKS", "small:price_small:40,large:price_large:300"),
        ("MESSAGE_PRICES", "large:10"),
    ])
    .await;
    let shots = run_flow("packs_flow.cjs", &[api.base.as_str(), "40", "300"]).await;
    for shot in [
        "packs-1-checkout",
        "packs-2-processing",
        "packs-3-history",
        "packs-4-refunded",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
}
