use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const SECRET: &str = "test-secret-0123456789abcdef0123456789";
const ISSUER: &str = "https://proj.supabase.co/auth/v1";
const USER: &str = "4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10";
const JWKS: &str = crate::testing::JWKS;
const ES_PUBLIC: &str = crate::testing::ES256_PUBLIC_PEM;

fn now() -> i64 {
    crate::unix_now()
}

fn claims() -> Value {
    crate::testing::claims(USER, ISSUER)
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn hs256(claims: &Value) -> String {
    crate::testing::hs256(claims, SECRET)
}

fn es256(claims: &Value, kid: &str) -> String {
    crate::testing::es256(claims, Some(kid))
}

fn rs256(claims: &Value, kid: &str) -> String {
    crate::testing::rs256(claims, Some(kid))
}

fn config(keys: JwtKeys) -> JwtConfig {
    JwtConfig {
        keys,
        issuer: ISSUER.into(),
        audience: "authenticated".into(),
    }
}

fn hs_auth() -> Authenticator {
    Authenticator::new(
        &config(JwtKeys::Hs256Secret(SECRET.into())),
        Duration::from_secs(2),
    )
}

async fn jwks_server(body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    server
}

fn jwks_auth(server: &MockServer) -> Authenticator {
    let url = format!("{}/jwks.json", server.uri());
    Authenticator::new(&config(JwtKeys::JwksUrl(url)), Duration::from_millis(500))
}

fn bearer(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(value).unwrap(),
    );
    headers
}

async fn check(auth: &Authenticator, header_value: &str) -> Result<UserId, ApiError> {
    auth.authenticate(&bearer(header_value))
        .await
        .map(|caller| caller.user)
}

#[tokio::test]
async fn an_anonymous_sign_in_is_told_apart_by_its_claim() {
    let auth = hs_auth();
    let signed_in = auth.verify(&hs256(&claims())).await.unwrap();
    assert!(!signed_in.anonymous);
    let token = hs256(&with(claims(), "is_anonymous", Value::Bool(true)));
    let anonymous = auth.verify(&token).await.unwrap();
    assert!(anonymous.anonymous);
    assert_eq!(anonymous.user, signed_in.user);
    let explicit = hs256(&with(claims(), "is_anonymous", Value::Bool(false)));
    assert!(!auth.verify(&explicit).await.unwrap().anonymous);
}

#[tokio::test]
async fn valid_hs256_token_identifies_the_user() {
    let user = check(&hs_auth(), &format!("Bearer {}", hs256(&claims())))
        .await
        .unwrap();
    assert_eq!(user.as_str(), USER);
    let lower = check(&hs_auth(), &format!("bearer {}", hs256(&claims())))
        .await
        .unwrap();
    assert_eq!(lower, user);
}

#[tokio::test]
async fn missing_header_is_unauthorized() {
    assert_eq!(
        hs_auth().authenticate(&HeaderMap::new()).await,
        Err(ApiError::MissingToken)
    );
}

#[tokio::test]
async fn wrong_scheme_garbage_and_empty_tokens_are_invalid() {
    let token = hs256(&claims());
    for value in [
        format!("Basic {token}"),
        token.clone(),
        "Bearer ".into(),
        "Bearer not.a.jwt".into(),
        "Bearer %%%".into(),
        format!("Bearer {token}.extra"),
    ] {
        assert_eq!(
            check(&hs_auth(), &value).await,
            Err(ApiError::InvalidToken),
            "{value}"
        );
    }
}

#[tokio::test]
async fn bad_signature_is_invalid() {
    let token = hs256(&claims());
    let (signed, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
    assert_eq!(
        check(&hs_auth(), &format!("Bearer {forged}")).await,
        Err(ApiError::InvalidToken)
    );

    let other = crate::testing::sign(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"another-secret-0123456789abcdef0123"),
    );
    assert_eq!(
        check(&hs_auth(), &format!("Bearer {other}")).await,
        Err(ApiError::InvalidToken)
    );
}

