//! Any invocation payload through `lambda_http`'s API Gateway v2 conversion, then, if it is a
//! request, through the status handler on the embedded store: routing, method, body cap, auth.
//!
//! `lambda_http` panics by design on events API Gateway never sends (`Body::from_maybe_encoded`
//! and the request builder `expect` well-formed input; in a Lambda the runtime's panic layer turns
//! them into a failed invocation, never a dead process). This target found two in its first
//! minutes: a `true` `isBase64Encoded` over a body that is not base64, and an `x-forwarded-proto`
//! that is no URI scheme. So each input is first made what API Gateway (HTTP API, payload v2)
//! would send: the fields API Gateway sets itself (version, scheme, host, stage, the base64 flag)
//! are set as it sets them, and a path that no HTTP request line could carry is skipped.
#![no_main]

use std::sync::{Arc, LazyLock};

use common::App;
use common::config::Config;
use common::store::MemoryStore;
use libfuzzer_sys::fuzz_target;

static APP: LazyLock<App> = LazyLock::new(|| {
    let config = Config::from_lookup(|name| {
        match name {
            "TABLE_NAME" => Some("fuzz"),
            "AWS_REGION" => Some("us-east-1"),
            "JWT_HS256_SECRET" => Some("fuzzing-secret-0123456789abcdef0123"),
            "JWT_ISSUER" => Some("https://fuzz.supabase.co/auth/v1"),
            _ => None,
        }
        .map(str::to_owned)
    })
    .expect("fuzzing configuration is valid");
    App::new(config, Arc::new(MemoryStore::new()), None)
});

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(event) = as_api_gateway_would_send(text) else {
        return;
    };
    let Ok(request) = lambda_http::request::from_str(&event) else {
        return;
    };
    let response = RUNTIME.block_on(user_status::handle(&APP, request));
    assert_ne!(response.status(), 200, "no valid token can be forged here");
});

fn as_api_gateway_would_send(text: &str) -> Option<String> {
    use base64::Engine;
    let mut event: serde_json::Value = serde_json::from_str(text).ok()?;
    let object = event.as_object_mut()?;
    object.insert("version".into(), "2.0".into());
    let headers = object
        .entry("headers")
        .or_insert_with(|| serde_json::json!({}));
    let headers = headers.as_object_mut()?;
    headers.insert("x-forwarded-proto".into(), "https".into());
    headers.insert("host".into(), "api.example.com".into());
    let context = object.get_mut("requestContext")?.as_object_mut()?;
    context.insert("domainName".into(), "api.example.com".into());
    context.insert("stage".into(), "$default".into());
    let body_is_base64 = object
        .get("body")
        .and_then(|b| b.as_str())
        .is_some_and(|body| {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .is_ok()
        });
    if object.get("isBase64Encoded") == Some(&true.into()) && !body_is_base64 {
        object.insert("isBase64Encoded".into(), false.into());
    }
    let path = object
        .get("rawPath")
        .and_then(|p| p.as_str())
        .unwrap_or("/");
    let query = object
        .get("rawQueryString")
        .and_then(|q| q.as_str())
        .unwrap_or("");
    let target = format!("{path}?{query}");
    if !path.starts_with('/') || target.parse::<http::uri::PathAndQuery>().is_err() {
        return None;
    }
    Some(event.to_string())
}
