//! Criterion benchmarks of the hot paths: `./scripts/bench` runs them (or
//! `cargo bench -p integration-tests --bench hot_paths`).

use std::sync::Arc;
use std::time::Duration;

use common::App;
use common::auth::Authenticator;
use common::config::{JwtConfig, JwtKeys};
use common::store::{MemoryStore, Store};
use common::webhook::event::Event;
use common::webhook::signature;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789";
const ISSUER: &str = "https://bench.supabase.co/auth/v1";
const USER: &str = "4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10";
const ES_PRIVATE: &str = include_str!("../../crates/common/testdata/es256-private.pem");
const JWKS: &str = include_str!("../../crates/common/testdata/jwks.json");

fn claims() -> serde_json::Value {
    json!({"sub": USER, "aud": "authenticated", "iss": ISSUER, "exp": common::unix_now() + 3600})
}

fn auth(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jwt = |keys| JwtConfig {
        keys,
        issuer: ISSUER.into(),
        audience: "authenticated".into(),
    };

    let hs = Authenticator::new(
        &jwt(JwtKeys::Hs256Secret(SECRET.into())),
        Duration::from_secs(2),
    );
    let hs_token = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    c.bench_function("auth/hs256", |b| {
        b.to_async(&runtime).iter(|| hs.verify(&hs_token))
    });

    let server = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(JWKS))
            .mount(&server)
            .await;
        server
    });
    let es = Authenticator::new(
        &jwt(JwtKeys::JwksUrl(format!("{}/jwks.json", server.uri()))),
        Duration::from_secs(2),
    );
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("es256-test-key".into());
    let es_token = encode(
        &header,
        &claims(),
        &EncodingKey::from_ec_pem(ES_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    runtime
        .block_on(es.verify(&es_token))
        .expect("JWKS fetched and cached");
    c.bench_function("auth/es256 (cached JWKS)", |b| {
        b.to_async(&runtime).iter(|| es.verify(&es_token))
    });
}

fn status_handler(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = common::config::Config::from_lookup(|name| {
        match name {
            "TABLE_NAME" => Some("bench"),
            "AWS_REGION" => Some("us-east-1"),
            "JWT_HS256_SECRET" => Some(SECRET),
            "JWT_ISSUER" => Some(ISSUER),
            _ => None,
        }
        .map(str::to_owned)
    })
    .unwrap();
    let app = App::new(config, Arc::new(MemoryStore::new()) as Arc<dyn Store>, None);
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let mut event = integration_tests::binaries::event("user-status.json");
    event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    let event = event.to_string();
    // The record exists after the first call: the common path.
    runtime.block_on(user_status::handle(
        &app,
        lambda_http::request::from_str(&event).unwrap(),
    ));
    c.bench_function(
        "user-status handler (embedded store, HS256, event parsed)",
        |b| {
            b.to_async(&runtime)
                .iter(|| user_status::handle(&app, lambda_http::request::from_str(&event).unwrap()))
        },
    );
}

fn webhook(c: &mut Criterion) {
    let body = json!({"id": "evt_bench", "type": "invoice.paid", "data": {"object": {"padding": "x".repeat(10 * 1024)}}})
        .to_string();
    let now = common::unix_now();
    let header = signature::sign(body.as_bytes(), "whsec_bench", now);
    c.bench_function("webhook signature (10 KiB body)", |b| {
        b.iter(|| {
            signature::verify(Some(header.as_bytes()), body.as_bytes(), "whsec_bench", now).unwrap()
        })
    });

    let mut invoice = integration_tests::stripe_stub::fixture("invoice");
    invoice["parent"] = json!({"subscription_details": {"subscription": "sub_1"}});
    let event = integration_tests::apps::event("evt_bench", "invoice.paid", invoice).to_string();
    c.bench_function("webhook event parsing (invoice.paid fixture)", |b| {
        b.iter(|| {
            Event::parse(event.as_bytes())
                .unwrap()
                .subscription_invoice()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = auth, status_handler, webhook
}
criterion_main!(benches);
