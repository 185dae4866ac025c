//! What the outbound HTTPS clients trust. The reqwest clients (the JWKS fetch, the auth
//! service's admin API) trust Mozilla's root store compiled in (`webpki-root-certs`, the roots
//! the Stripe client already uses through `webpki-roots`): by default reqwest's verifier reads
//! and parses the system's whole certificate store when the client is built, at cold start
//! (docs/performance-decisions.md). The DynamoDB client trusts Amazon's roots only
//! (`store::dynamo`).

/// Mozilla's root certificates, for `reqwest::ClientBuilder::tls_certs_only`.
pub fn mozilla() -> impl Iterator<Item = reqwest::Certificate> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_root_is_usable() {
        assert_eq!(
            super::mozilla().count(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
        assert!(super::mozilla().count() > 100);
    }
}
