//! The hostile-token suite: crafted access tokens sent to `GET /v1/user/status` through its real
//! handler, in both key modes (HS256 secret, JWKS with ES256/RS256). Each must get 401 with the
//! contract's body and a `WWW-Authenticate: Bearer` challenge, create no record, and appear in no
//! log line, at any level. A valid token of each mode passes last, so a refusal for the wrong
//! reason (a broken setup) fails the suite.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::App;
use common::domain::UserId;
use common::store::Store;
use common::testing;
use integration_tests::apps::{self, parts};
use integration_tests::tokens::{EVENTS_ISSUER, EVENTS_SECRET, claims, hs256};
use integration_tests::{emulator, tokens};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ES_PRIVATE: &str = include_str!("../../crates/common/testdata/es256-private.pem");
const ES_PUBLIC: &str = include_str!("../../crates/common/testdata/es256-public.pem");
const RS_PRIVATE: &str = include_str!("../../crates/common/testdata/rs256-private.pem");
const RS_PUBLIC: &str = include_str!("../../crates/common/testdata/rs256-public.pem");
const JWKS: &str = include_str!("../../crates/common/testdata/jwks.json");
const ES_KID: &str = "es256-test-key";
const RS_KID: &str = "rs256-test-key";

/// Every log line written while the suite runs, JSON as in production, all levels.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A token with any header, claims and signature segment, signed by nobody.
fn unsigned(header: Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(&header), b64(claims))
}

fn signed(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    testing::sign(&header, claims, key)
}

fn with(mut claims: Value, edits: Value) -> Value {
    for (key, value) in edits.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

/// The token's payload swapped for `claims`, keeping its header and signature.
fn resealed(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], b64(claims), parts[2])
}

/// Crafted tokens against the HS256 deployment, each named for the attack it tries.
fn hs256_attacks(victim: &str) -> Vec<(String, String)> {
    let good = claims(victim, EVENTS_ISSUER);
    let now = common::unix_now();
    let secret = EncodingKey::from_secret(EVENTS_SECRET.as_bytes());
    let valid = hs256(&good, EVENTS_SECRET);
    let valid_signature = valid.rsplit('.').next().unwrap().to_owned();
    let claims_with = |edits: Value| hs256(&with(good.clone(), edits), EVENTS_SECRET);
    let mut attacks: Vec<(String, String)> = ["none", "None", "NONE", "nOnE"]
        .into_iter()
        .map(|alg| {
            let token = unsigned(json!({"alg": alg, "typ": "JWT"}), &good, "");
            (format!("alg {alg}, no signature"), token)
        })
        .collect();
    attacks.extend([
        (
            "alg none carrying a valid signature".to_owned(),
            unsigned(json!({"alg": "none"}), &good, &valid_signature),
        ),
        (
            "HS512 with the right secret (not allow-listed)".to_owned(),
            signed(Algorithm::HS512, None, &good, &secret),
        ),
        (
            "HS256 with another secret".to_owned(),
            hs256(&good, "an-attackers-guess-of-the-secret-0000"),
        ),
        (
            "RS256 in HS256 mode".to_owned(),
            signed(
                Algorithm::RS256,
                Some(RS_KID),
                &good,
                &EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).unwrap(),
            ),
        ),
        (
            "expired an hour ago".to_owned(),
            claims_with(json!({"exp": now - 3600, "iat": now - 7200})),
        ),
        (
            "not valid for another hour (nbf)".to_owned(),
            claims_with(json!({"nbf": now + 3600})),
        ),
        ("without exp".to_owned(), claims_with(json!({"exp": null}))),
        (
            "exp that is not a number".to_owned(),
            claims_with(json!({"exp": "never"})),
        ),
        (
            "another issuer".to_owned(),
            claims_with(json!({"iss": "https://evil.example/auth/v1"})),
        ),
        ("without iss".to_owned(), claims_with(json!({"iss": null}))),
        ("aud anon".to_owned(), claims_with(json!({"aud": "anon"}))),
        (
            "aud as a list of wrong values".to_owned(),
            claims_with(json!({"aud": ["anon", "service_role"]})),
        ),
        ("without aud".to_owned(), claims_with(json!({"aud": null}))),
        ("empty sub".to_owned(), claims_with(json!({"sub": ""}))),
        (
            "sub that is not a UUID".to_owned(),
            claims_with(json!({"sub": "admin"})),
        ),
        (
            "sub with a path in it".to_owned(),
            claims_with(json!({"sub": format!("{victim}/../other")})),
        ),
        ("without sub".to_owned(), claims_with(json!({"sub": null}))),
        (
            "64 KiB token, validly signed".to_owned(),
            claims_with(json!({"padding": "p".repeat(64 * 1024)})),
        ),
        (
            "bad base64 in the header".to_owned(),
            format!("!!!{}", &valid[3..]),
        ),
        (
            "bad base64 in the signature".to_owned(),
            format!("{}***", &valid[..valid.len() - 3]),
        ),
        ("an extra segment".to_owned(), format!("{valid}.e30")),
        (
            "two segments".to_owned(),
            valid.rsplit_once('.').unwrap().0.to_owned(),
        ),
        (
            "header that is not JSON".to_owned(),
            format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode("not json"),
                valid.split_once('.').unwrap().1
            ),
        ),
        (
            "valid signature over another user's claims".to_owned(),
            resealed(&valid, &claims(&tokens::new_user(), EVENTS_ISSUER)),
        ),
        (
            "valid signature over a later exp".to_owned(),
            resealed(&valid, &with(good.clone(), json!({"exp": now + 864000}))),
        ),
    ]);
    attacks
}

