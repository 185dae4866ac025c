//! Schema-driven API fuzzing: schemathesis (pinned in `scripts/requirements-test.txt`) generates
//! requests from `openapi.yaml` against the local API on the DynamoDB emulator, with Stripe on the
//! stub, and runs every check it has: no 5xx, every response (status, headers, body) as
//! documented, auth enforced, schema-valid input accepted and invalid input rejected (with the
//! allowances of `tests/schemathesis/schemathesis.toml`), and the stateful links of the spec.
//!
//! The work is bounded by a number of test cases per operation, `SCHEMATHESIS_EXAMPLES` (default
//! 50, so the suite keeps to its time budget; `SCHEMATHESIS_EXAMPLES=500 ./scripts/test
//! api_fuzzing::` goes deeper), never by seconds: a slower machine runs the same cases, only for
//! longer. Its figures (cases, time) go to `target/reports/schemathesis.md`.

use std::path::Path;

use integration_tests::binaries::{local_api_env, start_local_api};
use integration_tests::stripe_stub::StripeStub;
use integration_tests::tokens;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_no_5xx_and_only_documented_answers() {
    let examples: u32 = std::env::var("SCHEMATHESIS_EXAMPLES")
        .unwrap_or_else(|_| "50".to_owned())
        .parse()
        .expect("SCHEMATHESIS_EXAMPLES is a number");
    let stub = StripeStub::start().await;
    let env = local_api_env(&stub.uri());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let api = start_local_api(&env).await;
    let base = api.base.clone();

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reports = root.join("target/reports");
    std::fs::create_dir_all(&reports).unwrap();
    // Erasure ends a caller's life (everything is 410 after it), so it gets a caller of its own
    // and a tenth of the cases; everything else runs as one long-lived caller.
    let runs = [
        (
            "everything but erasure",
            vec!["--exclude-operation-id", "deleteAccount"],
            examples,
        ),
        (
            "erasure, then the erased caller",
            vec![],
            (examples / 10).max(1),
        ),
    ];
    let mut report = format!("# Schemathesis ({examples} cases per operation)\n");
    for (name, filter, cases) in runs {
        let started = std::time::Instant::now();
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
            .args(["--checks", "all", "--max-examples", &cases.to_string()])
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
        // The summary's "Test cases: N generated, ..." line: a run that generated nothing
        // tested nothing (a wrong filter, an unreadable spec), whatever its exit code.
        let generated = stdout
            .lines()
            .filter_map(|line| line.trim().split_once(" generated,"))
            .filter_map(|(n, _)| {
                n.trim_start_matches("Test cases:")
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .next_back()
            .unwrap_or(0);
        assert!(generated > 0, "{name}: no test case generated:\n{stdout}");
        let summary: Vec<&str> = stdout
            .lines()
            .skip_while(|line| !line.contains("SUMMARY"))
            .collect();
        report.push_str(&format!(
            "\n## {name} ({cases} cases per operation, {generated} generated, {:.1} s)\n\n```\n{}\n```\n",
            started.elapsed().as_secs_f64(),
            summary.join("\n")
        ));
    }
    std::fs::write(reports.join("schemathesis.md"), report).unwrap();
}
