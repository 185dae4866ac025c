//! Schema-driven API fuzzing: schemathesis (pinned in `scripts/requirements-test.txt`) generates
//! requests from `openapi.yaml` against the local API on the DynamoDB emulator, with Stripe on the
//! stub, and runs every check it has: no 5xx, every response (status, headers, body) as
//! documented, auth enforced, schema-valid input accepted and invalid input rejected (with the
//! allowances of `tests/schemathesis/schemathesis.toml`), and the stateful links of the spec.
//!
//! The budget is `SCHEMATHESIS_SECONDS` (default 30: about 3,000 requests here); at least 2,000 requests must be generated.
//! Its figures go to `target/reports/schemathesis.md`.

use std::path::Path;

use integration_tests::binaries::{local_api_env, start_local_api};
use integration_tests::stripe_stub::StripeStub;
use integration_tests::tokens;

const MIN_REQUESTS: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_no_5xx_and_only_documented_answers() {
    let budget = std::env::var("SCHEMATHESIS_SECONDS").unwrap_or_else(|_| "30".to_owned());
    let stub = StripeStub::start().await;
    let env = local_api_env(&stub.uri());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_api, base, _) = start_local_api(&env).await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reports = root.join("target/reports");
    std::fs::create_dir_all(&reports).unwrap();
    // Erasure ends a caller's life (everything is 410 after it), so it gets a caller of its own
    // and a tenth of the budget; everything else runs as one long-lived caller.
    let budget: u64 = budget.parse().expect("SCHEMATHESIS_SECONDS is a number");
    let runs = [
        (
            "everything but erasure",
            vec!["--exclude-operation-id", "deleteAccount"],
            budget * 9 / 10,
        ),
        ("erasure, then the erased caller", vec![], budget / 10),
    ];
    let mut report = format!("# Schemathesis ({budget} s budget)\n");
    let mut generated = 0;
    for (name, filter, seconds) in runs {
        let token = tokens::hs256(
            &tokens::claims(&tokens::new_user(), tokens::EVENTS_ISSUER),
            tokens::EVENTS_SECRET,
        );
        let output = tokio::process::Command::new(root.join(".venv/bin/schemathesis"))
            .arg("--config-file")
            .arg(root.join("tests/schemathesis/schemathesis.toml"))
            .args(["--no-color", "run"])
            .arg(root.join("openapi.yaml"))
            .args(["--url", &base])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", "all", "--max-time", &seconds.max(1).to_string()])
            .args(["--generation-database", "none", "--seed", "20261125"])
            .args(["--workers", "2", "--request-timeout", "10"])
            .args(filter)
            .current_dir(&reports)
            .output()
            .await
            .expect("run schemathesis: ./scripts/tools.sh installs it into .venv");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{name}: schemathesis found failures:\n{stdout}\n{stderr}"
        );
        // The summary's "Test cases: N generated, ..." line.
        generated += stdout
            .lines()
            .filter_map(|line| line.trim().split_once(" generated,"))
            .filter_map(|(n, _)| n.parse::<usize>().ok())
            .next_back()
            .unwrap_or(0);
        let summary: Vec<&str> = stdout
            .lines()
            .skip_while(|line| !line.contains("SUMMARY"))
            .collect();
        report.push_str(&format!(
            "\n## {name} ({seconds} s)\n\n```\n{}\n```\n",
            summary.join("\n")
        ));
    }
    std::fs::write(reports.join("schemathesis.md"), report).unwrap();
    assert!(
        generated >= MIN_REQUESTS,
        "only {generated} test cases generated"
    );
}
