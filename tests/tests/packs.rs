//! Credit packs, on DynamoDB (emulator) with the Stripe stub selling two packs (small: 500
//! credits, large: 3,000): a pack is sold to free users and subscribers alike, granted once per
//! Checkout session through the webhook (events twice) and through the sync alike, only for a
//! session this service opened; a delayed payment grants when it succeeds and never when it
//! fails; purchased credits outlive a renewal and a cancellation; bad requests are refused
//! before anything is written.

use std::sync::Arc;

use common::domain::{EntryKind, UserId};
use common::store::Store;
use integration_tests::apps::{app, deliver_twice, handle, parts, request};
use integration_tests::stripe_stub::{StripeStub, paid_invoice, subscription};
use integration_tests::{binaries, emulator, tokens};
use serde_json::{Value, json};

async fn setup() -> (StripeStub, Arc<dyn Store>, common::App) {
    let stub = StripeStub::start().await;
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    (stub, store, app)
}

/// `POST /v1/stripe/create-credit-pack-session` of `user` with `body`.
async fn buy(app: &common::App, user: &UserId, body: Option<&str>) -> (u16, Value) {
    let mut event = binaries::event_as("create-credit-pack-session.json", user.as_str());
    event["body"] = body.map_or(Value::Null, |body| json!(body));
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, _, body) = parts(Box::pin(handle("create-credit-pack-session", app, req)).await);
    (status, body)
}

