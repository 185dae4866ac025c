//! `GET /v1/user/export` on DynamoDB (emulator), run as the function through the IAM proxy
//! (its policy reaches the caller's partition and tombstone only), with the Stripe stub: every
//! item this service wrote under the user appears in the document, other services' items are
//! counted by kind and never copied, a neighbour's data never appears, and nothing changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use common::credits::{self, AdjustOutcome};
use common::domain::{Balance, Caller, UserId};
use common::store::Store;
use integration_tests::apps::{app, handle, parts, request};
use integration_tests::stripe_stub::StripeStub;
use integration_tests::{binaries, emulator, tokens};
use serde_json::{Value, json};

/// Buys and pays the small pack for `user`, granted through the sync.
async fn buy_pack(app: &common::App, stub: &StripeStub, user: &UserId) {
    let mut event = binaries::event_as("create-credit-pack-session.json", user.as_str());
    event["body"] = json!(r#"{"pack": "small"}"#);
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, _, body) = parts(Box::pin(handle("create-credit-pack-session", app, req)).await);
    assert_eq!(status, 200, "{body}");
    let url = body["checkout_url"].as_str().unwrap();
    stub.pay(url.rsplit('/').next().unwrap()).unwrap();
    let req = request("sync-subscription.json", user.as_str());
    let (status, _, body) = parts(Box::pin(handle("sync-subscription", app, req)).await);
    assert_eq!(status, 200, "{body}");
}

/// A user with a paid pack (profile, customer, purchase, entry), three messages (one refunded),
/// an operator's adjustment, and `others` items of other services, each (kind, count).
async fn user_with_everything(
    app: &common::App,
    stub: &StripeStub,
    others: &[(&str, usize)],
) -> UserId {
    let user = UserId::parse(&tokens::new_user()).unwrap();
    buy_pack(app, stub, &user).await;
    let (store, rules) = (app.store.as_ref(), &app.config.rules);
    let caller = Caller::signed_in(&user);
    for id in ["msg-1", "msg-2", "msg-3"] {
        credits::debit_message(store, &caller, rules, id, "default")
            .await
            .unwrap();
    }
    credits::refund_message(store, &user, "msg-2")
        .await
        .unwrap();
    let adjusted = credits::adjust(
        store,
        &user,
        Balance::Purchased,
        25,
        "apology",
        "ops:alice",
        "adj-1",
    );
    assert!(matches!(
        adjusted.await.unwrap(),
        AdjustOutcome::Adjusted(_)
    ));
    for (kind, count) in others {
        emulator::seed_items(user.as_str(), kind, *count).await;
    }
    user
}

async fn export(app: &common::App, user: &UserId) -> (u16, http::HeaderMap, Value) {
    let req = request("user-export.json", user.as_str());
    parts(Box::pin(handle("user-export", app, req)).await)
}

