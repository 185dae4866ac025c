//! `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`: HMAC-SHA256 of `"{t}.{raw body}"` with
//! the endpoint's signing secret. Any `v1` may match (secret rotation); the timestamp must be
//! within [`TOLERANCE_SECS`] of now; comparisons are constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Largest clock difference accepted between Stripe's timestamp and ours.
pub const TOLERANCE_SECS: i64 = 300;
/// Longest header considered.
const MAX_HEADER_BYTES: usize = 4096;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("missing signature header")]
    Missing,
    /// The header has no timestamp, no `v1`, or unreadable values.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is more than the tolerance away from now (a replay).
    #[error("signature timestamp outside the tolerance")]
    Stale,
    /// No `v1` signature matches the payload.
    #[error("no matching signature")]
    Mismatch,
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// `t`: when Stripe signed, Unix seconds.
    pub timestamp: i64,
    /// Every `v1` signature (other schemes are ignored).
    pub v1: Vec<[u8; 32]>,
}

/// Parses a header value.
pub fn parse_header(value: &str) -> Result<SignatureHeader, SignatureError> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in value.split(',') {
        let (key, val) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => timestamp = Some(val.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(val, &mut bytes).map_err(|_| SignatureError::Malformed)?;
                v1.push(bytes);
            }
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) if !v1.is_empty() => Ok(SignatureHeader { timestamp, v1 }),
        _ => Err(SignatureError::Malformed),
    }
}

/// Verifies `header` over the raw `payload` with `secret` at time `now`.
pub fn verify(
    header: Option<&[u8]>,
    payload: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let header = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
    let parsed = parse_header(header)?;
    // Checked: a hostile `t` (e.g. i64::MIN) must be refused, never overflow.
    let skew = now.checked_sub(parsed.timestamp).and_then(i64::checked_abs);
    if skew.is_none_or(|skew| skew > TOLERANCE_SECS) {
        return Err(SignatureError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(parsed.timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    // `verify_slice` compares in constant time; every candidate is checked.
    let matched = parsed.v1.iter().fold(false, |found, sig| {
        mac.clone().verify_slice(sig).is_ok() | found
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `Stripe-Signature` value Stripe would send for `payload` at `timestamp` (tests and tools).
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    const NOW: i64 = 1_800_000_000;

    fn check(header: &str, body: &[u8]) -> Result<(), SignatureError> {
        verify(Some(header.as_bytes()), body, SECRET, NOW)
    }

    #[test]
    fn a_valid_signature_passes() {
        assert_eq!(check(&sign(BODY, SECRET, NOW), BODY), Ok(()));
        assert_eq!(check(&sign(BODY, SECRET, NOW - 299), BODY), Ok(()));
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let good = sign(BODY, SECRET, NOW);
        let good_sig = good.split("v1=").nth(1).unwrap();
        let header = format!("t={NOW},v1={},v0=abc,v1={good_sig}", "0".repeat(64));
        assert_eq!(check(&header, BODY), Ok(()));
    }

    #[test]
    fn wrong_secret_or_tampered_body_mismatch() {
        assert_eq!(
            check(&sign(BODY, "whsec_other", NOW), BODY),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = BODY.to_vec();
        tampered[8] = b'X';
        assert_eq!(
            check(&sign(BODY, SECRET, NOW), &tampered),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_an_overflow() {
        let body = br#"{"id":"evt_1"}"#;
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            let header = format!("t={t},v1={}", "0".repeat(64));
            assert_eq!(
                verify(Some(header.as_bytes()), body, SECRET, NOW),
                Err(SignatureError::Stale),
                "t={t}"
            );
        }
    }

    #[test]
    fn timestamps_beyond_300_seconds_are_stale() {
        assert_eq!(
            check(&sign(BODY, SECRET, NOW - 301), BODY),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(&sign(BODY, SECRET, NOW + 301), BODY),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        assert_eq!(
            verify(None, BODY, SECRET, NOW),
            Err(SignatureError::Missing)
        );
        for header in [
            "",
            "garbage",
            &format!("t={NOW}"),
            "v1=00",
            &format!("t=abc,v1={}", "0".repeat(64)),
            &format!("t={NOW},v1=zz"),
            &format!("t={NOW},v1={}", "0".repeat(62)),
            &format!("t={NOW},v1={}", "a".repeat(5000)),
        ] {
            assert_eq!(
                check(header, BODY),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        assert_eq!(
            verify(Some(&[0xff, 0xfe]), BODY, SECRET, NOW),
            Err(SignatureError::Malformed)
        );
    }
}
