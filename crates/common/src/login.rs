//! The user's login at the hosted auth service (Supabase Auth), deleted on erasure through its
//! admin API: `DELETE {SUPABASE_URL}/auth/v1/admin/users/{id}` with the service-role key in the
//! `apikey` and `Authorization: Bearer` headers and `{"should_soft_delete": ...}` as the body.
//! The server answers 200 `{}` when it deleted the user and 404 (`user_not_found`) when there is
//! no such user, which counts as done; anything else is a failure (502 `AUTH_SERVICE_ERROR`).
//! 429, 5xx, timeouts and connection failures are retried, with backoff, a bounded number of times.

use std::fmt;
use std::time::Duration;

use backon::Retryable;

use crate::config::{ConfigError, Vars, env, https_url};
use crate::domain::UserId;
use crate::error::ApiError;
use crate::https::{Body, CallFailed, HttpsClient};

/// Per-attempt timeout of the admin API call.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest answer read: the admin API answers `{}` or a short error.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How erasure reaches the auth service.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginConfig {
    /// The auth project's URL (`SUPABASE_URL`), e.g. `https://<project>.supabase.co`.
    pub url: String,
    /// The service-role key (`SUPABASE_SERVICE_ROLE_KEY`): never logged or shown.
    pub service_role_key: String,
    /// Soft-delete instead of deleting (`AUTH_SOFT_DELETE`, default false).
    pub soft_delete: bool,
}

impl fmt::Debug for LoginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginConfig")
            .field("url", &self.url)
            .field("service_role_key", &"<redacted>")
            .field("soft_delete", &self.soft_delete)
            .finish()
    }
}

impl LoginConfig {
    /// Reads the process environment (see [`LoginConfig::from_lookup`]).
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_lookup(env)
    }

    /// The login-deletion settings: `None` only when `AUTH_USER_DELETION=off` says so
    /// explicitly; otherwise `SUPABASE_URL` (https, or http to a loopback address) and
    /// `SUPABASE_SERVICE_ROLE_KEY` are required.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let vars = Vars(lookup);
        match vars.get("AUTH_USER_DELETION").as_deref() {
            None | Some("on") => {}
            Some("off") => return Ok(None),
            Some(_) => {
                return Err(ConfigError {
                    variable: "AUTH_USER_DELETION",
                    problem: "must be on or off",
                });
            }
        }
        let url = https_url("SUPABASE_URL", vars.required("SUPABASE_URL")?)?;
        let soft_delete = match vars.get("AUTH_SOFT_DELETE").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ConfigError {
                    variable: "AUTH_SOFT_DELETE",
                    problem: "must be true or false",
                });
            }
        };
        Ok(Some(LoginConfig {
            url: url.trim_end_matches('/').to_owned(),
            service_role_key: vars.required("SUPABASE_SERVICE_ROLE_KEY")?,
            soft_delete,
        }))
    }
}

/// What the auth service said about the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginDeleted {
    /// Deleted now.
    Now,
    /// There was no such user (deleted before, e.g. by an earlier attempt whose reply was lost).
    AlreadyGone,
}

/// The admin API client, built once at init.
pub struct LoginAdmin {
    client: HttpsClient,
    config: LoginConfig,
}

impl LoginAdmin {
    /// Builds the client (rustls, per-attempt timeout).
    pub fn new(config: LoginConfig) -> Self {
        let client = HttpsClient::new(ATTEMPT_TIMEOUT);
        LoginAdmin { client, config }
    }

