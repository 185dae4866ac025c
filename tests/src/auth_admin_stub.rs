//! A loopback stand-in of the hosted auth service's admin API (Supabase Auth), answering
//! `DELETE /auth/v1/admin/users/{id}` as the real one does, and recording every request.
//!
//! The answers follow the open-source server (`supabase/auth`, `internal/api/admin.go`:
//! `adminUserDelete` and `loadUser`; `internal/api/auth.go`: `requireAdmin`) and the API gateway
//! in front of hosted projects:
//! - `apikey` missing or wrong: 401 `{"message": "Invalid API key", ...}` (the gateway);
//! - no `Authorization: Bearer`: 401 `no_authorization`; a bearer that is not the service role:
//!   403 `not_admin`;
//! - an id that is not a UUID: 404 `validation_failed` "user_id must be an UUID";
//! - no such user: 404 `user_not_found` "User not found";
//! - deleted (or soft-deleted, with `{"should_soft_delete": true}`): 200 `{}`.
//!
//! Error bodies are the server's `{"code": status, "error_code": ..., "msg": ...}`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::stripe_stub::header;

/// The service-role key the tests configure.
pub const SERVICE_ROLE_KEY: &str = "service-role-key-for-tests-only-0123456789";

/// The admin route of one user.
const USER_ROUTE: &str = r"^/auth/v1/admin/users/[^/]+$";

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct AdminCall {
    /// `METHOD /path`.
    pub route: String,
    /// The `apikey` header.
    pub apikey: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

/// A running stand-in holding a set of users.
pub struct AuthAdminStub {
    server: MockServer,
    users: Arc<Mutex<HashSet<String>>>,
}

fn gotrue_error(status: u16, error_code: &str, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"code": status, "error_code": error_code, "msg": msg}))
}

impl AuthAdminStub {
    /// Starts the stand-in with no users.
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let users: Arc<Mutex<HashSet<String>>> = Arc::default();
        let held = users.clone();
        Mock::given(method("DELETE"))
            .and(path_regex(USER_ROUTE))
            .respond_with(move |req: &Request| {
                if header(req, "apikey").as_deref() != Some(SERVICE_ROLE_KEY) {
                    return ResponseTemplate::new(401).set_body_json(json!({
                        "message": "Invalid API key",
                        "hint": "Double check your Supabase `anon` or `service_role` API key."
                    }));
                }
                match header(req, "authorization") {
                    None => {
                        return gotrue_error(
                            401,
                            "no_authorization",
                            "This endpoint requires a valid Bearer token",
                        );
                    }
                    Some(bearer) if bearer != format!("Bearer {SERVICE_ROLE_KEY}") => {
                        return gotrue_error(403, "not_admin", "User not allowed");
                    }
                    Some(_) => {}
                }
                // The body is optional; when present, `should_soft_delete` must be a boolean.
                let params = serde_json::from_slice::<Value>(&req.body);
                let parsed = params.is_ok_and(|p| match p.get("should_soft_delete") {
                    None => p.is_object(),
                    Some(flag) => flag.is_boolean(),
                });
                if !req.body.is_empty() && !parsed {
                    return gotrue_error(400, "bad_json", "Could not parse request body as JSON");
                }
                let id = req.url.path().rsplit('/').next().unwrap_or_default();
                if uuid::Uuid::parse_str(id).is_err() {
                    return gotrue_error(404, "validation_failed", "user_id must be an UUID");
                }
                if held.lock().unwrap().remove(id) {
                    ResponseTemplate::new(200).set_body_json(json!({}))
                } else {
                    gotrue_error(404, "user_not_found", "User not found")
                }
            })
            .with_priority(10)
            .mount(&server)
            .await;
        AuthAdminStub { server, users }
    }

    /// The project URL to configure as `SUPABASE_URL`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Creates a user (a login) with this id.
    pub fn add_user(&self, id: &str) {
        self.users.lock().unwrap().insert(id.to_owned());
    }

    /// Whether the user still exists.
    pub fn has_user(&self, id: &str) -> bool {
        self.users.lock().unwrap().contains(id)
    }

    /// The next `times` deletions (every one for `None`) fail with `status` and the server's
    /// error body, changing nothing.
    pub async fn fail(&self, status: u16, times: Option<u64>) {
        let mock = Mock::given(method("DELETE"))
            .and(path_regex(USER_ROUTE))
            .respond_with(gotrue_error(
                status,
                "unexpected_failure",
                "Database error deleting user",
            ))
            .with_priority(1);
        match times {
            Some(n) => mock.up_to_n_times(n).mount(&self.server).await,
            None => mock.mount(&self.server).await,
        }
    }

    /// The next `times` deletions take `delay` to answer (and then fail): a hang.
    pub async fn hang(&self, delay: Duration, times: u64) {
        Mock::given(method("DELETE"))
            .and(path_regex(USER_ROUTE))
            .respond_with(ResponseTemplate::new(500).set_delay(delay))
            .with_priority(1)
            .up_to_n_times(times)
            .mount(&self.server)
            .await;
    }

    /// Every request received, in order.
    pub async fn calls(&self) -> Vec<AdminCall> {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .map(|req| AdminCall {
                route: format!("{} {}", req.method, req.url.path()),
                apikey: header(req, "apikey"),
                authorization: header(req, "authorization"),
                body: serde_json::from_slice(&req.body).ok(),
            })
            .collect()
    }
}