/// Buys pack `pack` for `user`: the session's id.
async fn open(app: &common::App, user: &UserId, pack: &str) -> String {
    let (status, body) = buy(app, user, Some(&format!(r#"{{"pack": "{pack}"}}"#))).await;
    assert_eq!(status, 200, "{body}");
    let url = body["checkout_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

/// Delivers event `kind` about Checkout session `session` (as Stripe holds it now) twice.
async fn deliver(app: &common::App, stub: &StripeStub, kind: &str, session: &str) {
    deliver_twice(app, kind, stub.checkout_session(session)).await;
}

async fn sync(app: &common::App, user: &UserId) -> Value {
    let req = request("sync-subscription.json", user.as_str());
    let (status, _, body) = parts(Box::pin(handle("sync-subscription", app, req)).await);
    assert_eq!(status, 200, "{body}");
    body
}

/// `user`'s purchased credits, their pending pack sessions, and their `pack_purchase` entries
/// (pack, amount).
async fn packs_of(store: &Arc<dyn Store>, user: &UserId) -> (i64, usize, Vec<(String, i64)>) {
    let record = store.get_user(user).await.unwrap().unwrap();
    let (entries, _) = store.entries(user, None, 100).await.unwrap();
    let bought = entries
        .iter()
        .filter(|e| e.kind == EntryKind::PackPurchase)
        .map(|e| (e.pack.clone().unwrap_or_default(), e.amount))
        .collect();
    (record.purchased_credits, record.pending_packs.len(), bought)
}

fn new_user() -> UserId {
    UserId::parse(&tokens::new_user()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_user_s_pack_is_granted_once_through_the_webhook_or_the_sync() {
    let (stub, store, app) = setup().await;
    for through_webhook in [true, false] {
        let user = new_user();
        let session = open(&app, &user, "small").await;
        let form = stub.sent_to("POST /v1/checkout/sessions").await;
        let sent = form.last().unwrap();
        assert_eq!(
            (sent.field("mode"), sent.field("metadata[pack]")),
            (Some("payment"), Some("small"))
        );
        assert_eq!(sent.field("metadata[user_id]"), Some(user.as_str()));
        assert_eq!(packs_of(&store, &user).await, (0, 1, vec![]));
        stub.pay(&session).unwrap();
        match through_webhook {
            true => deliver(&app, &stub, "checkout.session.completed", &session).await,
            false => drop(sync(&app, &user).await),
        }
        let granted = (500, 0, vec![("small".to_owned(), 500)]);
        assert_eq!(
            packs_of(&store, &user).await,
            granted,
            "webhook: {through_webhook}"
        );
        // Redelivered, synced again: nothing more.
        deliver(&app, &stub, "checkout.session.completed", &session).await;
        let body = sync(&app, &user).await;
        assert_eq!(packs_of(&store, &user).await, granted);
        assert_eq!(
            (
                body["credits_remaining"].as_i64(),
                body["current_plan"].as_str()
            ),
            (Some(500), Some("free"))
        );
        let entry = store.entries(&user, None, 1).await.unwrap().0.remove(0);
        assert_eq!(
            entry
                .payment_intent
                .as_deref()
                .map(|pi| pi.starts_with("pi_")),
            Some(true)
        );
    }
}

/// A delayed payment method (a bank debit) completes the session unpaid: nothing is granted
/// until the payment succeeds; a failed one grants nothing and the session is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_payment_grants_when_it_succeeds_and_never_when_it_fails() {
    let (stub, store, app) = setup().await;
    let user = new_user();
    let (succeeds, fails) = (
        open(&app, &user, "large").await,
        open(&app, &user, "small").await,
    );
    for session in [&succeeds, &fails] {
        stub.pay_later(session).unwrap();
        deliver(&app, &stub, "checkout.session.completed", session).await;
    }
    assert_eq!(packs_of(&store, &user).await, (0, 2, vec![]), "processing");
    let record = store.get_user(&user).await.unwrap().unwrap();
    let due = record.next_check.unwrap() - common::unix_now();
    assert!(
        due <= 3600,
        "a pending pack keeps the user due within the hour: {due}"
    );

    assert!(stub.settle_delayed_payment(&fails, false));
    deliver(&app, &stub, "checkout.session.async_payment_failed", &fails).await;
    assert_eq!(packs_of(&store, &user).await, (0, 1, vec![]));
    assert!(stub.settle_delayed_payment(&succeeds, true));
    deliver(
        &app,
        &stub,
        "checkout.session.async_payment_succeeded",
        &succeeds,
    )
    .await;
    let granted = (3000, 0, vec![("large".to_owned(), 3000)]);
    assert_eq!(packs_of(&store, &user).await, granted);
    sync(&app, &user).await;
    assert_eq!(packs_of(&store, &user).await, granted);
}

/// A paid session this service did not open (made by another integration, or in the
/// dashboard, with the same metadata) grants nothing, by webhook or sync; neither does an
/// expired one, which the sync forgets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_session_opened_here_grants_and_an_expired_one_is_forgotten() {
    let (stub, store, app) = setup().await;
    let user = new_user();
    let ours = open(&app, &user, "small").await;
    let record = store.get_user(&user).await.unwrap().unwrap();
    let customer = record.stripe_customer_id.clone().unwrap();
    let billing = app.billing().unwrap();
    let pack = billing.config.packs.to_sell("large").unwrap();
    let (stranger, _) = billing
        .create_pack_session(&user, &customer, pack)
        .await
        .unwrap()
        .unwrap();
    stub.pay(&stranger.session_id).unwrap();
    deliver(
        &app,
        &stub,
        "checkout.session.completed",
        &stranger.session_id,
    )
    .await;
    sync(&app, &user).await;
    assert_eq!(packs_of(&store, &user).await, (0, 1, vec![]), "not ours");

    billing.expire_checkout_session(&ours).await.unwrap();
    sync(&app, &user).await;
    assert_eq!(
        packs_of(&store, &user).await,
        (0, 0, vec![]),
        "expired: forgotten"
    );
}

/// Purchased credits are a balance of their own: a subscriber's pack outlives the renewal
/// (which resets the plan's credits only) and the cancellation (which ends them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_s_pack_outlives_a_renewal_and_a_cancellation() {
    let (stub, store, app) = setup().await;
    let user = new_user();
    let session = open(&app, &user, "small").await;
    let record = store.get_user(&user).await.unwrap().unwrap();
    let customer = record.stripe_customer_id.clone().unwrap();
    let now = common::unix_now();
    let mut sub = subscription("sub_pack", &customer, "active", now - 60, now + 86_400);
    sub["latest_invoice"] = paid_invoice("in_first", "sub_pack", now - 60, "subscription_create");
    stub.subscriptions(vec![sub.clone()]).await;
    stub.pay(&session).unwrap();
    assert_eq!(sync(&app, &user).await["credits_remaining"], 1500);

    sub["latest_invoice"] = paid_invoice("in_renew", "sub_pack", now, "subscription_cycle");
    stub.subscriptions(vec![sub.clone()]).await;
    assert_eq!(sync(&app, &user).await["credits_remaining"], 1500);
    sub["status"] = json!("canceled");
    stub.subscriptions(vec![sub]).await;
    let body = sync(&app, &user).await;
    assert_eq!(
        (
            body["credits_remaining"].as_i64(),
            body["current_plan"].as_str()
        ),
        (Some(500), Some("free"))
    );
    assert_eq!(packs_of(&store, &user).await.0, 500);
}

/// Each bad request is refused with its code before anything is written or asked of Stripe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pack_requests_are_refused_before_anything_is_written() {
    let (stub, store, app) = setup().await;
    for (body, code) in [
        (None, "INVALID_BODY"),
        (Some("{}"), "INVALID_BODY"),
        (Some(r#"{"pack": 5}"#), "INVALID_BODY"),
        (Some(r#"{"pack": "small", "quantity": 2}"#), "INVALID_BODY"),
        (Some(r#"{"pack": "huge"}"#), "UNKNOWN_PACK"),
        (Some(r#"{"pack": "plus"}"#), "UNKNOWN_PACK"),
    ] {
        let user = new_user();
        let (status, answer) = buy(&app, &user, body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body:?}"
        );
        assert!(answer["detail"].is_string());
        assert!(store.get_user(&user).await.unwrap().is_none(), "{body:?}");
    }
    assert!(stub.sent().await.is_empty(), "nothing was asked of Stripe");
}

/// A customer deleted at Stripe (in the dashboard) is replaced, as checkout replaces it: the
/// pack is sold on the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_checkout_replaces_a_customer_deleted_at_stripe() {
    let (stub, store, app) = setup().await;
    let user = new_user();
    open(&app, &user, "small").await;
    let record = store.get_user(&user).await.unwrap().unwrap();
    let deleted = record.stripe_customer_id.clone().unwrap();
    stub.delete_customer(&deleted);
    let session = open(&app, &user, "large").await;
    let record = store.get_user(&user).await.unwrap().unwrap();
    let replaced = record.stripe_customer_id.clone().unwrap();
    assert_ne!(replaced, deleted);
    assert_eq!(stub.checkout_session(&session)["customer"], json!(replaced));
    assert_eq!(store.user_for_customer(&deleted).await.unwrap(), None);
}
