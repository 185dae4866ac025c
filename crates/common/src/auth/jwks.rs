//! The auth provider's JWKS: fetched lazily, cached across invocations, refetched on an unknown
//! `kid` at most once per [`MIN_REFETCH_INTERVAL`], and refreshed once the keys are older than
//! [`MAX_KEY_AGE`], so a key the provider revoked stops verifying. A flood of unknown `kid`s
//! costs at most one fetch per interval, and delays a genuinely rotated key by at most that
//! interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use crate::error::ApiError;
use crate::https::{Body, CallFailed, HttpsClient};

/// Shortest time between two fetches of the JWKS (bounds what unknown `kid`s can cost).
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Age after which cached keys are refreshed before use: a key the provider revoked stops
/// verifying at the first refresh after this age that reaches the provider (while it cannot be
/// reached, the cached keys keep serving).
pub const MAX_KEY_AGE: Duration = Duration::from_secs(600);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct Cached {
    keys: HashMap<String, (Algorithm, Arc<DecodingKey>)>,
    last_attempt: Option<Instant>,
    /// When the keys were fetched (`None`: never).
    loaded_at: Option<Instant>,
}

/// A cached JWKS.
pub struct JwksCache {
    url: String,
    client: HttpsClient,
    cached: RwLock<Cached>,
    /// Serialises refetches, so a burst of unknown `kid`s makes one request.
    refetch: Mutex<()>,
    max_key_age: Duration,
    min_refetch_interval: Duration,
}

impl JwksCache {
    /// A cache of the JWKS at `url`; nothing is fetched until a token needs a key.
    pub fn new(url: String, timeout: Duration) -> Self {
        let client = HttpsClient::new(timeout);
        JwksCache {
            url,
            client,
            cached: RwLock::new(Cached::default()),
            refetch: Mutex::new(()),
            max_key_age: MAX_KEY_AGE,
            min_refetch_interval: MIN_REFETCH_INTERVAL,
        }
    }

    /// This cache with other timings than [`MAX_KEY_AGE`] and [`MIN_REFETCH_INTERVAL`] (tests).
    pub fn with_timing(mut self, max_key_age: Duration, min_refetch_interval: Duration) -> Self {
        self.max_key_age = max_key_age;
        self.min_refetch_interval = min_refetch_interval;
        self
    }

    /// The key with `kid`, which must be a key for `alg`.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Result<Arc<DecodingKey>, ApiError> {
        if let Some(found) = self.lookup(kid, alg).await {
            return found;
        }
        let _one_fetch_at_a_time = self.refetch.lock().await;
        let recently_tried = {
            let cached = self.cached.read().await;
            let fresh = cached
                .loaded_at
                .is_some_and(|at| at.elapsed() < self.max_key_age);
            if let Some(found) = lookup_in(&cached, kid, alg).filter(|_| fresh) {
                return found;
            }
            match cached.last_attempt {
                // Tried within the interval: what is cached answers, however old.
                Some(at) if at.elapsed() < self.min_refetch_interval => {
                    if let Some(found) = lookup_in(&cached, kid, alg) {
                        return found;
                    }
                    Some(cached.loaded_at.is_some())
                }
                _ => None,
            }
        };
        match recently_tried {
            Some(true) => return Err(ApiError::InvalidToken),
            Some(false) => return Err(ApiError::AuthUnavailable),
            None => {}
        }
        let fetched = self.fetch().await;
        let mut cached = self.cached.write().await;
        cached.last_attempt = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                cached.keys = keys;
                cached.loaded_at = Some(Instant::now());
                lookup_in(&cached, kid, alg).unwrap_or(Err(ApiError::InvalidToken))
            }
            Err(reason) => {
                tracing::warn!(reason, "JWKS fetch failed");
                // Keys past their age still serve while the provider cannot be reached.
                lookup_in(&cached, kid, alg).unwrap_or(Err(ApiError::AuthUnavailable))
            }
        }
    }

    /// The cached key, while the keys are younger than the maximum age.
    async fn lookup(
        &self,
        kid: &str,
        alg: Algorithm,
    ) -> Option<Result<Arc<DecodingKey>, ApiError>> {
        let cached = self.cached.read().await;
        let fresh = cached
            .loaded_at
            .is_some_and(|at| at.elapsed() < self.max_key_age);
        lookup_in(&cached, kid, alg).filter(|_| fresh)
    }

    async fn fetch(&self) -> Result<HashMap<String, (Algorithm, Arc<DecodingKey>)>, &'static str> {
        let request = http::Request::get(&self.url)
            .body(Body::default())
            .map_err(|_| "not a URL")?;
        let answer =
            self.client
                .send(request, MAX_JWKS_BYTES)
                .await
                .map_err(|failed| match failed {
                    CallFailed::TooLarge => "document too large",
                    CallFailed::TimedOut => "timed out",
                    CallFailed::Connection => "connection failed",
                })?;
        if !answer.status.is_success() {
            return Err("non-success status");
        }
        let set: JwkSet =
            serde_json::from_slice(&answer.body).map_err(|_| "not a JWKS document")?;
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let alg = match &jwk.algorithm {
                    AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                        Algorithm::ES256
                    }
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    _ => return None,
                };
                let declared_ok = match jwk.common.key_algorithm {
                    None => true,
                    Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
                    Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
                    Some(_) => false,
                };
                let key = DecodingKey::from_jwk(jwk).ok().filter(|_| declared_ok)?;
                Some((kid, (alg, Arc::new(key))))
            })
            .collect::<HashMap<_, _>>();
        if keys.is_empty() {
            return Err("no usable ES256/RS256 key");
        }
        Ok(keys)
    }
}

/// `Some(Ok(key))` if `kid` is cached for `alg`, `Some(Err)` if cached for another algorithm,
/// `None` if unknown.
fn lookup_in(
    cached: &Cached,
    kid: &str,
    alg: Algorithm,
) -> Option<Result<Arc<DecodingKey>, ApiError>> {
    cached.keys.get(kid).map(|(key_alg, key)| {
        if *key_alg == alg {
            Ok(Arc::clone(key))
        } else {
            Err(ApiError::InvalidToken)
        }
    })
}