/// Crafted tokens against the JWKS deployment; `attacker` serves the attacker's own JWKS.
fn jwks_attacks(victim: &str, attacker: &str) -> Vec<(String, String)> {
    let good = claims(victim, EVENTS_ISSUER);
    let es_key = EncodingKey::from_ec_pem(ES_PRIVATE.as_bytes()).unwrap();
    let rs_key = EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).unwrap();
    let valid = signed(Algorithm::ES256, Some(ES_KID), &good, &es_key);
    let with_header = |edit: &dyn Fn(&mut Header)| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("attacker-key".into());
        edit(&mut header);
        testing::sign(&header, &good, &rs_key)
    };
    vec![
        (
            "HS256 signed with the ES256 public key".to_owned(),
            signed(
                Algorithm::HS256,
                Some(ES_KID),
                &good,
                &EncodingKey::from_secret(ES_PUBLIC.as_bytes()),
            ),
        ),
        (
            "HS256 signed with the RS256 public key".to_owned(),
            signed(
                Algorithm::HS256,
                Some(RS_KID),
                &good,
                &EncodingKey::from_secret(RS_PUBLIC.as_bytes()),
            ),
        ),
        (
            "alg none with a known kid".to_owned(),
            unsigned(json!({"alg": "none", "kid": ES_KID}), &good, ""),
        ),
        (
            "kid path traversal".to_owned(),
            signed(
                Algorithm::ES256,
                Some("../../../../etc/passwd"),
                &good,
                &es_key,
            ),
        ),
        (
            "kid pointing nowhere".to_owned(),
            signed(Algorithm::ES256, Some("no-such-key"), &good, &es_key),
        ),
        (
            "no kid".to_owned(),
            signed(Algorithm::ES256, None, &good, &es_key),
        ),
        (
            "ES256 naming the RSA key's kid".to_owned(),
            signed(Algorithm::ES256, Some(RS_KID), &good, &es_key),
        ),
        (
            "jku to the attacker's JWKS".to_owned(),
            with_header(&|h| h.jku = Some(format!("{attacker}/jwks.json"))),
        ),
        (
            "x5u to the attacker's certificate".to_owned(),
            with_header(&|h| h.x5u = Some(format!("{attacker}/cert.pem"))),
        ),
        (
            "valid ES256 signature over another user's claims".to_owned(),
            resealed(&valid, &claims(&tokens::new_user(), EVENTS_ISSUER)),
        ),
        (
            "ES256 with the wrong audience".to_owned(),
            signed(
                Algorithm::ES256,
                Some(ES_KID),
                &with(good.clone(), json!({"aud": "anon"})),
                &es_key,
            ),
        ),
    ]
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

async fn status_with_token(app: &App, token: &str) -> (u16, http::HeaderMap, Value) {
    let req = apps::request_bearing("user-status.json", token);
    parts(integration_tests::apps::handle("user-status", app, req).await)
}

/// Sends every attack to `app`: each is a 401 with the contract body and a Bearer challenge.
async fn assert_all_refused(app: &App, attacks: &[(String, String)]) {
    for (name, token) in attacks {
        let (status, headers, body) = status_with_token(app, token).await;
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let expected = if name.starts_with("expired") {
            "TOKEN_EXPIRED"
        } else {
            "INVALID_TOKEN"
        };
        assert_eq!((status, code), (401, expected), "{name}: {body}");
        assert_eq!(body["detail"], body["error"]["message"], "{name}");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer "), "{name}: {challenge}");
    }
}

/// No log line holds a token, its payload or its signature.
fn assert_never_logged(logs: &str, attacks: &[(String, String)]) {
    for (name, token) in attacks {
        let segments = token.split('.').filter(|s| s.len() >= 16);
        for needle in std::iter::once(token.as_str()).chain(segments.skip(1)) {
            assert!(!logs.contains(needle), "{name}: logged");
        }
    }
}

#[tokio::test]
async fn thirty_plus_crafted_tokens_are_401_unlogged_and_create_nothing() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_current_span(true)
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let victim = tokens::new_user();
    let victim_id = UserId::parse(&victim).unwrap();

    let hs_app = apps::app(store.clone(), None);
    let hs_attacks = hs256_attacks(&victim);
    assert_all_refused(&hs_app, &hs_attacks).await;

    let jwks = jwks_server(JWKS).await;
    let attacker = jwks_server(&JWKS.replace(RS_KID, "attacker-key")).await;
    let jwks_app = apps::jwks_app(store.clone(), format!("{}/jwks.json", jwks.uri()));
    let jwks_attacks = jwks_attacks(&victim, &attacker.uri());
    assert_all_refused(&jwks_app, &jwks_attacks).await;

    let attacks: Vec<_> = hs_attacks.into_iter().chain(jwks_attacks).collect();
    assert!(attacks.len() >= 30, "{} attacks", attacks.len());
    assert_eq!(store.get_user(&victim_id).await.unwrap(), None);
    assert!(
        attacker.received_requests().await.unwrap().is_empty(),
        "jku/x5u were followed"
    );
    let text = logs.text();
    let refusals = text.matches(r#""status":401"#).count();
    assert_eq!(refusals, attacks.len(), "one access line per request");
    assert_never_logged(&text, &attacks);

    // The same setups accept the real thing, so every refusal above was for its attack.
    let good = claims(&victim, EVENTS_ISSUER);
    let (status, _, _) = status_with_token(&hs_app, &hs256(&good, EVENTS_SECRET)).await;
    assert_eq!(status, 200);
    let es = tokens::es256(&good, Some(ES_KID));
    let (status, _, body) = status_with_token(&jwks_app, &es).await;
    assert_eq!((status, body["credits_remaining"].as_i64()), (200, Some(0)));
    assert!(store.get_user(&victim_id).await.unwrap().is_some());
    assert_never_logged(&logs.text(), &[("valid ES256".to_owned(), es)]);
}
