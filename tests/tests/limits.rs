//! Limits every handler enforces before doing any work: the body cap (413), the route and method
//! (404 for the API's catch-all, 405 with `Allow`), and hostile headers. Each refusal is checked
//! for its contract body and for having touched neither the table nor Stripe.

use std::sync::Arc;

use common::App;
use common::domain::UserId;
use common::endpoint::MAX_BEARER_BODY_BYTES;
use common::store::Store;
use common::webhook::MAX_WEBHOOK_BYTES;
use integration_tests::apps::{self, parts};
use integration_tests::stripe_stub::StripeStub;
use integration_tests::{binaries, emulator, tokens};
use lambda_http::{Body, Request, Response};
use local_api::routes::{ROUTES, Route};
use serde_json::Value;

/// The sample event of `route`'s function in `events/`.
fn event_file(route: &Route) -> String {
    format!("{}.json", route.function)
}

/// The handler serving the sample event `file`, as API Gateway routes it.
async fn handle(app: &App, file: &str, req: Request) -> Response<Body> {
    apps::handle(file.trim_end_matches(".json"), app, req).await
}

/// The sample event `file` sent by `user` with a fresh token, changed by `edit`, as a request.
fn request_with(file: &str, user: &str, edit: impl FnOnce(&mut Value)) -> Request {
    let mut event = binaries::event_as(file, user);
    edit(&mut event);
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event")
}

async fn setup() -> (App, StripeStub, Arc<dyn Store>) {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    (apps::app(store.clone(), Some(&stub.uri())), stub, store)
}

/// Asserts the refusal `(status, code)` and that `user` still has no record.
async fn assert_refused_untouched(
    store: &Arc<dyn Store>,
    user: &str,
    response: Response<Body>,
    expected: (u16, &str),
    what: &str,
) -> http::HeaderMap {
    let (status, headers, body) = parts(response);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (expected.0, Some(expected.1)),
        "{what}: {body}"
    );
    assert_eq!(body["detail"], body["error"]["message"], "{what}");
    assert_eq!(headers["content-type"], "application/json", "{what}");
    let id = UserId::parse(user).unwrap();
    assert_eq!(
        store.get_user(&id).await.unwrap(),
        None,
        "{what}: no record"
    );
    headers
}

#[tokio::test]
async fn bearer_bodies_over_the_cap_are_413_before_anything_is_touched() {
    let (app, stub, store) = setup().await;
    for route in ROUTES.iter().filter(|route| route.bearer) {
        let file = &event_file(route);
        let user = tokens::new_user();
        let req = request_with(file, &user, |event| {
            event["body"] = "x".repeat(MAX_BEARER_BODY_BYTES + 1).into();
        });
        let response = handle(&app, file, req).await;
        assert_refused_untouched(&store, &user, response, (413, "PAYLOAD_TOO_LARGE"), file).await;
    }
    assert!(stub.sent().await.is_empty(), "no Stripe call");
}

#[tokio::test]
async fn small_or_non_json_bodies_on_bearer_endpoints_are_ignored() {
    let (app, _stub, _store) = setup().await;
    for body in ["{}", "not json at all", &"y".repeat(MAX_BEARER_BODY_BYTES)] {
        let req = request_with("user-status.json", &tokens::new_user(), |event| {
            event["body"] = body.into();
            event["headers"]["content-type"] = "text/plain".into();
        });
        let (status, _, json) = parts(handle(&app, "user-status.json", req).await);
        assert_eq!(status, 200, "body {} bytes: {json}", body.len());
        assert_eq!(json["free_messages_remaining"], 10);
    }
}

#[tokio::test]
async fn webhook_bodies_over_256_kib_are_413_and_claim_nothing() {
    let (app, stub, _store) = setup().await;
    let id = format!("evt_limit_{}", uuid::Uuid::new_v4().simple());
    let mut event = apps::event(&id, "invoice.paid", stub_invoice());
    event["padding"] = "p".repeat(MAX_WEBHOOK_BYTES).into();
    let (status, _, body) = parts(
        integration_tests::apps::handle(
            "stripe-webhook",
            &app,
            apps::webhook(
                &event,
                integration_tests::stripe_stub::WEBHOOK_SECRET,
                common::unix_now(),
            ),
        )
        .await,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );
    assert_eq!(emulator::items_mentioning(&id).await, 0, "no event claim");
    assert!(stub.sent().await.is_empty(), "no Stripe call");
}

fn stub_invoice() -> Value {
    integration_tests::stripe_stub::fixture("invoice")
}

#[tokio::test]
async fn the_catch_all_route_is_404_json_on_every_handler() {
    let (app, stub, store) = setup().await;
    for route in ROUTES {
        let file = &event_file(&route);
        let user = tokens::new_user();
        let req = request_with(file, &user, |event| {
            event["routeKey"] = "$default".into();
            event["requestContext"]["routeKey"] = "$default".into();
            event["rawPath"] = "/v1/nowhere".into();
            event["requestContext"]["http"]["path"] = "/v1/nowhere".into();
        });
        let response = handle(&app, file, req).await;
        assert_refused_untouched(&store, &user, response, (404, "NOT_FOUND"), file).await;
    }
    assert!(stub.sent().await.is_empty(), "no Stripe call");
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_on_every_handler() {
    let (app, stub, store) = setup().await;
    for route in ROUTES {
        let (file, allowed) = (&event_file(&route), route.method());
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] {
            if method == allowed {
                continue;
            }
            let user = tokens::new_user();
            let req = request_with(file, &user, |event| {
                event["requestContext"]["http"]["method"] = method.into();
            });
            let response = handle(&app, file, req).await;
            let what = format!("{method} {file}");
            let headers = assert_refused_untouched(
                &store,
                &user,
                response,
                (405, "METHOD_NOT_ALLOWED"),
                &what,
            )
            .await;
            assert_eq!(headers["allow"], *allowed, "{what}");
        }
    }
    assert!(stub.sent().await.is_empty(), "no Stripe call");
}

#[tokio::test]
async fn hostile_headers_are_refused_or_ignored_never_a_crash() {
    let (app, _stub, store) = setup().await;

    let user = tokens::new_user();
    let mut req = request_with("user-status.json", &user, |_| {});
    req.headers_mut().insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_bytes(b"Bearer \xff\xfe\x80token").unwrap(),
    );
    let response = handle(&app, "user-status.json", req).await;
    assert_refused_untouched(&store, &user, response, (401, "INVALID_TOKEN"), "non-UTF-8").await;

    let user = tokens::new_user();
    let req = request_with("user-status.json", &user, |event| {
        event["headers"]["authorization"] = format!("Bearer {}", "a".repeat(64 * 1024)).into();
    });
    let response = handle(&app, "user-status.json", req).await;
    assert_refused_untouched(&store, &user, response, (401, "INVALID_TOKEN"), "64 KiB").await;

    // Junk the service does not read is ignored: a 16 KiB header and an unknown content type.
    let req = request_with("user-status.json", &tokens::new_user(), |event| {
        event["headers"]["x-junk"] = "j".repeat(16 * 1024).into();
        event["headers"]["content-type"] = "application/x-unknown; charset=ebcdic".into();
    });
    let (status, _, _) = parts(handle(&app, "user-status.json", req).await);
    assert_eq!(status, 200);
}
