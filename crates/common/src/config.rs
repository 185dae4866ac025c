//! Configuration from environment variables, read and validated once at cold start.
//!
//! Every variable is documented in the README. A missing or invalid value is a
//! [`ConfigError`] naming the variable, never echoing its value.

use std::fmt;

/// Default audience of the hosted auth provider's access tokens.
pub const DEFAULT_JWT_AUDIENCE: &str = "authenticated";
/// Default lifetime allowance of free messages per account.
pub const DEFAULT_FREE_MESSAGES: i64 = 10;

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
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKeys::Hs256Secret(_) => f.write_str("Hs256Secret(<redacted>)"),
            JwtKeys::JwksUrl(url) => write!(f, "JwksUrl({url})"),
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
}

/// Business rules shared by every endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Lifetime free messages of a new account (`FREE_MESSAGES`).
    pub free_messages: i64,
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
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| {
            var(name).ok_or(ConfigError {
                variable: name,
                problem: "is missing or empty",
            })
        };

        let storage = StorageConfig {
            table_name: required("TABLE_NAME")?,
            region: required("AWS_REGION")?,
            endpoint: match var("DYNAMODB_ENDPOINT") {
                Some(url) => Some(http_url("DYNAMODB_ENDPOINT", url)?),
                None => None,
            },
        };
        let keys = match (var("JWT_HS256_SECRET"), var("JWT_JWKS_URL")) {
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
            (None, Some(url)) => JwtKeys::JwksUrl(http_url("JWT_JWKS_URL", url)?),
            (None, None) => {
                return Err(ConfigError {
                    variable: "JWT_HS256_SECRET",
                    problem: "or JWT_JWKS_URL must be set",
                });
            }
        };
        let jwt = JwtConfig {
            keys,
            issuer: required("JWT_ISSUER")?,
            audience: var("JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_JWT_AUDIENCE.to_owned()),
        };
        let free_messages = match var("FREE_MESSAGES") {
            None => DEFAULT_FREE_MESSAGES,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=1_000_000).contains(n))
                .ok_or(ConfigError {
                    variable: "FREE_MESSAGES",
                    problem: "must be an integer between 0 and 1000000",
                })?,
        };
        Ok(Config {
            storage,
            jwt,
            rules: Rules { free_messages },
        })
    }
}

fn http_url(variable: &'static str, value: String) -> Result<String, ConfigError> {
    if value.starts_with("https://") || value.starts_with("http://") {
        Ok(value)
    } else {
        Err(ConfigError {
            variable,
            problem: "must be an http(s) URL",
        })
    }
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
        assert_eq!(config.rules.free_messages, 10);
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

    #[test]
    fn debug_output_redacts_the_secret() {
        let config = load(&base()).unwrap();
        assert!(!format!("{config:?}").contains(SECRET));
    }
}