/// The ids a section of the document lists, by `field`.
fn ids(body: &Value, section: &str, field: &str) -> Vec<String> {
    let items = body[section].as_array().unwrap().iter();
    items
        .map(|item| item[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_written_here_appears_others_are_counted_and_no_neighbour_s() {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    // 300 conversation items, as the erasure test seeds, and enough more for two query pages.
    let others = [("CONV", 300), ("KEY", 5), ("FILE", 250)];
    let user = user_with_everything(&app, &stub, &others).await;
    let neighbour = user_with_everything(&app, &stub, &[("CONV", 40)]).await;
    let items = emulator::items_of(user.as_str()).await;
    let neighbour_customer = store
        .get_user(&neighbour)
        .await
        .unwrap()
        .unwrap()
        .stripe_customer_id
        .unwrap();

    let (status, headers, body) = export(&app, &user).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"chuk-chat-billing-20")
    );
    assert_eq!(body["schema_version"], 1);
    assert_eq!(body["user_id"], user.as_str());

    // Each item under the user's partition, found in its section; nothing more in any.
    let (mut ledger, mut debits, mut markers, mut purchases) = (vec![], vec![], vec![], vec![]);
    let mut counted: BTreeMap<String, usize> = BTreeMap::new();
    let mut profiles = 0;
    for item in &items {
        let sk = item["sk"].as_s().unwrap();
        match sk.split_once('#') {
            _ if sk == "PROFILE" => profiles += 1,
            Some(("LEDGER", key)) => ledger.push(key.to_owned()),
            Some(("DEBIT", id)) => debits.push(id.to_owned()),
            Some(("ONCE", id)) => markers.push(id.to_owned()),
            Some(("PURCHASE", key)) => purchases.push(key.to_owned()),
            Some((kind, _)) => *counted.entry(kind.to_owned()).or_default() += 1,
            None => panic!("an item {sk} of no kind"),
        }
    }
    assert_eq!(profiles, 1);
    assert_eq!(
        ids(&body, "ledger", "id"),
        ledger,
        "every entry, oldest first"
    );
    assert_eq!(ids(&body, "debits", "id"), debits);
    assert_eq!(debits, ["msg-1", "msg-2", "msg-3"]);
    let refunded: Vec<bool> = body["debits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["refunded"].as_bool().unwrap())
        .collect();
    assert_eq!(refunded, [false, true, false]);
    assert_eq!(body["adjustment_ids"], json!(markers));
    assert_eq!(markers, ["adj-1"]);
    assert_eq!(ids(&body, "purchases", "payment"), purchases);
    assert_eq!(purchases.len(), 1, "the pack's PaymentIntent");
    let kinds: Vec<&str> = body["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["pack_purchase", "usage", "message_refund", "adjustment"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let expected: Vec<Value> = others
        .iter()
        .map(|(kind, count)| (*kind, json!({"kind": kind, "count": count})))
        .collect::<BTreeMap<_, _>>()
        .into_values()
        .collect();
    assert_eq!(
        body["held_by_other_services"],
        json!(expected),
        "by kind, in order"
    );

    // The profile and the customer as stored; the rules that applied.
    let record = store.get_user(&user).await.unwrap().unwrap();
    let profile = &body["profile"];
    assert_eq!(profile["purchased_credits"], record.purchased_credits);
    assert_eq!(
        profile["free_messages_remaining"],
        record.free_messages_remaining
    );
    let customer = record.stripe_customer_id.clone().unwrap();
    assert_eq!(body["stripe_customers"][0]["id"], customer);
    assert!(body["stripe_customers"][0]["linked_at"].is_string());
    assert_eq!(
        body["rules"]["free_messages_per_account"],
        app.config.rules.free_messages
    );

    // Nothing of the neighbour's, no other service's content, no operator, no secret.
    let text = body.to_string();
    for absent in [
        neighbour.as_str(),
        neighbour_customer.as_str(),
        "ciphertext",
        "ops:alice",
        "sk_test",
        "whsec_",
    ] {
        assert!(!text.contains(absent), "{absent} in the export");
    }
    assert_eq!(
        emulator::items_of(user.as_str()).await,
        items,
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_erasure_the_export_is_410_and_before_any_record_it_creates_none() {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let stranger = UserId::parse(&tokens::new_user()).unwrap();
    let (status, _, body) = export(&app, &stranger).await;
    assert_eq!((status, &body["profile"]), (200, &Value::Null), "{body}");
    assert!(emulator::items_of(stranger.as_str()).await.is_empty());

    let user = user_with_everything(&app, &stub, &[("CONV", 3)]).await;
    let req = request("delete-account.json", user.as_str());
    let (status, _, _) = parts(Box::pin(handle("delete-account", &app, req)).await);
    assert_eq!(status, 200);
    let (status, headers, body) = export(&app, &user).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "ACCOUNT_DELETED");
    assert!(!headers.contains_key("content-disposition"));
}
