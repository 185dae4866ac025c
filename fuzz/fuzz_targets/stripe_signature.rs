//! Any `Stripe-Signature` header over any payload: header parsing plus the HMAC check. It must
//! refuse (nobody can sign without the secret), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SECRET: &str = "whsec_fuzzing_secret";
const NOW: i64 = 1_795_539_600;

fuzz_target!(|data: &[u8]| {
    // The first line is the header, the rest the payload.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, payload) = data.split_at(split);
    let verdict = common::webhook::signature::verify(Some(header), payload, SECRET, NOW);
    assert!(verdict.is_err(), "a forged signature was accepted");
    let _ = std::str::from_utf8(header).map(common::webhook::signature::parse_header);
});
