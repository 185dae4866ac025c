//! The handler called directly with the sample event, on the embedded store.

use std::sync::Arc;

use common::credits::{self, AdjustOutcome};
use common::domain::{Balance, Caller, ErasureStage, Tombstone, UserId};
use common::store::{Erasures, MemoryStore, Profiles, Store};
use common::testing::EVENTS_USER;
use serde_json::Value;

use super::*;

const EVENT: &str = include_str!("../../../events/user-export.json");

fn app(store: Arc<dyn Store>) -> App {
    App::new(common::testing::config(), store, None)
}

fn sample() -> Request {
    lambda_http::request::from_str(EVENT).expect("API Gateway v2 event")
}

/// Status, `Content-Disposition` and JSON body.
async fn call(app: &App, req: Request) -> (u16, Option<String>, Value) {
    let response = handle(app, req).await;
    let disposition = response
        .headers()
        .get(http::header::CONTENT_DISPOSITION)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = serde_json::from_slice(response.body().as_ref()).unwrap();
    (response.status().as_u16(), disposition, body)
}

fn user() -> UserId {
    UserId::parse(EVENTS_USER).unwrap()
}

/// A user with `adjustments` adjustments of one free message each, and two debits.
async fn user_with_history(store: &Arc<MemoryStore>, adjustments: usize) {
    let rules = common::testing::config().rules;
    let caller = Caller::signed_in(&user());
    common::users::load_or_create(store.as_ref(), &caller, &rules)
        .await
        .unwrap();
    for i in 0..adjustments {
        let id = format!("adj_{i}");
        let user = user();
        let outcome = credits::adjust(
            store.as_ref(),
            &user,
            Balance::FreeMessages,
            1,
            "goodwill",
            "ops:test",
            &id,
        );
        assert!(matches!(outcome.await.unwrap(), AdjustOutcome::Adjusted(_)));
    }
    for id in ["m1", "m2"] {
        credits::debit_message(store.as_ref(), &caller, &rules, id, "default")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_sample_event_downloads_everything_held_and_changes_nothing() {
    let store = Arc::new(MemoryStore::new());
    user_with_history(&store, 3).await;
    let before = store.get_user(&user()).await.unwrap().unwrap();
    let (status, disposition, body) = call(&app(store.clone()), sample()).await;
    assert_eq!(status, 200, "{body}");
    let day = &body["exported_at"].as_str().unwrap()[..10];
    assert_eq!(
        disposition.as_deref(),
        Some(format!("attachment; filename=\"chuk-chat-billing-{day}.json\"").as_str())
    );
    assert_eq!(body["schema_version"], 1);
    assert_eq!(body["user_id"], EVENTS_USER);
    let profile = &body["profile"];
    assert_eq!(profile["plan"], "free");
    assert_eq!(
        profile["free_messages_remaining"],
        before.free_messages_remaining
    );
    assert_eq!(profile["free_messages_total"], before.free_messages_total);
    let kinds: Vec<&str> = body["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["adjustment", "adjustment", "adjustment", "usage"],
        "oldest first"
    );
    assert_eq!(body["ledger"][0]["reason"], "goodwill");
    assert_eq!(body["ledger"][0]["cause"], "adj_0");
    let debits: Vec<&str> = body["debits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(debits, ["m1", "m2"]);
    assert_eq!(body["debits"][0]["takes"][0]["balance"], "free_messages");
    assert_eq!(
        body["adjustment_ids"],
        serde_json::json!(["adj_0", "adj_1", "adj_2"])
    );
    assert_eq!(body["stripe_customers"], serde_json::json!([]));
    assert_eq!(body["erasure"], Value::Null);
    assert_eq!(body["rules"]["free_messages_per_account"], 10);
    assert_eq!(body["held_by_other_services"], serde_json::json!([]));
    assert!(
        !body.to_string().contains("ops:test"),
        "the operator is not named"
    );
    assert_eq!(store.get_user(&user()).await.unwrap().unwrap(), before);
}

#[tokio::test]
async fn an_account_never_seen_gets_an_empty_document_and_no_record() {
    let store = Arc::new(MemoryStore::new());
    let (status, _, body) = call(&app(store.clone()), sample()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"], Value::Null);
    assert_eq!(body["ledger"], serde_json::json!([]));
    assert_eq!(store.get_user(&user()).await.unwrap(), None);
}

#[tokio::test]
async fn during_an_erasure_it_shows_the_erasure_and_after_it_is_410() {
    let store = Arc::new(MemoryStore::new());
    user_with_history(&store, 1).await;
    store.mark_erasing(&user(), 1_795_539_600).await.unwrap();
    let app = app(store.clone());
    let (status, _, body) = call(&app, sample()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["erasure"],
        serde_json::json!({"began_at": "2026-11-24T17:00:00Z", "stage": "started"})
    );
    let mut tombstone = Tombstone {
        erased_at: 1_795_539_600,
        expires_at: 1_800_000_000,
        stage: ErasureStage::StripeClosed,
    };
    store.write_tombstone(&user(), &tombstone).await.unwrap();
    let (_, _, body) = call(&app, sample()).await;
    assert_eq!(body["erasure"]["stage"], "stripe_closed");

    tombstone.stage = ErasureStage::StoredErased;
    store.write_tombstone(&user(), &tombstone).await.unwrap();
    let (status, disposition, body) = call(&app, sample()).await;
    assert_eq!((status, disposition), (410, None));
    assert_eq!(body["error"]["code"], "ACCOUNT_DELETED");
}

#[tokio::test]
async fn a_partition_over_the_limit_is_a_503_never_a_cut_off_document() {
    let store = Arc::new(MemoryStore::new());
    // The profile, the usage entry and two debits make it one over.
    user_with_history(&store, common::export::MAX_EXPORT_ITEMS / 2 - 1).await;
    let (status, disposition, body) = call(&app(store.clone()), sample()).await;
    assert_eq!((status, disposition), (503, None), "{body}");
    assert_eq!(body["error"]["code"], "EXPORT_TOO_LARGE");
    assert_eq!(body["detail"], body["error"]["message"]);
    assert_eq!(body["error"]["details"]["retry_after"], 60);
}

#[tokio::test]
async fn without_a_token_or_with_another_method_it_is_refused_and_nothing_is_created() {
    let store = Arc::new(MemoryStore::new());
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, _, body) = call(&app(store.clone()), req).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );

    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["requestContext"]["http"]["method"] = "POST".into();
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, _, body) = call(&app(store.clone()), req).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );
    assert_eq!(store.get_user(&user()).await.unwrap(), None);
}
