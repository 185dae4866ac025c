//! The handler called directly with the sample events, on the embedded store.

use std::sync::Arc;

use common::domain::{UserId, UserRecord};
use common::store::{MemoryStore, Profiles, Store};
use common::testing::{EVENTS_ISSUER as ISSUER, EVENTS_SECRET as SECRET, EVENTS_USER, hs256};
use serde_json::{Value, json};

use super::*;

const EVENT: &str = include_str!("../../../events/user-status.json");

fn app(store: Arc<dyn Store>) -> App {
    App::new(common::testing::config(), store, None)
}

fn event_request(edit: impl FnOnce(&mut Value)) -> Request {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    edit(&mut event);
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event")
}

async fn call(app: &App, req: Request) -> (u16, http::HeaderMap, Value) {
    let response = handle(app, req).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        serde_json::from_slice(response.body().as_ref()).unwrap(),
    )
}

fn user() -> UserId {
    UserId::parse(EVENTS_USER).unwrap()
}

#[tokio::test]
async fn first_call_creates_a_free_record_and_reports_it() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let (status, _, body) = call(&app, event_request(|_| {})).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "has_subscription": false,
            "current_plan": "free",
            "credits_remaining": 0,
            "subscription_status": "none",
            "free_messages_remaining": 10,
            "free_messages_total": 10
        })
    );
    assert!(store.get_user(&user()).await.unwrap().is_some());
}

#[tokio::test]
async fn stored_subscription_and_balances_are_shown_as_stored() {
    let store = Arc::new(MemoryStore::new());
    let mut record = UserRecord::new_free(user(), 10, 0);
    record.plan = "pro".into();
    record.subscription_status = "active".into();
    record.credits_remaining = 850;
    record.free_messages_remaining = 0;
    store.create_user(&record).await.unwrap();
    let (_, _, body) = call(&app(store.clone()), event_request(|_| {})).await;
    assert_eq!(body["has_subscription"], true);
    assert_eq!(body["current_plan"], "pro");
    assert_eq!(body["credits_remaining"], 850);
    assert_eq!(body["free_messages_remaining"], 0);

    let mut record = record.clone();
    record.user_id = UserId::parse("0d6f7e9a-1111-4222-8333-444455556666").unwrap();
    record.subscription_status = "past_due".into();
    store.create_user(&record).await.unwrap();
    let token = hs256(
        &common::testing::claims(record.user_id.as_str(), ISSUER),
        SECRET,
    );
    let req = event_request(|e| e["headers"]["authorization"] = json!(format!("Bearer {token}")));
    let (_, _, body) = call(&app(store), req).await;
    assert_eq!(body["has_subscription"], false);
    assert_eq!(body["subscription_status"], "past_due");
}

#[tokio::test]
async fn rejected_requests_create_nothing() {
    let expired = hs256(
        &common::testing::claims_for(EVENTS_USER, ISSUER, -3600),
        SECRET,
    );
    let cases: Vec<(Request, u16, &str)> = vec![
        (
            event_request(|e| e["headers"]["authorization"] = json!(format!("Bearer {expired}"))),
            401,
            "TOKEN_EXPIRED",
        ),
        (
            event_request(|e| e["headers"]["authorization"] = json!("Bearer garbage")),
            401,
            "INVALID_TOKEN",
        ),
        (
            event_request(|e| {
                e["headers"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorization");
            }),
            401,
            "UNAUTHORIZED",
        ),
        (
            event_request(|e| e["requestContext"]["http"]["method"] = json!("DELETE")),
            405,
            "METHOD_NOT_ALLOWED",
        ),
    ];
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    for (req, expected_status, code) in cases {
        let (status, headers, body) = call(&app, req).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (expected_status, Some(code))
        );
        assert_eq!(body["detail"], body["error"]["message"]);
        if status == 401 {
            assert!(
                headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
    }
    assert_eq!(store.get_user(&user()).await.unwrap(), None);
}
