//! Any API Gateway HTTP API (payload v2) event through `lambda_http`'s conversion into a request,
//! then through the status handler on the embedded store: routing, method, body cap, auth.
//!
//! `lambda_http` panics by design on envelopes API Gateway never sends (`Body::from_maybe_encoded`
//! and the URI and request builders `unwrap` well-formed input; in a Lambda the runtime's panic
//! layer turns them into a failed invocation, never a dead process). This target found three in
//! its first minutes: a `true` `isBase64Encoded` over a body that is not base64, an
//! `x-forwarded-proto` that is no URI scheme, and a `Host` that is no authority. So each event is
//! first made what API Gateway would send: the fields it sets itself (scheme, host, stage, the
//! base64 flag) are set as it sets them, and a path no HTTP request line could carry is skipped.
#![no_main]

use std::sync::{Arc, LazyLock};

use common::App;
use common::config::Config;
use common::store::MemoryStore;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::LambdaRequest;
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
    // With timers, as the Lambda runtime's: every handler runs within its time budget.
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
});

fuzz_target!(|data: &[u8]| {
    let Ok(mut event) = serde_json::from_slice::<ApiGatewayV2httpRequest>(data) else {
        return;
    };
    if !as_api_gateway_sends(&mut event) {
        return;
    }
    let request = lambda_http::Request::from(LambdaRequest::ApiGatewayV2(event));
    let response = RUNTIME.block_on(user_status::handle(&APP, request));
    assert_ne!(response.status(), 200, "no valid token can be forged here");
});

/// Sets what API Gateway sets itself; false for a path no request line could carry.
fn as_api_gateway_sends(event: &mut ApiGatewayV2httpRequest) -> bool {
    use base64::Engine;
    let headers = &mut event.headers;
    headers.insert(
        http::header::HOST,
        http::HeaderValue::from_static("api.example.com"),
    );
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static("https"));
    event.request_context.domain_name = Some("api.example.com".into());
    event.request_context.stage = Some("$default".into());
    let body_is_base64 = event.body.as_deref().is_some_and(|body| {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .is_ok()
    });
    event.is_base64_encoded &= body_is_base64;
    let path = event.raw_path.as_deref().unwrap_or_default();
    let query = event.raw_query_string.as_deref().unwrap_or_default();
    let target = format!("/{}?{query}", path.strip_prefix('/').unwrap_or(path));
    (path.is_empty() || path.starts_with('/')) && target.parse::<http::uri::PathAndQuery>().is_ok()
}
