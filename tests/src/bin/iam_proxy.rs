//! IAM in front of the emulator (DynamoDB, and Secrets Manager, whose suite secrets it creates
//! at start: `integration_tests::suite_secrets`), as the deployed stack has it: every call is authorized
//! against the policy in `template.yaml` of the function that signed it (`integration_tests::iam`
//! says how), denied calls get DynamoDB's `AccessDeniedException`, and every access a function
//! made is appended, once, to the usage file that `tests/tests/iam_least_privilege.rs` reads.
//!
//! `iam-proxy <listen addr> <emulator URL> <table name> <usage file>`; started by
//! `scripts/lib/emulator.sh` (`start_iam_proxy`).

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use integration_tests::iam::{self, Access, Policies};
use integration_tests::storage_faults;

struct Proxy {
    policies: Policies,
    upstream: String,
    table: String,
    usage: Mutex<(BTreeSet<(String, Access)>, std::fs::File)>,
    client: reqwest::Client,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream, table, usage] = args.as_slice() else {
        eprintln!("usage: iam-proxy <listen addr> <emulator URL> <table name> <usage file>");
        std::process::exit(2);
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(usage)
        .expect("open the usage file");
    let proxy = Arc::new(Proxy {
        policies: Policies::from_template(),
        upstream: upstream.clone(),
        table: table.clone(),
        usage: Mutex::new((BTreeSet::new(), file)),
        client: reqwest::Client::new(),
    });
    // The suite's stack holds its secrets before any function starts.
    integration_tests::suite_secrets::seed(&proxy.client, upstream).await;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .expect("bind the listen address");
    while let Ok((stream, _)) = listener.accept().await {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let proxy = proxy.clone();
                async move { proxy.answer(req).await }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Proxy {
    async fn answer(
        &self,
        req: http::Request<Incoming>,
    ) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
        let (parts, body, operation) = storage_faults::read(req).await?;
        let principal = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(iam::access_key_id)
            .unwrap_or_default()
            .to_owned();
        if !self.policies.knows(&principal) {
            return Ok(aws_error(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
        if principal == iam::HARNESS {
            return self.forward(&parts.headers, body).await;
        }
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if operation == "BatchGetSecretValue" {
            return self.batch_secrets(&principal, &parts.headers, json).await;
        }
        let accesses = match iam::accesses(&operation, &json, &self.table) {
            Ok(accesses) => accesses,
            Err(resource) => {
                let service = match operation.as_str() {
                    "GetSecretValue" => "secretsmanager",
                    _ => "dynamodb",
                };
                let access = Access {
                    action: format!("{service}:{operation}"),
                    resource,
                };
                return Ok(denied(&principal, &access, &self.table));
            }
        };
        let keys = iam::leading_keys(&operation, &json);
        // One entry per access; any access without one names keys this stand-in cannot read.
        let unread = std::iter::repeat(&None);
        for (access, keys) in accesses.iter().zip(keys.iter().chain(unread)) {
            if !self.policies.allows(&principal, access, keys.as_deref()) {
                eprintln!("iam-proxy: denied {principal} {access:?}");
                return Ok(denied(&principal, access, &self.table));
            }
        }
        self.record(&principal, accesses);
        self.forward(&parts.headers, body).await
    }

    /// A `BatchGetSecretValue`, as Secrets Manager authorizes it: denied whole without the batch
    /// action or with `Filters` (which need `ListSecrets`); otherwise the secrets `principal` may
    /// read are fetched, and each other one is answered in `Errors` as `AccessDeniedException`.
    async fn batch_secrets(
        &self,
        principal: &str,
        headers: &http::HeaderMap,
        mut json: serde_json::Value,
    ) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
        let (batch, each) = iam::batch_secret_accesses(&json);
        if !self.policies.allows(principal, &batch, None) || !json["Filters"].is_null() {
            return Ok(denied(principal, &batch, &self.table));
        }
        let (mut allowed, mut errors, mut used) = (Vec::new(), Vec::new(), vec![batch]);
        for (id, access) in each {
            if self.policies.allows(principal, &access, None) {
                allowed.push(id);
                used.push(access);
            } else {
                eprintln!("iam-proxy: denied {principal} {access:?}");
                let denial = iam::denied_body(principal, &access, &self.table);
                errors.push(serde_json::json!({
                    "SecretId": id, "ErrorCode": "AccessDeniedException",
                    "Message": denial["Message"],
                }));
            }
        }
        self.record(principal, used);
        json["SecretIdList"] = serde_json::json!(allowed);
        let answer = self.forward(headers, Bytes::from(json.to_string())).await?;
        if errors.is_empty() || !answer.status().is_success() {
            return Ok(answer);
        }
        let (parts, body) = answer.into_parts();
        let bytes = http_body_util::BodyExt::collect(body)
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let mut value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        match value["Errors"].as_array_mut() {
            Some(list) => list.extend(errors),
            None => value["Errors"] = serde_json::Value::Array(errors),
        }
        let body = Full::new(Bytes::from(value.to_string()));
        Ok(http::Response::from_parts(parts, body))
    }

    /// Appends each access of `principal` not seen before to the usage file.
    fn record(&self, principal: &str, accesses: Vec<Access>) {
        let mut usage = self.usage.lock().expect("usage lock");
        let (seen, file) = &mut *usage;
        for access in accesses {
            if seen.insert((principal.to_owned(), access.clone())) {
                let line = serde_json::json!({
                    "function": principal, "action": access.action, "resource": access.resource,
                });
                let _ = writeln!(file, "{line}");
            }
        }
    }

    async fn forward(
        &self,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
        storage_faults::forward(&self.client, &self.upstream, headers, body).await
    }
}

fn denied(principal: &str, access: &Access, table: &str) -> http::Response<Full<Bytes>> {
    respond(
        "AccessDeniedException",
        iam::denied_body(principal, access, table),
    )
}

fn aws_error(kind: &str, message: &str) -> http::Response<Full<Bytes>> {
    let body = serde_json::json!({
        "__type": format!("com.amazon.coral.service#{kind}"),
        "Message": message,
    });
    respond(kind, body)
}

fn respond(kind: &str, body: serde_json::Value) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(400)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", kind)
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}
