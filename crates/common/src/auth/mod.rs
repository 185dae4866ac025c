//! Bearer-token authentication (see `docs/api.md`, "Identity").
//!
//! Tokens are JWTs from the hosted auth provider, signed either with a shared HS256
//! secret or with ES256/RS256 keys published as a JWKS. Only the algorithms of the
//! configured key source are accepted, so `none` and HS256-with-a-public-key never pass.

pub(crate) mod crypto;
mod jwks;

use std::time::Duration;

use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::config::{JwtConfig, JwtKeys};
use crate::domain::{Caller, UserId};
use crate::error::ApiError;
pub use jwks::JwksCache;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// Longest `Authorization` header value considered; anything longer is rejected unparsed.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The claims this service reads; `exp`, `nbf`, `aud` and `iss` are checked by `jsonwebtoken`.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Supabase's claim of an anonymous sign-in; absent on other tokens.
    #[serde(default)]
    is_anonymous: bool,
}

enum KeySource {
    Hs256(DecodingKey),
    Jwks(Box<JwksCache>),
    None,
}

/// Verifies access tokens. Built once at init; the JWKS it may hold is cached across invocations.
pub struct Authenticator {
    keys: KeySource,
    /// One prepared validation per accepted algorithm (the allow-list).
    validations: Vec<(Algorithm, Validation)>,
}

impl Authenticator {
    /// Builds the verifier for `config`. `jwks_timeout` bounds each JWKS fetch.
    pub fn new(config: &JwtConfig, jwks_timeout: Duration) -> Self {
        crypto::install();
        let (keys, allowed) = match &config.keys {
            JwtKeys::Hs256Secret(secret) => (
                KeySource::Hs256(DecodingKey::from_secret(secret.as_bytes())),
                vec![Algorithm::HS256],
            ),
            JwtKeys::JwksUrl(url) => (
                KeySource::Jwks(Box::new(JwksCache::new(url.clone(), jwks_timeout))),
                vec![Algorithm::ES256, Algorithm::RS256],
            ),
            JwtKeys::NoTokens => (KeySource::None, Vec::new()),
        };
        let validations = allowed
            .into_iter()
            .map(|alg| {
                let mut validation = Validation::new(alg);
                validation.leeway = LEEWAY_SECS;
                validation.validate_nbf = true;
                validation.set_audience(&[&config.audience]);
                validation.set_issuer(&[&config.issuer]);
                validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
                (alg, validation)
            })
            .collect();
        Authenticator { keys, validations }
    }

    /// Authenticates a request by its `Authorization: Bearer` header.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        self.verify(bearer_token(headers)?).await
    }

    /// Verifies one token and returns who it identifies: the user, and whether the token is an
    /// anonymous sign-in's.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let header = decode_header(token).map_err(|_| ApiError::InvalidToken)?;
        let validation = self
            .validations
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, validation)| validation)
            .ok_or(ApiError::InvalidToken)?;
        let claims = match &self.keys {
            KeySource::Hs256(key) => decode::<Claims>(token, key, validation),
            KeySource::Jwks(jwks) => {
                let kid = header.kid.as_deref().ok_or(ApiError::InvalidToken)?;
                let key = jwks.key(kid, header.alg).await?;
                decode::<Claims>(token, &key, validation)
            }
            // No validation is prepared without keys: refused above.
            KeySource::None => return Err(ApiError::InvalidToken),
        }
        .map_err(|err| match err.kind() {
            ErrorKind::ExpiredSignature => ApiError::TokenExpired,
            _ => ApiError::InvalidToken,
        })?
        .claims;
        let user = UserId::parse(&claims.sub).ok_or(ApiError::InvalidToken)?;
        tracing::Span::current().record("user", user.hash());
        Ok(Caller {
            user,
            anonymous: claims.is_anonymous,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(ApiError::MissingToken)?;
    if value.len() > MAX_TOKEN_BYTES {
        return Err(ApiError::InvalidToken);
    }
    let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::InvalidToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::InvalidToken);
    }
    Ok(token)
}

#[cfg(test)]
mod tests;
