//! The handler called directly with the sample event, on the embedded store.

use std::sync::Arc;

use common::credits::{self, AdjustOutcome};
use common::domain::{Balance, Caller, UserId};
use common::store::{Erasures, MemoryStore, Profiles, Store};
use common::testing::EVENTS_USER;
use serde_json::Value;

use super::*;

const EVENT: &str = include_str!("../../../events/credit-history.json");

fn app(store: Arc<dyn Store>) -> App {
    App::new(common::testing::config(), store, None)
}

fn request(query: &str) -> Request {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["rawQueryString"] = query.into();
    event
        .as_object_mut()
        .unwrap()
        .remove("queryStringParameters");
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event")
}

async fn call(app: &App, req: Request) -> (u16, Value) {
    let response = handle(app, req).await;
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(response.body().as_ref()).unwrap(),
    )
}

fn user() -> UserId {
    UserId::parse(EVENTS_USER).unwrap()
}

/// A user with free messages, three adjustments and two debits.
async fn user_with_history(store: &Arc<MemoryStore>) {
    let rules = common::testing::config().rules;
    let caller = Caller::signed_in(&user());
    common::users::load_or_create(store.as_ref(), &caller, &rules)
        .await
        .unwrap();
    for (i, amount) in [5, -2, 4].into_iter().enumerate() {
        let id = format!("adj_{i}");
        let user = user();
        let outcome = credits::adjust(
            store.as_ref(),
            &user,
            Balance::FreeMessages,
            amount,
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
async fn the_sample_event_answers_the_balances_and_the_newest_entries() {
    let store = Arc::new(MemoryStore::new());
    user_with_history(&store).await;
    let (status, body) = call(
        &app(store.clone()),
        lambda_http::request::from_str(EVENT).unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let record = store.get_user(&user()).await.unwrap().unwrap();
    assert_eq!(
        body["free_messages_remaining"],
        record.free_messages_remaining
    );
    assert_eq!(body["credits_remaining"], 0);
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "the sample asks for limit=2");
    assert_eq!(
        entries[0]["kind"], "usage",
        "the day's usage sorts at the day's end"
    );
    assert_eq!(entries[0]["messages"], 2);
    assert_eq!(entries[0]["amount"], -2);
    assert_eq!(entries[0]["balance"], "free_messages");
    assert_eq!(entries[0]["balance_after"], record.free_messages_remaining);
    assert_eq!(entries[1]["kind"], "adjustment");
    assert_eq!(entries[1]["description"], "goodwill");
    assert!(body["next_cursor"].is_string());
    assert!(
        !body.to_string().contains("ops:test"),
        "the operator is not shown to the user"
    );
}

#[tokio::test]
async fn the_cursor_walks_every_entry_once_newest_first() {
    let store = Arc::new(MemoryStore::new());
    user_with_history(&store).await;
    let app = app(store.clone());
    let (mut seen, mut query) = (Vec::new(), "limit=1".to_owned());
    loop {
        let (status, body) = call(&app, request(&query)).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(
            body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        4,
        "three adjustments and one day of usage: {seen:?}"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first, no repeats");
}

#[tokio::test]
async fn a_bad_limit_or_cursor_is_a_clear_400_and_changes_nothing() {
    let store = Arc::new(MemoryStore::new());
    user_with_history(&store).await;
    let before = store.get_user(&user()).await.unwrap();
    let app = app(store.clone());
    for (query, code) in [
        ("limit=0", "INVALID_LIMIT"),
        ("limit=101", "INVALID_LIMIT"),
        ("limit=abc", "INVALID_LIMIT"),
        ("cursor=not-a-cursor", "INVALID_CURSOR"),
        (
            "cursor=MjAyNi0xMi0wMVQwMDowMDowMFojdXNhZ2UjeC5hYmM",
            "INVALID_CURSOR",
        ),
    ] {
        let (status, body) = call(&app, request(query)).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"]["code"], code, "{query}");
        assert_eq!(body["detail"], body["error"]["message"]);
    }
    assert_eq!(store.get_user(&user()).await.unwrap(), before);
}

#[tokio::test]
async fn an_erased_account_gets_410() {
    let store = Arc::new(MemoryStore::new());
    user_with_history(&store).await;
    store.mark_erasing(&user(), 1).await.unwrap();
    let (status, body) = call(&app(store), request("")).await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["code"], "ACCOUNT_DELETED");
}

#[tokio::test]
async fn without_a_token_it_is_401_and_nothing_is_created() {
    let store = Arc::new(MemoryStore::new());
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, body) = call(&app(store.clone()), req).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    assert_eq!(store.get_user(&user()).await.unwrap(), None);
}
