//! Least privilege, both ways: each function's DynamoDB actions as the suite's run through the
//! IAM proxy recorded them (`IAM_USAGE_FILE`), beside its policy in `template.yaml`. A missing
//! action already failed the suite (the proxy denies it, as IAM would); this fails on a granted
//! action no test needed. It reads what the whole suite did, so `./scripts/test` runs it after
//! the suite (`--ignored`), and only for a full run.

use std::collections::{BTreeMap, BTreeSet};

use integration_tests::iam::{Access, Policies};

#[test]
#[ignore = "reads the usage of the whole suite: ./scripts/test runs it after the suite"]
fn every_function_is_granted_exactly_the_dynamodb_actions_it_uses() {
    let file = std::env::var("IAM_USAGE_FILE").expect("IAM_USAGE_FILE names the proxy's usage");
    let text = std::fs::read_to_string(&file).expect("the usage file");
    let mut used: BTreeMap<String, BTreeSet<Access>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        used.entry(entry["function"].as_str().unwrap().to_owned())
            .or_default()
            .insert(Access {
                action: entry["action"].as_str().unwrap().to_owned(),
                resource: entry["resource"].as_str().unwrap().to_owned(),
            });
    }
    let policies = Policies::from_template();
    let mut problems = Vec::new();
    println!(
        "{:<26} {:<30} {:<10} used",
        "function", "action", "resource"
    );
    for function in policies.functions() {
        let granted = policies.granted(function);
        let used = used.remove(function).unwrap_or_default();
        for access in granted.union(&used) {
            let mark = match (granted.contains(access), used.contains(access)) {
                (true, true) => "yes",
                (true, false) => "UNUSED: remove it from the policy",
                _ => "DENIED: missing from the policy",
            };
            println!(
                "{function:<26} {:<30} {:<10} {mark}",
                access.action, access.resource
            );
            if mark != "yes" {
                problems.push(format!(
                    "{function}: {} on {}: {mark}",
                    access.action, access.resource
                ));
            }
        }
    }
    assert!(
        used.is_empty(),
        "calls signed by no function of the template: {used:?}"
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
