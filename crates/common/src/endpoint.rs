//! Turning handler results into API Gateway responses.

use std::future::Future;
use std::time::{Duration, Instant};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use tracing::Instrument;

use crate::App;
use crate::domain::Caller;
use crate::error::ApiError;

/// A JSON response with `status`. Responses are never cacheable: they describe one user's money.
pub fn json_response(status: ::http::StatusCode, body: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_string(body).expect("response bodies are plain JSON values");
    Response::builder()
        .status(status)
        .header(::http::header::CONTENT_TYPE, "application/json")
        .header(::http::header::CACHE_CONTROL, "no-store")
        .body(Body::Text(body))
        .expect("static status and header names are valid")
}

/// The contract's JSON error response for `err`, with its required headers.
pub fn error_response(err: &ApiError) -> Response<Body> {
    let mut response = json_response(err.status(), &err.body());
    for (name, value) in err.headers() {
        if let Ok(value) = ::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// 200 with `body`, or the error response.
pub fn respond(result: Result<impl Serialize, ApiError>) -> Response<Body> {
    match result {
        Ok(body) => json_response(::http::StatusCode::OK, &body),
        Err(err) => error_response(&err),
    }
}

/// Largest body a bearer endpoint accepts. They take no body (the client sends none); a small one
/// such as `{}` is tolerated and ignored, anything larger is 413 before the token is looked at.
pub const MAX_BEARER_BODY_BYTES: usize = 1024;

/// API Gateway's route key of the catch-all route, which only unknown paths reach.
const CATCH_ALL_ROUTE: &str = "$default";

/// Checks that `req` reached its own route: a request the API routed through its catch-all
/// (`$default`: no such path) is 404, any method but `allowed` is 405 with an `Allow` header.
pub fn require_route(req: &Request, allowed: ::http::Method) -> Result<(), ApiError> {
    if route_key(req) == Some(CATCH_ALL_ROUTE) {
        return Err(ApiError::NotFound);
    }
    if req.method() == allowed {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed { allow: allowed })
    }
}

/// The first steps of every bearer endpoint: its route and method ([`require_route`]), the body
/// cap ([`MAX_BEARER_BODY_BYTES`], 413), then the token (401). Returns the caller.
pub async fn bearer_request(
    app: &App,
    req: &Request,
    allowed: ::http::Method,
) -> Result<Caller, ApiError> {
    require_route(req, allowed)?;
    if req.body().len() > MAX_BEARER_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    app.auth.authenticate(req.headers()).await
}

/// The JSON object of `req`'s body: `T::default()` for an empty body (or one of whitespace
/// only: the shipped client sends none), 400 `INVALID_BODY` for anything that is not a `T`.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(req: &Request) -> Result<T, ApiError> {
    let body: &[u8] = req.body().as_ref();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|_| ApiError::InvalidBody)
}

fn route_key(req: &Request) -> Option<&str> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref(),
        _ => None,
    }
}

/// Time kept back from the invocation's deadline to write the answer and its log lines.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// API Gateway's HTTP API waits at most 30 s for an integration, then answers the client with
/// its own error: every handler answers before.
pub const GATEWAY_BUDGET: Duration = Duration::from_secs(29);

/// How long the handler of `req` may run: until [`DEADLINE_MARGIN`] before the deadline the
/// Lambda runtime gave the invocation, and never beyond [`GATEWAY_BUDGET`].
pub fn time_budget(req: &Request) -> Duration {
    let deadline_ms = req
        .lambda_context_ref()
        .map_or(0, |context| context.deadline);
    if deadline_ms == 0 {
        return GATEWAY_BUDGET; // no Lambda deadline: the local API
    }
    crate::time_until(deadline_ms)
        .saturating_sub(DEADLINE_MARGIN)
        .min(GATEWAY_BUDGET)
}

/// Runs `handler` inside a `request` span carrying the route, the request id and, once
/// authenticated, the user-id hash (see [`crate::auth`]), so every log line of the request has
/// them, within its [`time_budget`]: a handler still running then (a dependency hangs, retries
/// run long) is dropped and the answer is the contract's 503 `DEADLINE_EXCEEDED`, before Lambda
/// or API Gateway would cut it off with their own, non-JSON errors. Every write the handlers make
/// is conditional or idempotent, so a dropped handler leaves nothing a retry cannot finish.
/// Then writes the one access line of the request: status and latency.
pub async fn access_logged(
    route: &'static str,
    req: &Request,
    handler: impl Future<Output = Response<Body>>,
) -> Response<Body> {
    let span = tracing::info_span!(
        "request",
        route,
        request_id = %request_id(req),
        user = tracing::field::Empty
    );
    let started = Instant::now();
    let budget = time_budget(req);
    let response = match tokio::time::timeout(budget, handler.instrument(span.clone())).await {
        Ok(response) => response,
        Err(_) => {
            let ms = budget.as_millis() as u64;
            span.in_scope(|| tracing::error!(budget_ms = ms, "deadline reached; answering 503"));
            error_response(&ApiError::DeadlineExceeded)
        }
    };
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            "request"
        )
    });
    response
}

/// API Gateway's request id, else the Lambda invocation's, else `-` (local runs).
fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) if ctx.request_id.is_some() => {
            ctx.request_id.clone().unwrap_or_default()
        }
        _ => req
            .lambda_context_ref()
            .map_or_else(|| "-".to_owned(), |ctx| ctx.request_id.clone()),
    }
}
