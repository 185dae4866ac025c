//! Configuration from environment variables, read and validated once at cold start.
//!
//! Every variable is documented in the README. A missing or invalid value is a
//! [`ConfigError`] naming the variable, never echoing its value.

use std::fmt;

use crate::domain::plans::MessagePrices;
use crate::domain::{Caller, StripeAllowance};

mod plans;
mod stripe;

pub use stripe::*;

/// Default audience of the hosted auth provider's access tokens.
pub const DEFAULT_JWT_AUDIENCE: &str = "authenticated";
/// Default lifetime allowance of free messages per account.
pub const DEFAULT_FREE_MESSAGES: i64 = 10;
/// Default retention of an erased account's tombstone.
pub const DEFAULT_TOMBSTONE_TTL_DAYS: i64 = 90;
/// The default number of one user's requests that may reach Stripe per window
/// (`STRIPE_CALLS_PER_USER`).
pub const DEFAULT_STRIPE_CALLS_PER_USER: i64 = 10;
/// The default window of that allowance, seconds (`STRIPE_CALL_WINDOW_SECS`).
pub const DEFAULT_STRIPE_CALL_WINDOW_SECS: i64 = 60;
/// Default per-attempt timeout of a DynamoDB call (`DYNAMODB_TIMEOUT_MS`).
pub const DEFAULT_DYNAMODB_TIMEOUT_MS: u64 = 2000;

/// A configuration variable that is missing or invalid. Displays the variable's name and
/// what is wrong with it, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Name of the environment variable.
    pub variable: &'static str,
    /// What is wrong, for the operator.
    pub problem: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration variable {} {}",
            self.variable, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

/// Where token signatures are checked against.
#[derive(Clone, PartialEq, Eq)]
pub enum JwtKeys {
    /// The auth provider's legacy HS256 shared secret (`JWT_HS256_SECRET`).
    Hs256Secret(String),
    /// The provider's published JWKS for ES256/RS256 keys (`JWT_JWKS_URL`).
    JwksUrl(String),
    /// None: a function that takes no bearer token (the webhook, reconciliation) holds no key,
    /// and refuses every token.
    NoTokens,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKeys::Hs256Secret(_) => f.write_str("Hs256Secret(<redacted>)"),
            JwtKeys::JwksUrl(url) => write!(f, "JwksUrl({url})"),
            JwtKeys::NoTokens => f.write_str("NoTokens"),
        }
    }
}

/// How access tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// Signing keys.
    pub keys: JwtKeys,
    /// Required `iss` claim (`JWT_ISSUER`).
    pub issuer: String,
    /// Required `aud` claim (`JWT_AUDIENCE`).
    pub audience: String,
}

/// Where user records live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// AWS region (`AWS_REGION`).
    pub region: String,
    /// Endpoint override for a local DynamoDB (`DYNAMODB_ENDPOINT`), if any.
    pub endpoint: Option<String>,
    /// Per-attempt timeout of a call (`DYNAMODB_TIMEOUT_MS`); a call gives up after 2.5 times it.
    pub timeout_ms: u64,
}

/// Business rules shared by every endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Lifetime free messages of a new account (`FREE_MESSAGES`).
    pub free_messages: i64,
    /// Days an erased account's tombstone is kept before TTL removes it (`TOMBSTONE_TTL_DAYS`).
    pub tombstone_days: i64,
    /// How many of one user's requests may reach Stripe per window (`STRIPE_CALLS_PER_USER`,
    /// `STRIPE_CALL_WINDOW_SECS`).
    pub stripe_allowance: StripeAllowance,
    /// Whether anonymous sign-ins get the free messages too (`ALLOW_ANONYMOUS_FREE_MESSAGES`,
    /// default no).
    pub anonymous_free_messages: bool,
    /// What a message costs per model (`MESSAGE_PRICES`; 1 credit without it).
    pub message_prices: MessagePrices,
}

impl Rules {
    /// The free messages a new account of `caller` starts with.
    pub fn free_messages_for(&self, caller: &Caller) -> i64 {
        if caller.anonymous && !self.anonymous_free_messages {
            0
        } else {
            self.free_messages
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            free_messages: DEFAULT_FREE_MESSAGES,
            tombstone_days: DEFAULT_TOMBSTONE_TTL_DAYS,
            stripe_allowance: StripeAllowance {
                calls: DEFAULT_STRIPE_CALLS_PER_USER,
                window_secs: DEFAULT_STRIPE_CALL_WINDOW_SECS,
            },
            anonymous_free_messages: false,
            message_prices: MessagePrices::default(),
        }
    }
}

