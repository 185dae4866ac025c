//! A loopback emulator of the Lambda Runtime API (the part a function binary talks to):
//! `GET /invocation/next` long-polls for the next event, `POST /invocation/{id}/response` and
//! `/error` return its outcome, `POST /init/error` is acknowledged. It also notes when the
//! function first asked for work: the end of its init.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";

/// What a function returned for one invocation.
#[derive(Debug)]
pub enum Outcome {
    /// `/response`: the API Gateway response document.
    Response(Value),
    /// `/error`: the error document.
    Error(Value),
}

impl Outcome {
    /// Status, headers and JSON body of an API Gateway response document; panics on an error.
    pub fn http(self) -> (u16, Value, Value) {
        let Outcome::Response(doc) = self else {
            panic!("the function reported an error: {self:?}")
        };
        let status = doc["statusCode"].as_u64().expect("statusCode") as u16;
        let body =
            serde_json::from_str(doc["body"].as_str().expect("text body")).expect("JSON body");
        (status, doc["headers"].clone(), body)
    }
}

#[derive(Default)]
struct Pending {
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
}

struct Shared {
    first_poll: std::sync::OnceLock<std::time::Instant>,
    events: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    pending: Mutex<Pending>,
}

/// A running emulator.
pub struct RuntimeApi {
    address: String,
    events: mpsc::UnboundedSender<(String, Value)>,
    shared: Arc<Shared>,
}

impl RuntimeApi {
    /// Starts an emulator on a free loopback port.
    pub async fn start() -> RuntimeApi {
        let (events, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            first_poll: std::sync::OnceLock::new(),
            events: Mutex::new(receiver),
            pending: Mutex::new(Pending::default()),
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime API");
        let address = listener.local_addr().expect("local addr").to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi {
            address,
            events,
            shared,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues `event`, waits for the function's outcome (at most `timeout`).
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Outcome {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .await
            .waiting
            .insert(id.clone(), tx);
        self.events.send((id, event)).expect("emulator is running");
        tokio::time::timeout(timeout, rx)
            .await
            .expect("the function answered in time")
            .expect("outcome delivered")
    }

    /// When a function first asked for work (`GET /invocation/next`): the end of its init.
    /// Waits up to `timeout` for it.
    pub async fn first_poll(&self, timeout: Duration) -> Option<std::time::Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(at) = self.shared.first_poll.get() {
                return Some(*at);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> (StatusCode, HeaderMap, Bytes) {
    shared.first_poll.get_or_init(std::time::Instant::now);
    let Some((id, event)) = shared.events.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Bytes::new());
    };
    let deadline = common::unix_now() as u128 * 1000 + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, value.parse().expect("ascii header value"));
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:000000000000:function:test".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, Bytes::from(event.to_string()))
}

async fn deliver(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.pending.lock().await.waiting.remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    deliver(&shared, &id, Outcome::Response(value)).await
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    deliver(&shared, &id, Outcome::Error(value)).await
}

async fn init_error() -> StatusCode {
    // The binaries log the cause and exit; the emulator only acknowledges.
    StatusCode::ACCEPTED
}
