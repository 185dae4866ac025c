//! Routes only the local API has, under `/local/`: they stand in for what a deployed stack gets
//! from elsewhere.
//!
//! - `GET /local/token[?user_id=<uuid>]`: an access token for that user (a new one without
//!   `user_id`), as the auth service would issue; only when the development secret was generated
//!   here (no `JWT_*` settings) and the API runs on the embedded store and the Stripe sandbox.
//!
//! Both answer only a peer on loopback that named a loopback `Host` (403 `LOCAL_ONLY`
//! otherwise): a page in the developer's browser that rebinds its own name to 127.0.0.1, or a
//! peer on the network when bound to another address, mints nothing.
//! - `POST /local/debit[?message_id=<id>][&model=<model>]` (bearer): pays one message (of
//!   `model`, priced by `MESSAGE_PRICES`; `default` without it) the way the chat service
//!   does, through the shared crate's debit, so a client can watch credits go down; answers the
//!   message id (a new one unless given).
//! - `POST /local/refund?message_id=<id>` (bearer): gives that message back, as the chat service
//!   does when its model call failed.

use common::ApiError;
use common::App;
use common::credits;
use common::domain::{RefundOutcome, UserId};
use common::endpoint::{error_response, json_response};
use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::dev::Tokens;

/// The paths served here start with this.
pub const PREFIX: &str = "/local/";

/// Serves one `/local/` request from `peer`.
pub async fn handle(
    app: &App,
    tokens: Option<&Tokens>,
    peer: std::net::SocketAddr,
    req: Request,
) -> Response<Body> {
    let host = req.headers().get(http::header::HOST);
    let host = host.and_then(|h| h.to_str().ok()).unwrap_or_default();
    if !peer.ip().to_canonical().is_loopback() || !is_loopback_host(host) {
        return invalid(
            StatusCode::FORBIDDEN,
            "LOCAL_ONLY",
            "The local routes answer only requests from and to loopback.",
        );
    }
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/local/token") => token(tokens, &req),
        (Method::POST, "/local/debit") => match debit(app, &req).await {
            Ok(response) => response,
            Err(err) => error_response(&err),
        },
        (Method::POST, "/local/refund") => match refund(app, &req).await {
            Ok(response) => response,
            Err(err) => error_response(&err),
        },
        (_, "/local/token") => error_response(&ApiError::MethodNotAllowed { allow: Method::GET }),
        (_, "/local/debit" | "/local/refund") => error_response(&ApiError::MethodNotAllowed {
            allow: Method::POST,
        }),
        _ => error_response(&ApiError::NotFound),
    }
}

/// Whether a `Host` header names loopback: `localhost`, 127.0.0.0/8 or `[::1]`, any port.
fn is_loopback_host(host: &str) -> bool {
    let Ok(authority) = host.parse::<http::uri::Authority>() else {
        return false;
    };
    let name = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    !host.contains('@')
        && (name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()))
}

fn token(tokens: Option<&Tokens>, req: &Request) -> Response<Body> {
    let Some(tokens) = tokens else {
        return invalid(
            StatusCode::NOT_FOUND,
            "TOKENS_NOT_MINTED",
            "Tokens are minted only with the generated development secret, the embedded store and the Stripe sandbox (no JWT_*, DYNAMODB_ENDPOINT, TABLE_NAME or STRIPE_SECRET_KEY settings).",
        );
    };
    let query = req.uri().query().unwrap_or("").as_bytes();
    let asked = form_urlencoded::parse(query).find(|(name, _)| name == "user_id");
    let user = match asked.as_ref().map(|(_, value)| value.as_ref()) {
        None => uuid::Uuid::new_v4().to_string(),
        Some(given) => match UserId::parse(given) {
            Some(user) => user.as_str().to_owned(),
            None => {
                return invalid(
                    StatusCode::BAD_REQUEST,
                    "INVALID_USER_ID",
                    "user_id must be a UUID.",
                );
            }
        },
    };
    let body = json!({
        "user_id": user,
        "access_token": tokens.mint(&user),
        "token_type": "bearer",
        "expires_in": Tokens::LIFETIME_SECS,
    });
    json_response(StatusCode::OK, &body)
}

/// The value of query parameter `name` of `req`, if any.
fn query(req: &Request, name: &str) -> Option<String> {
    let query = req.uri().query().unwrap_or("").as_bytes();
    form_urlencoded::parse(query)
        .find(|(found, _)| found == name)
        .map(|(_, value)| value.into_owned())
}

async fn debit(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = app.auth.authenticate(req.headers()).await?;
    let message_id = query(req, "message_id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let model = query(req, "model").unwrap_or_else(|| "default".to_owned());
    let rules = &app.config.rules;
    let debit =
        credits::debit_message(app.store.as_ref(), &user, rules, &message_id, &model).await?;
    let body = json!({
        "message_id": message_id,
        "model": model,
        "paid_with": debit.paid_with.as_str(),
        "remaining": debit.remaining,
    });
    Ok(json_response(StatusCode::OK, &body))
}

async fn refund(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = app.auth.authenticate(req.headers()).await?;
    let message_id = query(req, "message_id").unwrap_or_default();
    let outcome = credits::refund_message(app.store.as_ref(), &caller.user, &message_id).await?;
    let outcome = match outcome {
        RefundOutcome::Refunded => "refunded",
        RefundOutcome::Lapsed => "lapsed",
        RefundOutcome::AlreadyRefunded => "already_refunded",
        RefundOutcome::NotCharged => "not_charged",
    };
    Ok(json_response(StatusCode::OK, &json!({"outcome": outcome})))
}

/// The contract's error body with a local-only code.
fn invalid(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"detail": message, "error": {"code": code, "message": message}}),
    )
}
