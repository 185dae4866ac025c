//! Turning handler results into API Gateway responses.

use lambda_http::{Body, Request, Response};
use serde::Serialize;

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

/// Rejects any method but `allowed` with 405 and an `Allow` header.
pub fn require_method(req: &Request, allowed: ::http::Method) -> Result<(), ApiError> {
    if req.method() == allowed {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed { allow: allowed })
    }
}
