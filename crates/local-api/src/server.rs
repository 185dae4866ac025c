//! A plain HTTP/1 server that turns each request into a `lambda_http::Request`, as API Gateway
//! would, and each handler response back; `/local/` requests go to the local-only routes.

use std::convert::Infallible;
use std::sync::Arc;

use crate::dev::Tokens;
use common::App;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::Body;

/// Largest request body read (API Gateway's own payload limit is 10 MB; the handlers cap lower).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the server serves: the app, and the token minter of the local routes.
pub struct Served {
    /// The API's handlers' app.
    pub app: App,
    /// Mints tokens for `GET /local/token`, when the development secret was generated.
    pub tokens: Option<Tokens>,
    /// The browser origins allowed (`ALLOWED_ORIGINS`).
    pub cors: crate::cors::Cors,
}

/// Serves `served` on `listener` until the process is stopped.
pub async fn serve(listener: tokio::net::TcpListener, served: Arc<Served>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let served = Arc::clone(&served);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&served), peer, req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    served: Arc<Served>,
    peer: std::net::SocketAddr,
    req: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    if let Some(preflight) = served.cors.preflight(&parts.method, &parts.headers) {
        let (parts, body) = preflight.into_parts();
        let body = Full::new(Bytes::copy_from_slice(body.as_ref()));
        return Ok(http::Response::from_parts(parts, body));
    }
    let request_headers = parts.headers.clone();
    let mut response = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            let body = if bytes.is_empty() {
                Body::Empty
            } else {
                Body::Binary(bytes.to_vec())
            };
            let req = lambda_http::Request::from_parts(parts, body);
            if req.uri().path().starts_with(crate::local_routes::PREFIX) {
                let tokens = served.tokens.as_ref();
                crate::local_routes::handle(&served.app, tokens, peer, req).await
            } else {
                crate::routes::route(&served.app, req).await
            }
        }
        Err(_) => common::endpoint::error_response(&common::ApiError::PayloadTooLarge),
    };
    served.cors.decorate(&request_headers, &mut response);
    let (parts, body) = response.into_parts();
    Ok(http::Response::from_parts(
        parts,
        Full::new(Bytes::copy_from_slice(body.as_ref())),
    ))
}
