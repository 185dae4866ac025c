//! A loopback HTTP proxy in front of the DynamoDB emulator that injects the faults DynamoDB and
//! its network really produce, below the AWS SDK, so the SDK's own retries, timeouts and error
//! classification are part of what is tested: throttling, 5xx, a peer that hangs, a connection
//! dropped without an answer, and a write applied whose reply is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use common::config::StorageConfig;
use common::store::DynamoStore;

use crate::emulator;

/// A fault, as DynamoDB or the network would produce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 `ProvisionedThroughputExceededException`, without reaching the table.
    Throttle,
    /// 500 `InternalServerError`, without reaching the table.
    ServerError,
    /// No answer for longer than any client timeout.
    Hang,
    /// The connection closes without an answer (the peer died), without reaching the table.
    Drop,
    /// The table applies the request, then the reply is lost (500 instead of the real answer).
    LoseReply,
    /// For `TransactWriteItems`: 400 `TransactionCanceledException` whose first cancellation
    /// reason is `TransactionConflict` (another transaction held an item), one reason per item in
    /// request order, without reaching the table. The SDK does not retry it.
    TransactionConflict,
}

type Rules = HashMap<&'static str, (Fault, usize)>;

/// The proxy; see the module docs. Stops with the test's runtime.
#[derive(Clone)]
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: point a store here.
    pub endpoint: String,
    rules: Arc<Mutex<Rules>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    /// Starts a proxy to the emulator the test command started.
    pub async fn start() -> FaultProxy {
        let upstream = emulator::storage_config()
            .endpoint
            .expect("the emulator has an endpoint");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = FaultProxy {
            endpoint: format!("http://{}", listener.local_addr().unwrap()),
            rules: Arc::default(),
            calls: Arc::default(),
        };
        let client = reqwest::Client::new();
        let state = proxy.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, client, upstream) = (state.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let (state, client, upstream) =
                            (state.clone(), client.clone(), upstream.clone());
                        async move { state.answer(&client, &upstream, req).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        proxy
    }

    /// A store whose every call goes through the proxy.
    pub async fn store(&self) -> DynamoStore {
        emulator::connect(&StorageConfig {
            endpoint: Some(self.endpoint.clone()),
            // What production uses: these tests are about timeouts and retries.
            timeout_ms: common::config::DEFAULT_DYNAMODB_TIMEOUT_MS,
            ..emulator::storage_config()
        })
    }

    /// A store through the proxy with the emulator's generous per-attempt timeout: for tests of
    /// faults that are not about time (conflicts), where many calls queue at the emulator.
    pub async fn patient_store(&self) -> DynamoStore {
        emulator::connect(&StorageConfig {
            endpoint: Some(self.endpoint.clone()),
            ..emulator::storage_config()
        })
    }

    /// The next `times` requests of `operation` (`GetItem`, `UpdateItem`, ...) meet `fault`.
    pub fn inject(&self, operation: &'static str, fault: Fault, times: usize) {
        self.rules.lock().unwrap().insert(operation, (fault, times));
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// Every request seen, by operation name, in order; and forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }

    fn fault_for(&self, operation: &str) -> Option<Fault> {
        self.calls.lock().unwrap().push(operation.to_owned());
        let mut rules = self.rules.lock().unwrap();
        let (fault, left) = rules.get_mut(operation)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(*fault)
    }

    async fn answer(
        &self,
        client: &reqwest::Client,
        upstream: &str,
        req: http::Request<Incoming>,
    ) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
        let (parts, body, operation) = read(req).await?;
        let forward = || forward(client, upstream, &parts.headers, body.clone());
        match self.fault_for(&operation) {
            None => forward().await,
            Some(Fault::Throttle) => Ok(aws_error(
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            )),
            Some(Fault::ServerError) => Ok(aws_error(500, "InternalServerError", "Internal error")),
            Some(Fault::Hang) => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(aws_error(500, "InternalServerError", "too late"))
            }
            Some(Fault::Drop) => Err(std::io::Error::other("connection dropped")),
            Some(Fault::LoseReply) => {
                forward().await?;
                Ok(aws_error(500, "InternalServerError", "reply lost"))
            }
            Some(Fault::TransactionConflict) => Ok(transaction_conflict(&body)),
        }
    }
}

/// A DynamoDB request as the proxies read it: its head, its body, and the operation its
/// `X-Amz-Target` names (`GetItem`, `TransactWriteItems`, ...; `unknown` without one).
pub async fn read(
    req: http::Request<Incoming>,
) -> Result<(http::request::Parts, Bytes, String), std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit('.').next())
        .unwrap_or("unknown")
        .to_owned();
    Ok((parts, body, operation))
}

/// Sends a DynamoDB request (its `headers` and `body`) on to `upstream` as it came, and returns
/// the answer as it came: the proxies' way through.
pub async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    headers: &http::HeaderMap,
    body: Bytes,
) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
    let mut request = client.post(upstream).body(body);
    for (name, value) in headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    let response = request.send().await.map_err(std::io::Error::other)?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(std::io::Error::other)?;
    let mut answer = http::Response::new(Full::new(bytes));
    *answer.status_mut() = status;
    for (name, value) in &headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    Ok(answer)
}

/// DynamoDB's answer to a `TransactWriteItems` (`request`) that met another transaction on its
/// first item: 400 `TransactionCanceledException` with one reason per item, in request order.
fn transaction_conflict(request: &[u8]) -> http::Response<Full<Bytes>> {
    let items = serde_json::from_slice::<serde_json::Value>(request)
        .ok()
        .and_then(|r| r["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1);
    let reasons: Vec<serde_json::Value> = (0..items)
        .map(|i| match i {
            0 => serde_json::json!({"Code": "TransactionConflict",
                                    "Message": "Transaction is ongoing for the item"}),
            _ => serde_json::json!({"Code": "None"}),
        })
        .collect();
    let codes: Vec<&str> = reasons
        .iter()
        .map(|r| r["Code"].as_str().unwrap_or("None"))
        .collect();
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
        "CancellationReasons": reasons,
    });
    http::Response::builder()
        .status(400)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", "TransactionCanceledException")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn aws_error(status: u16, kind: &str, message: &str) -> http::Response<Full<Bytes>> {
    let body = serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        "message": message,
    });
    http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", kind)
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}
