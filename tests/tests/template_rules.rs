//! The template's guard rails, evaluated as CloudFormation does before it creates or changes
//! anything: each parameter's `AllowedPattern` and `AllowedValues`, and the `Rules`
//! (`RuleCondition`, `Assertions` with `Fn::And`, `Fn::Or`, `Fn::Not`, `Fn::Equals`, `Ref`). A
//! setting the functions would refuse at cold start must fail the deploy instead: each broken
//! rule below is refused, naming what is wrong, and a good set of settings passes.

use std::collections::BTreeMap;

use serde_norway::Value as Yaml;

fn template() -> Yaml {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// What CloudFormation refuses of `given` (the rest at their defaults): each broken parameter
/// constraint and each failed rule assertion, by name.
fn refused(given: &[(&str, &str)]) -> Vec<String> {
    let doc = template();
    let mut values = BTreeMap::new();
    let mut refusals = Vec::new();
    for (name, parameter) in doc["Parameters"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let given = given
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string());
        let default = match &parameter["Default"] {
            Yaml::String(s) => Some(s.clone()),
            Yaml::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let Some(value) = given.or(default) else {
            refusals.push(format!("{name}: missing"));
            continue;
        };
        if let Some(pattern) = parameter["AllowedPattern"].as_str() {
            // CloudFormation matches the whole value, Java's syntax (lookahead included).
            let regex = fancy_regex::Regex::new(pattern).unwrap();
            if !regex.is_match(&value).unwrap() {
                refusals.push(format!("{name}: does not match {pattern}"));
            }
        }
        if let Some(allowed) = parameter["AllowedValues"].as_sequence()
            && !allowed.iter().any(|v| v.as_str() == Some(value.as_str()))
        {
            refusals.push(format!("{name}: not one of the allowed values"));
        }
        values.insert(name.to_owned(), value);
    }
    for (name, rule) in doc["Rules"].as_mapping().unwrap() {
        let applies = match &rule["RuleCondition"] {
            Yaml::Null => true,
            condition => truth(condition, &values),
        };
        for assertion in rule["Assertions"].as_sequence().unwrap() {
            if applies && !truth(&assertion["Assert"], &values) {
                refusals.push(format!("rule {}", name.as_str().unwrap()));
            }
        }
    }
    refusals
}

/// A rule function's truth.
fn truth(expression: &Yaml, values: &BTreeMap<String, String>) -> bool {
    let Yaml::Tagged(tagged) = expression else {
        panic!("a rule function this evaluator does not read: {expression:?}");
    };
    let args = tagged.value.as_sequence().cloned().unwrap_or_default();
    match tagged.tag.to_string().trim_start_matches('!') {
        "And" => args.iter().all(|a| truth(a, values)),
        "Or" => args.iter().any(|a| truth(a, values)),
        "Not" => !truth(&args[0], values),
        "Equals" => text(&args[0], values) == text(&args[1], values),
        other => panic!("a rule function this evaluator does not read: {other}"),
    }
}

/// A rule function's string: a literal, or a parameter's value (`Ref`).
fn text(expression: &Yaml, values: &BTreeMap<String, String>) -> String {
    match expression {
        Yaml::String(s) => s.clone(),
        Yaml::Tagged(tagged) if tagged.tag.to_string().trim_start_matches('!') == "Ref" => {
            values[tagged.value.as_str().unwrap()].clone()
        }
        other => panic!("a rule value this evaluator does not read: {other:?}"),
    }
}

/// A complete and valid set of settings: JWKS, login deletion on.
const GOOD: &[(&str, &str)] = &[
    ("JwtIssuer", "https://abcd.supabase.co/auth/v1"),
    (
        "JwtJwksUrl",
        "https://abcd.supabase.co/auth/v1/.well-known/jwks.json",
    ),
    (
        "StripeSecretKeySecretId",
        "chat-billing/dev/stripe-secret-key",
    ),
    (
        "StripeWebhookSecretId",
        "chat-billing/dev/stripe-webhook-secret",
    ),
    ("StripePriceId", "price_1PgafmB7WZ01zgkW"),
    ("PlanCredits", "1000"),
    ("SupabaseUrl", "https://abcd.supabase.co"),
    (
        "SupabaseServiceRoleKeySecretId",
        "chat-billing/dev/supabase-service-role-key",
    ),
];

/// [`GOOD`] with `changes` made.
fn with(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut set: Vec<_> = GOOD
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .copied()
        .collect();
    set.extend(changes.iter().copied());
    set
}

#[test]
fn a_complete_set_of_settings_passes() {
    assert_eq!(refused(GOOD), Vec::<String>::new());
    let hs256 = with(&[
        ("JwtJwksUrl", ""),
        ("JwtHs256SecretId", "chat-billing/dev/jwt-secret"),
    ]);
    assert_eq!(
        refused(&hs256),
        Vec::<String>::new(),
        "the HS256 mode instead"
    );
    let kept = with(&[
        ("AuthUserDeletion", "off"),
        ("SupabaseUrl", ""),
        ("SupabaseServiceRoleKeySecretId", ""),
    ]);
    assert_eq!(
        refused(&kept),
        Vec::<String>::new(),
        "logins kept need no key"
    );
}

#[test]
fn exactly_one_jwt_mode() {
    let both = with(&[("JwtHs256SecretId", "chat-billing/dev/jwt-secret")]);
    assert_eq!(refused(&both), ["rule ExactlyOneJwtMode"]);
    let neither = with(&[("JwtJwksUrl", "")]);
    assert_eq!(refused(&neither), ["rule ExactlyOneJwtMode"]);
}

#[test]
fn login_deletion_needs_its_url_and_key() {
    let no_key = with(&[("SupabaseServiceRoleKeySecretId", "")]);
    assert_eq!(refused(&no_key), ["rule LoginDeletionHasItsSettings"]);
    let no_url = with(&[("SupabaseUrl", "")]);
    assert_eq!(refused(&no_url), ["rule LoginDeletionHasItsSettings"]);
}

#[test]
fn placeholders_and_plain_http_are_refused() {
    for (name, bad) in [
        ("JwtIssuer", "https://YOUR-DEV-PROJECT.supabase.co/auth/v1"),
        (
            "JwtJwksUrl",
            "https://YOUR-DEV-PROJECT.supabase.co/auth/v1/.well-known/jwks.json",
        ),
        ("SupabaseUrl", "https://YOUR-PROD-PROJECT.supabase.co"),
        ("JwtIssuer", "http://abcd.supabase.co/auth/v1"),
        (
            "CheckoutSuccessUrl",
            "http://chuk.chat/subscription?success=true",
        ),
        ("CheckoutCancelUrl", "https://YOUR-APP/cancel"),
        ("PortalReturnUrl", "ftp://chuk.chat/subscription"),
        ("StripePriceId", "price_REPLACE_WITH_TEST_PRICE"),
    ] {
        let refusals = refused(&with(&[(name, bad)]));
        assert_eq!(refusals.len(), 1, "{name}={bad}: {refusals:?}");
        assert!(
            refusals[0].starts_with(&format!("{name}: does not match")),
            "{refusals:?}"
        );
    }
    assert_eq!(
        refused(&with(&[("JwtIssuer", "")])).len(),
        1,
        "the issuer is required"
    );
}

#[test]
fn secrets_are_named_not_given_as_arns_and_alarms_mail_one_address() {
    let arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:stripe-AbCdEf";
    for (name, bad) in [
        ("StripeSecretKeySecretId", arn),
        ("StripeSecretKeySecretId", ""),
        ("StripeWebhookSecretId", "chat billing/webhook"),
        ("AlarmEmail", "ops-at-chuk.chat"),
        ("AlarmEmail", "a@b.c, d@e.f"),
        ("LogLevel", "trace"),
        ("DeploymentType", "Immediately"),
    ] {
        let refusals = refused(&with(&[(name, bad)]));
        assert_eq!(refusals.len(), 1, "{name}={bad}: {refusals:?}");
        assert!(
            refusals[0].starts_with(&format!("{name}: ")),
            "{refusals:?}"
        );
    }
    let mailed = with(&[("AlarmEmail", "ops@chuk.chat"), ("LogLevel", "debug")]);
    assert_eq!(refused(&mailed), Vec::<String>::new());
}

/// The `!Ref` target of `value`, if it is one.
fn reference(value: &Yaml) -> Option<&str> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        _ => None,
    }
}

