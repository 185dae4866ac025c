//! Any `Authorization` header value through the HS256 verifier: header parsing, JWT decoding,
//! claims validation. It must answer (almost always 401), never panic.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use common::auth::Authenticator;
use common::config::{JwtConfig, JwtKeys};
use libfuzzer_sys::fuzz_target;

static AUTH: LazyLock<Authenticator> = LazyLock::new(|| {
    let config = JwtConfig {
        keys: JwtKeys::Hs256Secret("fuzzing-secret-0123456789abcdef0123".into()),
        issuer: "https://fuzz.supabase.co/auth/v1".into(),
        audience: "authenticated".into(),
    };
    Authenticator::new(&config, Duration::from_millis(10))
});

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
});

fuzz_target!(|data: &[u8]| {
    let Ok(value) = http::HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    let outcome = RUNTIME.block_on(AUTH.authenticate(&headers));
    assert!(outcome.is_err(), "a forged token was accepted");
});
