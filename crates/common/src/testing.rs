//! One source of test identities and settings, for every crate's tests, the benches and the
//! local API's demo tokens (feature `test-util`; no Lambda enables it): access tokens shaped like
//! the auth provider's, signed with the keys in `testdata/`, and a valid configuration.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::config::Config;

/// The development HS256 secret the sample events in `events/` are signed with.
pub const EVENTS_SECRET: &str = "local-development-secret-do-not-deploy-0001";
/// The issuer of the sample events' tokens.
pub const EVENTS_ISSUER: &str = "https://example.supabase.co/auth/v1";
/// The user of the sample events' tokens.
pub const EVENTS_USER: &str = "6f1c2a9e-3b7d-4e21-9c5a-8d0f1e2b3c4d";
/// The test ES256 key's id in `testdata/jwks.json`.
pub const ES256_KID: &str = "es256-test-key";
/// The test RS256 key's id in `testdata/jwks.json`.
pub const RS256_KID: &str = "rs256-test-key";
/// The public JWKS holding the test ES256 and RS256 keys.
pub const JWKS: &str = include_str!("../testdata/jwks.json");
/// The test ES256 key's public half, PEM.
pub const ES256_PUBLIC_PEM: &str = include_str!("../testdata/es256-public.pem");

const ES256_PRIVATE_PEM: &[u8] = include_bytes!("../testdata/es256-private.pem");
const RS256_PRIVATE_PEM: &[u8] = include_bytes!("../testdata/rs256-private.pem");

/// Claims of `sub`'s access token from `issuer`, valid for `lifetime_secs` from now.
pub fn claims_for(sub: &str, issuer: &str, lifetime_secs: i64) -> Value {
    let now = crate::unix_now();
    json!({
        "sub": sub,
        "aud": crate::config::DEFAULT_JWT_AUDIENCE,
        "iss": issuer,
        "iat": now,
        "exp": now + lifetime_secs,
        "role": "authenticated",
    })
}

/// Claims valid for an hour.
pub fn claims(sub: &str, issuer: &str) -> Value {
    claims_for(sub, issuer, 3600)
}

/// An HS256 token over `claims`.
pub fn hs256(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    sign(&Header::new(Algorithm::HS256), claims, &key)
}

/// An ES256 token over `claims`, signed with the test key and naming `kid`.
pub fn es256(claims: &Value, kid: Option<&str>) -> String {
    let key = EncodingKey::from_ec_pem(ES256_PRIVATE_PEM).expect("the test key is a PEM EC key");
    signed(Algorithm::ES256, kid, claims, &key)
}

/// An RS256 token over `claims`, signed with the test key and naming `kid`.
pub fn rs256(claims: &Value, kid: Option<&str>) -> String {
    let key = EncodingKey::from_rsa_pem(RS256_PRIVATE_PEM).expect("the test key is a PEM RSA key");
    signed(Algorithm::RS256, kid, claims, &key)
}

fn signed(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    sign(&header, claims, key)
}

/// A token with any `header` over `claims`, signed with `key`. Every test token goes through
/// here: it installs the service's crypto provider first, so the tokens are verified by the
/// same code as in the functions (`jsonwebtoken` keeps the first provider a process uses).
pub fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    crate::auth::crypto::install();
    encode(header, claims, key).expect("signing with the test keys cannot fail")
}

/// A fresh random user id.
pub fn new_user() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A valid configuration verifying the sample events' tokens ([`EVENTS_SECRET`],
/// [`EVENTS_ISSUER`]), with a table that is never reached unless a test sets `storage`.
pub fn config() -> Config {
    Config::from_lookup(|name| {
        match name {
            "TABLE_NAME" => Some("unused"),
            "AWS_REGION" => Some("us-east-1"),
            "JWT_HS256_SECRET" => Some(EVENTS_SECRET),
            "JWT_ISSUER" => Some(EVENTS_ISSUER),
            // Tests loop over one user's checkouts and syncs; the limit's own tests set theirs.
            "STRIPE_CALLS_PER_USER" => Some("10000"),
            _ => None,
        }
        .map(str::to_owned)
    })
    .expect("the test configuration is valid")
}
