//! Criterion benchmarks of the hot paths: `./scripts/bench` runs them (or
//! `cargo bench -p integration-tests --bench hot_paths`).

use std::sync::Arc;
use std::time::Duration;

use common::App;
use common::auth::Authenticator;
use common::config::{JwtConfig, JwtKeys};
use common::store::{MemoryStore, Store};
use common::testing::{
    ES256_KID, EVENTS_ISSUER as ISSUER, EVENTS_SECRET as SECRET, EVENTS_USER, JWKS, es256, hs256,
};
use common::webhook::event::Event;
use common::webhook::signature;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn claims() -> serde_json::Value {
    common::testing::claims(EVENTS_USER, ISSUER)
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
    let hs_token = hs256(&claims(), SECRET);
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
    let es_token = es256(&claims(), Some(ES256_KID));
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
    let config = common::testing::config();
    let app = App::new(config, Arc::new(MemoryStore::new()) as Arc<dyn Store>, None);
    let token = hs256(&claims(), SECRET);
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
                .customer()
                .map(str::len)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = auth, status_handler, webhook
}
criterion_main!(benches);
