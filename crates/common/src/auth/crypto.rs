//! The cryptography under `jsonwebtoken`: signatures verified with `ring`, the library under
//! every TLS connection here, so each function links one crypto library
//! (docs/performance-decisions.md, "One crypto stack"). `jsonwebtoken`'s own backends are
//! aws-lc (1.8 MiB of code linked beside ring) and RustCrypto (ES256 verification 4× slower
//! than ring's). Only the algorithms this service accepts are here: HS256, ES256, RS256.
//!
//! The functions only verify. Signing exists for the test tokens and the local API
//! (feature `test-util`), through RustCrypto; without that feature a signer is refused.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as Rejected, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

/// `jsonwebtoken`'s process-wide provider: ring verifies.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes [`PROVIDER`] `jsonwebtoken`'s provider for this process. Idempotent; called before any
/// token is verified or signed.
pub(crate) fn install() {
    // An error means a provider is installed already: ours, as nothing else installs one.
    let _ = PROVIDER.install_default();
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let family = match algorithm {
        Algorithm::HS256 => AlgorithmFamily::Hmac,
        Algorithm::ES256 => AlgorithmFamily::Ec,
        Algorithm::RS256 => AlgorithmFamily::Rsa,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    if key.family() != family {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        key: key.clone(),
    }))
}

/// One algorithm's verification with one key.
struct RingVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> std::result::Result<(), Rejected> {
        let rsa = &signature::RSA_PKCS1_2048_8192_SHA256;
        let verified = match (self.algorithm, self.key.kind()) {
            (Algorithm::HS256, DecodingKeyKind::SecretOrDer(secret)) => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
                ring::hmac::verify(&key, message, tag).is_ok()
            }
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, tag)
                    .is_ok()
            }
            (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
                RsaPublicKeyComponents { n, e }
                    .verify(rsa, message, tag)
                    .is_ok()
            }
            (Algorithm::RS256, DecodingKeyKind::SecretOrDer(der)) => {
                UnparsedPublicKey::new(rsa, der)
                    .verify(message, tag)
                    .is_ok()
            }
            _ => false,
        };
        verified.then_some(()).ok_or_else(Rejected::new)
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Test tokens and the local API's tokens are signed by RustCrypto.
#[cfg(any(test, feature = "test-util"))]
fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory)(algorithm, key)
}

/// The functions never sign.
#[cfg(not(any(test, feature = "test-util")))]
fn signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::jwk::JwkSet;

    /// A token's signed part and signature, as `jsonwebtoken` hands them to a verifier.
    fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
        let (message, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        (message.as_bytes().to_vec(), signature)
    }

    fn jwk_key(kid: &str) -> DecodingKey {
        let set: JwkSet = serde_json::from_str(testing::JWKS).unwrap();
        DecodingKey::from_jwk(set.find(kid).unwrap()).unwrap()
    }

    fn verifies(algorithm: Algorithm, key: &DecodingKey, token: &str) -> bool {
        let (message, signature) = split(token);
        verifier(&algorithm, key)
            .unwrap()
            .verify(&message, &signature)
            .is_ok()
    }

    #[test]
    fn each_accepted_algorithm_verifies_its_signature_and_nothing_else() {
        let claims = testing::claims("someone", "issuer");
        let es_pem = DecodingKey::from_ec_pem(testing::ES256_PUBLIC_PEM.as_bytes()).unwrap();
        let cases = [
            (
                Algorithm::HS256,
                DecodingKey::from_secret(b"secret"),
                testing::hs256(&claims, "secret"),
            ),
            (
                Algorithm::ES256,
                jwk_key(testing::ES256_KID),
                testing::es256(&claims, None),
            ),
            (Algorithm::ES256, es_pem, testing::es256(&claims, None)),
            (
                Algorithm::RS256,
                jwk_key(testing::RS256_KID),
                testing::rs256(&claims, None),
            ),
        ];
        for (algorithm, key, token) in cases {
            assert!(verifies(algorithm, &key, &token), "{algorithm:?}");
            let (mut message, signature) = split(&token);
            message[0] ^= 1;
            let verifier = verifier(&algorithm, &key).unwrap();
            assert!(
                verifier.verify(&message, &signature).is_err(),
                "{algorithm:?}"
            );
            assert_eq!(verifier.algorithm(), algorithm);
        }
        let other_secret = DecodingKey::from_secret(b"other");
        assert!(!verifies(
            Algorithm::HS256,
            &other_secret,
            &testing::hs256(&claims, "secret")
        ));
    }

    #[test]
    fn a_key_of_another_family_or_an_algorithm_not_accepted_is_refused() {
        let kind =
            |algorithm, key: &DecodingKey| verifier(&algorithm, key).err().map(|e| e.into_kind());
        let secret = DecodingKey::from_secret(b"secret");
        assert_eq!(
            kind(Algorithm::ES256, &secret),
            Some(ErrorKind::InvalidKeyFormat)
        );
        assert_eq!(
            kind(Algorithm::HS256, &jwk_key(testing::ES256_KID)),
            Some(ErrorKind::InvalidKeyFormat)
        );
        for algorithm in [
            Algorithm::HS512,
            Algorithm::ES384,
            Algorithm::PS256,
            Algorithm::EdDSA,
        ] {
            assert_eq!(kind(algorithm, &secret), Some(ErrorKind::InvalidAlgorithm));
        }
    }
}