#[tokio::test]
async fn modified_claims_under_a_valid_signature_are_invalid() {
    let token = hs256(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let other_user = with(
        claims(),
        "sub",
        json!("0d6f7e9a-1111-4222-8333-444455556666"),
    );
    let payload = URL_SAFE_NO_PAD.encode(other_user.to_string());
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    assert_eq!(
        check(&hs_auth(), &format!("Bearer {tampered}")).await,
        Err(ApiError::InvalidToken)
    );
}

#[tokio::test]
async fn expired_token_is_token_expired_beyond_the_leeway() {
    let expired = with(claims(), "exp", json!(now() - 120));
    let err = check(&hs_auth(), &format!("Bearer {}", hs256(&expired))).await;
    assert_eq!(err, Err(ApiError::TokenExpired));

    let within_leeway = with(claims(), "exp", json!(now() - 30));
    assert!(
        check(&hs_auth(), &format!("Bearer {}", hs256(&within_leeway)))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn not_yet_valid_token_is_invalid() {
    let future = with(claims(), "nbf", json!(now() + 600));
    let err = check(&hs_auth(), &format!("Bearer {}", hs256(&future))).await;
    assert_eq!(err, Err(ApiError::InvalidToken));
}

#[tokio::test]
async fn wrong_audience_or_issuer_is_invalid() {
    for bad in [
        with(claims(), "aud", json!("service_role")),
        with(claims(), "aud", json!(["anon", "service_role"])),
        with(claims(), "iss", json!("https://evil.example/auth/v1")),
    ] {
        assert_eq!(
            check(&hs_auth(), &format!("Bearer {}", hs256(&bad))).await,
            Err(ApiError::InvalidToken),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn missing_or_malformed_claims_are_invalid() {
    let mut no_sub = claims();
    no_sub.as_object_mut().unwrap().remove("sub");
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    for bad in [
        no_sub,
        no_exp,
        with(claims(), "sub", json!("")),
        with(claims(), "sub", json!("../../admin")),
    ] {
        assert_eq!(
            check(&hs_auth(), &format!("Bearer {}", hs256(&bad))).await,
            Err(ApiError::InvalidToken),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn alg_none_is_rejected_in_any_casing() {
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        let token = format!("Bearer {header}.{payload}.");
        assert_eq!(
            check(&hs_auth(), &token).await,
            Err(ApiError::InvalidToken),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn oversized_token_is_rejected() {
    let token = format!("Bearer {}", "a".repeat(64 * 1024));
    assert_eq!(check(&hs_auth(), &token).await, Err(ApiError::InvalidToken));
}

#[tokio::test]
async fn valid_es256_and_rs256_tokens_verify_through_the_jwks() {
    let server = jwks_server(JWKS).await;
    let auth = jwks_auth(&server);
    let user = check(
        &auth,
        &format!("Bearer {}", es256(&claims(), "es256-test-key")),
    )
    .await;
    assert_eq!(user.unwrap().as_str(), USER);
    let user = check(
        &auth,
        &format!("Bearer {}", rs256(&claims(), "rs256-test-key")),
    )
    .await;
    assert_eq!(user.unwrap().as_str(), USER);
    // Cached across calls: one fetch served both tokens.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let server = jwks_server(JWKS).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("es256-test-key".into());
    let token = crate::testing::sign(
        &header,
        &claims(),
        &EncodingKey::from_secret(ES_PUBLIC.as_bytes()),
    );
    let err = check(&jwks_auth(&server), &format!("Bearer {token}")).await;
    assert_eq!(err, Err(ApiError::InvalidToken));
}

#[tokio::test]
async fn key_of_another_algorithm_is_rejected() {
    let server = jwks_server(JWKS).await;
    // An ES256 signature presented under the RSA key's kid.
    let token = es256(&claims(), "rs256-test-key");
    assert_eq!(
        check(&jwks_auth(&server), &format!("Bearer {token}")).await,
        Err(ApiError::InvalidToken)
    );
}

#[tokio::test]
async fn unknown_kid_refetches_once_then_is_rate_limited() {
    let server = jwks_server(JWKS).await;
    let auth = jwks_auth(&server);
    assert!(
        check(
            &auth,
            &format!("Bearer {}", es256(&claims(), "es256-test-key"))
        )
        .await
        .is_ok()
    );
    for kid in ["rotated-key", "../../etc/passwd", "another"] {
        let token = es256(&claims(), kid);
        assert_eq!(
            check(&auth, &format!("Bearer {token}")).await,
            Err(ApiError::InvalidToken)
        );
    }
    // First fetch, plus at most one refetch inside MIN_REFETCH_INTERVAL.
    assert!(server.received_requests().await.unwrap().len() <= 2);
    let no_kid = crate::testing::es256(&claims(), None);
    assert_eq!(
        check(&auth, &format!("Bearer {no_kid}")).await,
        Err(ApiError::InvalidToken)
    );
}

#[tokio::test]
async fn a_revoked_key_stops_verifying_once_the_cached_keys_age() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    // The provider then revokes the ES256 key: only the RS256 key is published.
    let mut revoked: Value = serde_json::from_str(JWKS).unwrap();
    revoked["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != "es256-test-key");
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(revoked))
        .mount(&server)
        .await;
    let url = format!("{}/jwks.json", server.uri());
    let age = Duration::from_millis(200);
    let cache = JwksCache::new(url, Duration::from_millis(500)).with_timing(age, age);

    assert!(cache.key("es256-test-key", Algorithm::ES256).await.is_ok());
    assert!(
        cache.key("es256-test-key", Algorithm::ES256).await.is_ok(),
        "cached"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    tokio::time::sleep(age * 2).await;
    assert_eq!(
        cache.key("es256-test-key", Algorithm::ES256).await.err(),
        Some(ApiError::InvalidToken),
        "refreshed past its age: the revoked key is gone"
    );
    assert!(cache.key("rs256-test-key", Algorithm::RS256).await.is_ok());
}

#[tokio::test]
async fn a_flood_of_unknown_kids_delays_a_rotated_key_by_one_interval_at_most() {
    let server = MockServer::start().await;
    let mut before: Value = serde_json::from_str(JWKS).unwrap();
    before["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != "es256-test-key");
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(before))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JWKS))
        .mount(&server)
        .await;
    let url = format!("{}/jwks.json", server.uri());
    let interval = Duration::from_millis(300);
    let cache = std::sync::Arc::new(
        JwksCache::new(url, Duration::from_millis(500)).with_timing(jwks::MAX_KEY_AGE, interval),
    );
    // An attacker's flood of made-up kids, at once.
    let flood: Vec<_> = (0..100)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.key(&format!("made-up-{i}"), Algorithm::ES256).await })
        })
        .collect();
    for attempt in flood {
        assert_eq!(attempt.await.unwrap().err(), Some(ApiError::InvalidToken));
    }
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "one fetch"
    );
    // The provider rotates in a new key now: it verifies after one interval at most.
    tokio::time::sleep(interval).await;
    assert!(cache.key("es256-test-key", Algorithm::ES256).await.is_ok());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn jwks_down_or_garbage_is_auth_unavailable_not_a_panic() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let token = format!("Bearer {}", es256(&claims(), "es256-test-key"));
    assert_eq!(
        check(&jwks_auth(&server), &token).await,
        Err(ApiError::AuthUnavailable)
    );

    let garbage = jwks_server("{ not json").await;
    assert_eq!(
        check(&jwks_auth(&garbage), &token).await,
        Err(ApiError::AuthUnavailable)
    );

    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(JWKS)
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&slow)
        .await;
    let started = std::time::Instant::now();
    assert_eq!(
        check(&jwks_auth(&slow), &token).await,
        Err(ApiError::AuthUnavailable)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the JWKS fetch is bounded by its timeout"
    );
}

#[tokio::test]
async fn jwks_ignores_symmetric_keys() {
    let oct = json!({"keys": [{"kty": "oct", "kid": "es256-test-key", "k": URL_SAFE_NO_PAD.encode(SECRET)}]});
    let server = jwks_server(&oct.to_string()).await;
    let token = format!("Bearer {}", es256(&claims(), "es256-test-key"));
    assert_eq!(
        check(&jwks_auth(&server), &token).await,
        Err(ApiError::AuthUnavailable)
    );
}
