//! Webhook deliveries as Stripe makes them: each event POSTed as JSON with a
//! `Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body" under the endpoint secret>`
//! header; an answer other than 2xx (or none) is retried with exponential back-off, a few
//! times; every attempt is logged for the deliveries page.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use crate::unix_now;

/// Longest wait for an answer to one attempt (Stripe's own is longer; the sandbox is local).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer kept in the log.
const ANSWER_LOGGED: usize = 300;

/// The `Stripe-Signature` header of `payload` sent at `timestamp` under `secret`.
pub fn signature(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Where events go, and how failed deliveries are retried.
#[derive(Clone)]
pub struct Endpoint {
    /// The webhook URL, e.g. `http://127.0.0.1:8080/webhooks/stripe`.
    pub url: String,
    /// The signing secret (`whsec_...`).
    pub secret: String,
    /// Wait before the first retry; each later one waits twice as long.
    pub first_retry: Duration,
    /// Attempts in all, the first included.
    pub attempts: usize,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("first_retry", &self.first_retry)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// One attempt at delivering an event.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// Our HTTP status, if an answer came.
    pub status: Option<u16>,
    /// The start of the answer's body, or why none came.
    pub answer: String,
}

/// One event and its attempts.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// `evt_...`.
    pub event: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<Attempt>,
    /// Whether an attempt got a 2xx.
    pub delivered: bool,
}

/// Sends events to one endpoint and keeps the log of every delivery.
#[derive(Clone)]
pub struct Webhooks {
    client: reqwest::Client,
    endpoint: Endpoint,
    log: Arc<Mutex<Vec<Delivery>>>,
}

impl Webhooks {
    /// Deliveries to `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .expect("an HTTP client without TLS settings builds");
        Webhooks {
            client,
            endpoint,
            log: Arc::default(),
        }
    }

    /// Every delivery so far, oldest first.
    pub fn log(&self) -> Vec<Delivery> {
        self.log.lock().unwrap().clone()
    }

    /// Delivers `events` in order: the first attempt of each before returning, the retries of
    /// the failed ones in the background.
    pub async fn deliver(&self, events: Vec<Value>) {
        for event in events {
            let index = {
                let mut log = self.log.lock().unwrap();
                log.push(Delivery {
                    event: event["id"].as_str().unwrap_or_default().to_owned(),
                    kind: event["type"].as_str().unwrap_or_default().to_owned(),
                    attempts: Vec::new(),
                    delivered: false,
                });
                log.len() - 1
            };
            let payload = event.to_string();
            if self.attempt(index, &payload).await.is_ok() || self.endpoint.attempts < 2 {
                continue;
            }
            let this = self.clone();
            tokio::spawn(async move {
                let first = this.endpoint.first_retry;
                tokio::time::sleep(first).await;
                let backoff = ExponentialBuilder::default()
                    .with_min_delay(first * 2)
                    .with_max_times(this.endpoint.attempts - 2);
                let _ = (|| this.attempt(index, &payload))
                    .retry(backoff)
                    .sleep(tokio::time::sleep)
                    .await;
            });
        }
    }

    /// One signed POST of `payload`, logged as an attempt of delivery `index`.
    async fn attempt(&self, index: usize, payload: &str) -> Result<(), ()> {
        let header = signature(payload.as_bytes(), &self.endpoint.secret, unix_now());
        let sent = self
            .client
            .post(&self.endpoint.url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", header)
            .body(payload.to_owned())
            .send()
            .await;
        let attempt = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                Attempt {
                    status: Some(status),
                    answer: body.chars().take(ANSWER_LOGGED).collect(),
                }
            }
            Err(err) => Attempt {
                status: None,
                answer: format!("no answer: {err}"),
            },
        };
        let ok = attempt.status.is_some_and(|s| (200..300).contains(&s));
        let mut log = self.log.lock().unwrap();
        let delivery = &mut log[index];
        delivery.attempts.push(attempt);
        delivery.delivered |= ok;
        if ok { Ok(()) } else { Err(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_signing_secret() {
        let endpoint = Endpoint {
            url: "http://127.0.0.1:1/webhooks/stripe".into(),
            secret: "whsec_do_not_print".into(),
            first_retry: Duration::from_secs(1),
            attempts: 5,
        };
        let shown = format!("{endpoint:?}");
        assert!(
            !shown.contains("whsec_do_not_print") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn signs_as_stripe_documents() {
        // HMAC-SHA256 of "1700000000.{}" under "whsec_test", computed with Python's hmac module.
        assert_eq!(
            signature(b"{}", "whsec_test", 1_700_000_000),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }
}
