//! Stripe's idempotent requests: a POST with an `Idempotency-Key` runs once. A twin sent while
//! the first still executes gets 409 `idempotency_error`; once it finished, the same key with
//! the same parameters replays the first answer (status and body, even if the object changed
//! since); the same key with other parameters is refused with 400.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::objects;

/// How long Stripe keeps a key.
const KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What to do with a request carrying a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// The key is new: execute the request, then [`Keys::finish`] it.
    New,
    /// Answer this instead of executing (a replay, a conflict or a refusal).
    Answer(u16, Value),
}

struct Entry {
    request: String,
    executing_until: Instant,
    answer: (u16, Value),
    expires: Instant,
}

/// The keys seen, with what each request was and answered.
#[derive(Default)]
pub struct Keys {
    seen: HashMap<String, Entry>,
}

impl Keys {
    /// Looks `key` up for `request` (its route and parameters, in any stable form) at `now`.
    pub fn begin(&mut self, key: &str, request: &str, now: Instant) -> Seen {
        self.seen.retain(|_, entry| entry.expires > now);
        let Some(entry) = self.seen.get(key) else {
            return Seen::New;
        };
        if entry.request != request {
            let message = format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
            );
            return Seen::Answer(
                400,
                objects::error("idempotency_error", None, None, &message),
            );
        }
        if now < entry.executing_until {
            return Seen::Answer(409, objects::idempotency_conflict(key));
        }
        Seen::Answer(entry.answer.0, entry.answer.1.clone())
    }

    /// Records the answer of the request that began `key`, which executes for `executing`
    /// from `now` (twins within that time conflict).
    pub fn finish(
        &mut self,
        key: &str,
        request: &str,
        answer: (u16, Value),
        now: Instant,
        executing: Duration,
    ) {
        self.seen.insert(
            key.to_owned(),
            Entry {
                request: request.to_owned(),
                executing_until: now + executing,
                answer,
                expires: now + KEY_LIFETIME,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_twin_conflicts_while_the_first_executes_then_replays() {
        let (mut keys, now, run) = (Keys::default(), Instant::now(), Duration::from_millis(100));
        assert_eq!(keys.begin("k", "POST /v1/customers a=1", now), Seen::New);
        keys.finish(
            "k",
            "POST /v1/customers a=1",
            (200, json!({"id": "cus_1"})),
            now,
            run,
        );
        let Seen::Answer(409, body) = keys.begin("k", "POST /v1/customers a=1", now) else {
            panic!("twin during execution must conflict");
        };
        assert_eq!(body["error"]["type"], "idempotency_error");
        assert_eq!(
            keys.begin("k", "POST /v1/customers a=1", now + run),
            Seen::Answer(200, json!({"id": "cus_1"}))
        );
    }

    #[test]
    fn a_key_reused_with_other_parameters_is_refused() {
        let (mut keys, now) = (Keys::default(), Instant::now());
        keys.finish(
            "k",
            "POST /v1/customers a=1",
            (200, json!({})),
            now,
            Duration::ZERO,
        );
        let Seen::Answer(400, body) = keys.begin("k", "POST /v1/customers a=2", now) else {
            panic!("other parameters must be refused");
        };
        assert_eq!(body["error"]["type"], "idempotency_error");
    }

    #[test]
    fn keys_expire_after_a_day() {
        let (mut keys, now) = (Keys::default(), Instant::now());
        keys.finish("k", "r", (200, json!({})), now, Duration::ZERO);
        assert_eq!(keys.begin("k", "r", now + KEY_LIFETIME), Seen::New);
    }
}