/// Everything a Lambda of this service needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Storage settings.
    pub storage: StorageConfig,
    /// Token verification settings.
    pub jwt: JwtConfig,
    /// Business rules.
    pub rules: Rules,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// The configuration of a function that takes no bearer token, read through `lookup`: no
    /// token settings are read, and [`JwtKeys::NoTokens`] refuses every token.
    pub fn without_tokens(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Config {
            storage: StorageConfig::from_lookup(&lookup)?,
            jwt: JwtConfig {
                keys: JwtKeys::NoTokens,
                issuer: String::new(),
                audience: DEFAULT_JWT_AUDIENCE.to_owned(),
            },
            rules: Rules::from_lookup(&lookup)?,
        })
    }

    /// Reads configuration through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let storage = StorageConfig::from_lookup(&lookup)?;
        let vars = Vars(&lookup);
        let keys = match (vars.get("JWT_HS256_SECRET"), vars.get("JWT_JWKS_URL")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError {
                    variable: "JWT_HS256_SECRET",
                    problem: "and JWT_JWKS_URL are both set; set exactly one",
                });
            }
            (Some(secret), None) if secret.len() < 32 => {
                return Err(ConfigError {
                    variable: "JWT_HS256_SECRET",
                    problem: "is shorter than 32 bytes",
                });
            }
            (Some(secret), None) => JwtKeys::Hs256Secret(secret),
            (None, Some(url)) => JwtKeys::JwksUrl(https_url("JWT_JWKS_URL", url)?),
            (None, None) => {
                return Err(ConfigError {
                    variable: "JWT_HS256_SECRET",
                    problem: "or JWT_JWKS_URL must be set",
                });
            }
        };
        let jwt = JwtConfig {
            keys,
            issuer: vars.required("JWT_ISSUER")?,
            audience: vars
                .get("JWT_AUDIENCE")
                .unwrap_or_else(|| DEFAULT_JWT_AUDIENCE.to_owned()),
        };
        Ok(Config {
            storage,
            jwt,
            rules: Rules::from_lookup(&lookup)?,
        })
    }
}

impl StorageConfig {
    /// The storage settings alone, read through `lookup` (an operator's tool needs no token
    /// settings).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        Ok(StorageConfig {
            table_name: vars.required("TABLE_NAME")?,
            region: vars.required("AWS_REGION")?,
            endpoint: vars.http_url("DYNAMODB_ENDPOINT")?,
            timeout_ms: vars.integer(
                "DYNAMODB_TIMEOUT_MS",
                DEFAULT_DYNAMODB_TIMEOUT_MS as i64,
                100..=20_000,
                "must be an integer between 100 and 20000",
            )? as u64,
        })
    }
}

impl Rules {
    /// The business rules alone, read through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        let free_messages = vars.integer(
            "FREE_MESSAGES",
            DEFAULT_FREE_MESSAGES,
            0..=1_000_000,
            "must be an integer between 0 and 1000000",
        )?;
        let tombstone_days = vars.integer(
            "TOMBSTONE_TTL_DAYS",
            DEFAULT_TOMBSTONE_TTL_DAYS,
            1..=3650,
            "must be an integer between 1 and 3650",
        )?;
        let stripe_allowance = StripeAllowance {
            calls: vars.integer(
                "STRIPE_CALLS_PER_USER",
                DEFAULT_STRIPE_CALLS_PER_USER,
                1..=10_000,
                "must be an integer between 1 and 10000",
            )?,
            window_secs: vars.integer(
                "STRIPE_CALL_WINDOW_SECS",
                DEFAULT_STRIPE_CALL_WINDOW_SECS,
                1..=86_400,
                "must be an integer between 1 and 86400",
            )?,
        };
        let anonymous_free_messages = match vars.get("ALLOW_ANONYMOUS_FREE_MESSAGES").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ConfigError {
                    variable: "ALLOW_ANONYMOUS_FREE_MESSAGES",
                    problem: "must be true or false",
                });
            }
        };
        Ok(Rules {
            free_messages,
            tombstone_days,
            stripe_allowance,
            anonymous_free_messages,
            message_prices: plans::message_prices(&vars)?,
        })
    }
}

/// The process environment's value of `name`: the lookup of the Lambdas.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Configuration variables, read through a lookup (the environment, or a map in tests).
pub(crate) struct Vars<L>(pub(crate) L);