    /// Deletes the login of `user`, retrying what is transient
    /// ([`crate::CALL_ATTEMPTS`] attempts).
    pub async fn delete_user(&self, user: &UserId) -> Result<LoginDeleted, ApiError> {
        let url = format!("{}/auth/v1/admin/users/{}", self.config.url, user.as_str());
        let body = serde_json::json!({"should_soft_delete": self.config.soft_delete}).to_string();
        let attempt = || async {
            let request = http::Request::delete(&url)
                .header("apikey", &self.config.service_role_key)
                .header(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", self.config.service_role_key),
                )
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.clone()))
                .map_err(|_| Failure::Call(CallFailed::Connection))?;
            let answer = self
                .client
                .send(request, MAX_ANSWER_BYTES)
                .await
                .map_err(Failure::Call)?;
            match answer.status.as_u16() {
                200..=299 => Ok(LoginDeleted::Now),
                404 => Ok(LoginDeleted::AlreadyGone),
                status => Err(Failure::Status(status)),
            }
        };
        attempt
            .retry(crate::call_backoff())
            .when(Failure::is_transient)
            .notify(|failure, delay| {
                tracing::warn!(call = "delete login", error = %failure, ?delay, "auth service call failed; retrying")
            })
            .await
            .map_err(|failure| {
                tracing::error!(call = "delete login", error = %failure, "auth service call failed");
                ApiError::AuthServiceFailed
            })
    }
}

/// Why one attempt failed: what is safe to log (never a body, a URL or a header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Call(CallFailed),
    Status(u16),
}

impl Failure {
    fn is_transient(&self) -> bool {
        match self {
            Failure::Call(failed) => *failed != CallFailed::TooLarge,
            Failure::Status(status) => *status == 429 || (500..=599).contains(status),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Call(failed) => failed.fmt(f),
            // 401/403: a wrong or revoked service-role key.
            Failure::Status(status) => write!(f, "status {status}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Option<LoginConfig>, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LoginConfig::from_lookup(|name| map.get(name).cloned())
    }

    const KEY: &str = "service-role-key-0123456789";

    #[test]
    fn on_by_default_and_needs_both_settings() {
        assert_eq!(load(&[]).unwrap_err().variable, "SUPABASE_URL");
        let err = load(&[("SUPABASE_URL", "https://proj.supabase.co")]).unwrap_err();
        assert_eq!(err.variable, "SUPABASE_SERVICE_ROLE_KEY");
        let config = load(&[
            ("SUPABASE_URL", "https://proj.supabase.co/"),
            ("SUPABASE_SERVICE_ROLE_KEY", KEY),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(config.url, "https://proj.supabase.co");
        assert!(!config.soft_delete);
    }

    #[test]
    fn off_only_when_said_explicitly() {
        assert_eq!(load(&[("AUTH_USER_DELETION", "off")]).unwrap(), None);
        let err = load(&[("AUTH_USER_DELETION", "no")]).unwrap_err();
        assert_eq!(err.variable, "AUTH_USER_DELETION");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for url in [
            "http://127.0.0.1:54321",
            "http://localhost:9999",
            "http://[::1]:80",
        ] {
            let vars = [("SUPABASE_URL", url), ("SUPABASE_SERVICE_ROLE_KEY", KEY)];
            assert!(load(&vars).unwrap().is_some(), "{url}");
        }
        for url in [
            "http://proj.supabase.co",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "proj.supabase.co",
            "ftp://127.0.0.1",
        ] {
            let vars = [("SUPABASE_URL", url), ("SUPABASE_SERVICE_ROLE_KEY", KEY)];
            let err = load(&vars).unwrap_err();
            assert_eq!(err.variable, "SUPABASE_URL", "{url}");
            assert!(!err.to_string().contains(url));
        }
    }

    #[test]
    fn soft_delete_is_configurable_and_the_key_never_shows() {
        let config = load(&[
            ("SUPABASE_URL", "https://proj.supabase.co"),
            ("SUPABASE_SERVICE_ROLE_KEY", KEY),
            ("AUTH_SOFT_DELETE", "true"),
        ])
        .unwrap()
        .unwrap();
        assert!(config.soft_delete);
        assert!(!format!("{config:?}").contains(KEY));
        let err = load(&[
            ("SUPABASE_URL", "https://proj.supabase.co"),
            ("SUPABASE_SERVICE_ROLE_KEY", KEY),
            ("AUTH_SOFT_DELETE", "yes"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "AUTH_SOFT_DELETE");
    }
}
