//! Access tokens shaped like the auth provider's (Supabase: `sub` UUID, `aud`, `iss`, `exp`).

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

/// The development HS256 secret the sample events in `events/` are signed with.
pub const EVENTS_SECRET: &str = "local-development-secret-do-not-deploy-0001";
/// The issuer of the sample events' tokens.
pub const EVENTS_ISSUER: &str = "https://example.supabase.co/auth/v1";
/// The user of the sample events' tokens.
pub const EVENTS_USER: &str = "6f1c2a9e-3b7d-4e21-9c5a-8d0f1e2b3c4d";

/// Claims valid for an hour.
pub fn claims(sub: &str, issuer: &str) -> Value {
    let now = common::unix_now();
    json!({"sub": sub, "aud": "authenticated", "iss": issuer, "iat": now, "exp": now + 3600, "role": "authenticated"})
}

/// An HS256 token over `claims`.
pub fn hs256(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

/// A fresh random user id.
pub fn new_user() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The test ES256 key's id in `crates/common/testdata/jwks.json`.
pub const ES256_KID: &str = "es256-test-key";

/// An ES256 token over `claims`, signed with the test key and naming `kid`.
pub fn es256(claims: &Value, kid: Option<&str>) -> String {
    let key = EncodingKey::from_ec_pem(include_bytes!(
        "../../crates/common/testdata/es256-private.pem"
    ))
    .expect("the test key is a PEM EC key");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).expect("ES256 signing cannot fail")
}