impl<L: Fn(&str) -> Option<String>> Vars<L> {
    /// The trimmed value of `name`; empty counts as unset.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, which must be set.
    pub(crate) fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError {
            variable: name,
            problem: "is missing or empty",
        })
    }

    /// The value of `name` as an integer within `range`, or `default` when unset.
    fn integer(
        &self,
        variable: &'static str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
        problem: &'static str,
    ) -> Result<i64, ConfigError> {
        match self.get(variable) {
            None => Ok(default),
            Some(value) => in_range(variable, &value, range, problem),
        }
    }

    /// The value of `name`, which must be set, as an integer within `range`.
    fn required_integer(
        &self,
        variable: &'static str,
        range: std::ops::RangeInclusive<i64>,
        problem: &'static str,
    ) -> Result<i64, ConfigError> {
        in_range(variable, &self.required(variable)?, range, problem)
    }

    /// The value of `name`, if set, which must be an endpoint URL ([`https_url`]): an override
    /// of where a service is reached carries our credentials, so plain http only to loopback.
    pub(crate) fn http_url(&self, variable: &'static str) -> Result<Option<String>, ConfigError> {
        self.get(variable)
            .map(|url| https_url(variable, url))
            .transpose()
    }
}

/// `value` of `variable` as an integer within `range`, or `problem`.
fn in_range(
    variable: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<i64>,
    problem: &'static str,
) -> Result<i64, ConfigError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or(ConfigError { variable, problem })
}

/// `value` if it is an https URL, or plain http to a loopback address (tests, local stacks):
/// for endpoints that receive a secret or are trusted for keys. Parsed as a URI, never split by
/// hand: a URL with userinfo (`http://127.0.0.1:1@attacker.example/`, whose host is the
/// attacker's) is refused, and the host is what is checked.
pub(crate) fn https_url(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let refused = ConfigError {
        variable,
        problem: "must be an https URL without userinfo (http only to a loopback address)",
    };
    let uri: http::Uri = value.parse().map_err(|_| refused.clone())?;
    let authority = uri.authority().ok_or_else(|| refused.clone())?;
    let host = authority.host();
    if authority.as_str().contains('@') || host.is_empty() {
        return Err(refused);
    }
    match uri.scheme_str() {
        Some("https") => Ok(value),
        Some("http") if is_loopback(host) => Ok(value),
        _ => Err(refused),
    }
}

