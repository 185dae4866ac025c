//! CORS as the stack's HTTP API answers it (`CorsConfiguration` in `template.yaml`), so that a
//! Flutter web build can call the local API: origins from `ALLOWED_ORIGINS` (comma-separated, as
//! the stack's `AllowedOrigins`; `*` for any), methods GET, POST and DELETE, headers
//! `authorization` and `content-type`, preflights cached 600 s. Without the setting, no origin is
//! allowed (a browser on another origin is refused, as by a stack that lists none).

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use lambda_http::Body;

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// The origins of `allowed` (the `ALLOWED_ORIGINS` value).
    pub fn new(allowed: Option<&str>) -> Cors {
        let origins = allowed.unwrap_or_default().split(',');
        let origins = origins.map(|o| o.trim().trim_end_matches('/').to_owned());
        Cors {
            origins: origins.filter(|o| !o.is_empty()).collect(),
        }
    }

    /// The request's `Origin`, if it is allowed.
    fn allowed<'h>(&self, headers: &'h HeaderMap) -> Option<&'h HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let named = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o == "*" || o == named)
            .then_some(origin)
    }

    /// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`): 204, with the
    /// CORS headers when its origin is allowed. `None` for any other request.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response<Body>> {
        let preflight = method == Method::OPTIONS
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if !preflight {
            return None;
        }
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let Some(origin) = self.allowed(headers) {
            let out = response.headers_mut();
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            let methods = HeaderValue::from_static("GET,POST,DELETE");
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
            let allowed = HeaderValue::from_static("authorization,content-type");
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
            out.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            out.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        Some(response)
    }

    /// Adds `Access-Control-Allow-Origin` to `response` when the request's origin is allowed.
    pub fn decorate(&self, headers: &HeaderMap, response: &mut Response<Body>) {
        if let Some(origin) = self.allowed(headers) {
            let out = response.headers_mut();
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            out.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}