#[test]
fn every_api_function_deploys_gradually_behind_its_alias_rolled_back_by_its_own_errors_alarm() {
    let doc = template();
    let globals = &doc["Globals"]["Function"];
    assert_eq!(globals["AutoPublishAlias"].as_str(), Some("live"));
    assert_eq!(
        reference(&globals["Environment"]["Variables"]["RUST_LOG"]),
        Some("LogLevel")
    );
    let resources = doc["Resources"].as_mapping().unwrap();
    let mut gradual = 0;
    for (name, resource) in resources {
        let name = name.as_str().unwrap();
        let properties = &resource["Properties"];
        let routed = properties["Events"]
            .as_mapping()
            .is_some_and(|events| events.values().any(|e| e["Type"] == "HttpApi"));
        if resource["Type"] != "AWS::Serverless::Function" || !routed {
            continue;
        }
        let preference = &properties["DeploymentPreference"];
        assert_eq!(
            reference(&preference["Type"]),
            Some("DeploymentType"),
            "{name}"
        );
        let alarms = preference["Alarms"].as_sequence().expect(name);
        assert_eq!(alarms.len(), 1, "{name}");
        let alarm = &doc["Resources"][reference(&alarms[0]).unwrap()];
        assert_eq!(
            alarm["Properties"]["MetricName"].as_str(),
            Some("Errors"),
            "{name}"
        );
        let dimension = &alarm["Properties"]["Dimensions"][0]["Value"];
        assert_eq!(
            reference(dimension),
            Some(name),
            "{name}: another function's alarm"
        );
        gradual += 1;
    }
    assert_eq!(gradual, 10, "every routed function");
}

#[test]
fn every_alarm_notifies_a_topic_and_the_table_outlives_the_stack() {
    let doc = template();
    let resources = doc["Resources"].as_mapping().unwrap();
    let mut alarms = 0;
    for (name, resource) in resources {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let actions = &resource["Properties"]["AlarmActions"];
        let text = serde_norway::to_string(actions).unwrap();
        assert!(
            text.contains("OwnAlarmTopic") && text.contains("AlarmTopic"),
            "{name:?}: {text}"
        );
        alarms += 1;
    }
    assert!(alarms >= 27, "{alarms} alarms");
    let topic = &doc["Resources"]["AlarmTopic"];
    assert_eq!(topic["Condition"].as_str(), Some("StackAlarmTopic"));
    let mail = &doc["Resources"]["AlarmMail"]["Properties"];
    assert_eq!(mail["Protocol"].as_str(), Some("email"));
    assert_eq!(reference(&mail["Endpoint"]), Some("AlarmEmail"));
    let table = &doc["Resources"]["UsersTable"];
    assert_eq!(
        table["DeletionPolicy"].as_str(),
        Some("RetainExceptOnCreate")
    );
    assert_eq!(table["UpdateReplacePolicy"].as_str(), Some("Retain"));
}