/// Whether `host` (as a URI names it: `[::1]` bracketed) is 127.0.0.0/8, `localhost` or `::1`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-secret";

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TABLE_NAME", "users"),
            ("AWS_REGION", "eu-central-1"),
            ("JWT_HS256_SECRET", SECRET),
            ("JWT_ISSUER", "https://proj.supabase.co/auth/v1"),
        ]
    }

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        base().into_iter().filter(|(k, _)| *k != name).collect()
    }

    #[test]
    fn minimal_environment_gets_documented_defaults() {
        let config = load(&base()).unwrap();
        assert_eq!(config.jwt.audience, "authenticated");
        assert_eq!(config.rules, Rules::default());
        assert_eq!(config.rules.tombstone_days, 90);
        assert_eq!(config.storage.endpoint, None);
        assert_eq!(config.jwt.keys, JwtKeys::Hs256Secret(SECRET.into()));
    }

    #[test]
    fn each_required_variable_is_named_when_missing() {
        for name in ["TABLE_NAME", "AWS_REGION", "JWT_ISSUER"] {
            let err = load(&without(name)).unwrap_err();
            assert_eq!(err.variable, name);
            assert!(err.to_string().contains(name));
        }
        let err = load(&without("JWT_HS256_SECRET")).unwrap_err();
        assert!(err.to_string().contains("JWT_JWKS_URL"));
    }

    #[test]
    fn invalid_values_are_rejected_without_echoing_them() {
        let mut vars = base();
        vars.push(("FREE_MESSAGES", "ten"));
        let err = load(&vars).unwrap_err();
        assert_eq!(err.variable, "FREE_MESSAGES");
        assert!(!err.to_string().contains("ten"));

        let mut vars = without("JWT_HS256_SECRET");
        vars.push(("JWT_HS256_SECRET", "short-secret"));
        let err = load(&vars).unwrap_err();
        assert!(!err.to_string().contains("short-secret"));

        let mut vars = base();
        vars.push((
            "JWT_JWKS_URL",
            "https://proj.supabase.co/auth/v1/.well-known/jwks.json",
        ));
        assert_eq!(load(&vars).unwrap_err().variable, "JWT_HS256_SECRET");

        let mut vars = base();
        vars.push(("DYNAMODB_ENDPOINT", "localhost:8000"));
        assert_eq!(load(&vars).unwrap_err().variable, "DYNAMODB_ENDPOINT");
    }

    #[test]
    fn endpoint_overrides_are_https_or_loopback_http() {
        for (url, ok) in [
            ("https://dynamodb.eu-central-1.amazonaws.com", true),
            ("http://127.0.0.1:8000", true),
            ("http://localhost:8000", true),
            ("http://10.0.0.5:8000", false),
            ("http://dynamodb.example", false),
            ("http://127.0.0.1:8000@attacker.example", false),
        ] {
            let mut vars = base();
            vars.push(("DYNAMODB_ENDPOINT", url));
            let result = load(&vars);
            assert_eq!(result.is_ok(), ok, "{url}");
            if let Err(err) = result {
                assert_eq!(err.variable, "DYNAMODB_ENDPOINT");
                assert!(!err.to_string().contains(url));
            }
        }
    }

    #[test]
    fn the_jwks_url_must_be_https_but_loopback() {
        for (url, ok) in [
            (
                "https://proj.supabase.co/auth/v1/.well-known/jwks.json",
                true,
            ),
            ("http://127.0.0.1:9999/jwks.json", true),
            ("http://localhost:9999/jwks.json", true),
            (
                "http://proj.supabase.co/auth/v1/.well-known/jwks.json",
                false,
            ),
            ("http://127.0.0.1.attacker.example/jwks.json", false),
            ("http://[::1]:9999/jwks.json", true),
            // The host of these is the attacker's: the loopback part is userinfo.
            ("http://127.0.0.1:1@attacker.example/jwks.json", false),
            ("https://127.0.0.1:1@attacker.example/jwks.json", false),
            ("http://localhost@attacker.example/", false),
            ("ftp://127.0.0.1/jwks.json", false),
            ("https:///jwks.json", false),
        ] {
            let mut vars = without("JWT_HS256_SECRET");
            vars.push(("JWT_JWKS_URL", url));
            let result = load(&vars);
            assert_eq!(result.is_ok(), ok, "{url}");
            if let Err(err) = result {
                assert_eq!(err.variable, "JWT_JWKS_URL");
            }
        }
    }

    #[test]
    fn jwks_mode_and_overrides() {
        let mut vars = without("JWT_HS256_SECRET");
        vars.extend([
            (
                "JWT_JWKS_URL",
                "https://proj.supabase.co/auth/v1/.well-known/jwks.json",
            ),
            ("JWT_AUDIENCE", "mobile"),
            ("FREE_MESSAGES", "25"),
            ("DYNAMODB_ENDPOINT", "http://127.0.0.1:5000"),
        ]);
        let config = load(&vars).unwrap();
        assert!(matches!(config.jwt.keys, JwtKeys::JwksUrl(_)));
        assert_eq!(config.jwt.audience, "mobile");
        assert_eq!(config.rules.free_messages, 25);
        assert_eq!(
            config.storage.endpoint.as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    fn stripe(vars: &[(&str, &str)]) -> Result<StripeConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StripeConfig::from_lookup(|name| map.get(name).cloned())
    }

    const STRIPE_BASE: [(&str, &str); 3] = [
        ("STRIPE_SECRET_KEY", "sk_test_abc"),
        ("STRIPE_PRICE_ID", "price_1"),
        ("PLAN_CREDITS", "1000"),
    ];

    #[test]
    fn stripe_settings_have_the_contract_defaults() {
        let config = stripe(&STRIPE_BASE).unwrap();
        assert_eq!(config.catalogue.default_plan().id.as_str(), "pro");
        assert_eq!(
            config.checkout_success_url,
            "https://chuk.chat/subscription?success=true"
        );
        assert_eq!(
            config.checkout_cancel_url,
            "https://chuk.chat/subscription?canceled=true"
        );
        assert_eq!(config.portal_return_url, "https://chuk.chat/subscription");
        assert_eq!(config.api_base, None);
        assert!(!format!("{config:?}").contains("sk_test_abc"));
    }

    #[test]
    fn stripe_settings_are_validated_by_name() {
        for (name, value) in [
            ("STRIPE_SECRET_KEY", "pk_test_publishable"),
            ("PLAN_CREDITS", "-3"),
            ("PLAN_CREDITS", "many"),
            ("STRIPE_API_BASE", "127.0.0.1:12111"),
            ("STRIPE_API_BASE", "http://stripe-mock.internal:12111"),
            ("STRIPE_API_BASE", "http://127.0.0.1:1@attacker.example"),
            ("CHECKOUT_SUCCESS_URL", "chuk.chat/ok"),
            ("STRIPE_TIMEOUT_MS", "7"),
        ] {
            let mut vars: Vec<(&str, &str)> = STRIPE_BASE
                .iter()
                .copied()
                .filter(|(k, _)| *k != name)
                .collect();
            vars.push((name, value));
            let err = stripe(&vars).unwrap_err();
            assert_eq!(err.variable, name);
            assert!(!err.to_string().contains(value));
        }
        for name in ["STRIPE_SECRET_KEY", "STRIPE_PRICE_ID", "PLAN_CREDITS"] {
            let vars: Vec<(&str, &str)> = STRIPE_BASE
                .iter()
                .copied()
                .filter(|(k, _)| *k != name)
                .collect();
            assert_eq!(stripe(&vars).unwrap_err().variable, name);
        }
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let config = load(&base()).unwrap();
        assert!(!format!("{config:?}").contains(SECRET));
    }
}
