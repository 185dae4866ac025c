//! The HTTPS client of the calls to the hosted auth service (the JWKS fetch, the admin API):
//! hyper's client on rustls, the stack the DynamoDB and Stripe clients already link, so each
//! function carries one HTTP client and one TLS library (docs/performance-decisions.md, "One
//! crypto stack, one HTTP client"). It trusts Mozilla's roots compiled in (`webpki-roots`, as
//! the Stripe client does), never the system's store, which would be read and parsed at cold
//! start. The DynamoDB client trusts Amazon's roots only (`store::dynamo`).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A request's body: the whole of it, in memory.
pub type Body = Full<Bytes>;

/// An HTTPS (or, for loopback tests, HTTP) client whose every call is bounded by one timeout,
/// connection, TLS handshake, answer and body included.
#[derive(Clone)]
pub struct HttpsClient {
    inner: Client<HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
}

/// An answer: its status and its body, read up to the caller's limit.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: http::StatusCode,
    /// The body.
    pub body: Bytes,
}

/// Why a call got no usable answer; nothing of the request or the answer is in it, so it is
/// safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallFailed {
    /// No complete answer within the timeout.
    #[error("timed out")]
    TimedOut,
    /// Connection, TLS or protocol failure.
    #[error("connection failed")]
    Connection,
    /// The body is longer than the caller accepts.
    #[error("answer too large")]
    TooLarge,
}

impl HttpsClient {
    /// A client whose calls each end within `timeout`; nothing is connected until the first.
    pub fn new(timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        HttpsClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    /// Sends `request` and reads the answer's body, refusing one over `max_body` bytes.
    pub async fn send(
        &self,
        request: http::Request<Body>,
        max_body: usize,
    ) -> Result<Answer, CallFailed> {
        let call = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|_| CallFailed::Connection)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), max_body)
                .collect()
                .await
                .map_err(|err| match err.is::<LengthLimitError>() {
                    true => CallFailed::TooLarge,
                    false => CallFailed::Connection,
                })?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(CallFailed::TimedOut))
    }
}

/// rustls on `ring`, trusting Mozilla's roots.
fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn get(url: &str) -> http::Request<Body> {
        http::Request::get(url).body(Body::default()).unwrap()
    }

    #[test]
    fn trusts_mozillas_roots_on_ring() {
        let config = tls_config();
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        assert!(!config.crypto_provider().cipher_suites.is_empty());
    }

    #[tokio::test]
    async fn reads_the_answer_up_to_the_limit() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_string("0123456789"))
            .mount(&server)
            .await;
        let client = HttpsClient::new(Duration::from_secs(5));
        let answer = client.send(get(&server.uri()), 10).await.unwrap();
        assert_eq!(answer.status, 404);
        assert_eq!(&answer.body[..], b"0123456789");
        let refused = client.send(get(&server.uri()), 9).await.unwrap_err();
        assert_eq!(refused, CallFailed::TooLarge);
    }

    #[tokio::test]
    async fn a_slow_answer_times_out_and_a_closed_port_fails_to_connect() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        let client = HttpsClient::new(Duration::from_millis(200));
        assert_eq!(
            client.send(get(&server.uri()), 10).await.unwrap_err(),
            CallFailed::TimedOut
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        assert_eq!(
            client.send(get(&url), 10).await.unwrap_err(),
            CallFailed::Connection
        );
    }
}
