//! Limits per caller (issue 25): one account cannot spend the Stripe account's rate limit, and
//! throwaway anonymous sign-ins cannot farm free messages. On DynamoDB behind the IAM stand-in
//! and the Stripe stub.

use std::sync::Arc;

use common::domain::{StripeAllowance, UserId};
use common::store::Store;
use integration_tests::apps::{
    self, customer_of_new_user, handle, parts, request, request_bearing,
};
use integration_tests::stripe_stub::{StripeStub, subscription};
use integration_tests::{emulator, tokens};
use serde_json::{Value, json};

async fn call(function: &str, app: &common::App, user: &str) -> (u16, http::HeaderMap, Value) {
    let req = request(&format!("{function}.json"), user);
    parts(Box::pin(handle(function, app, req)).await)
}

/// An app whose users may each reach Stripe `calls` times a day.
fn limited(store: Arc<dyn Store>, stub: &StripeStub, calls: i64) -> common::App {
    let mut config = apps::config();
    config.rules.stripe_allowance = StripeAllowance {
        calls,
        window_secs: 86_400,
    };
    let billing = common::billing::Billing::new(apps::stripe_config(&stub.uri())).unwrap();
    common::App::new(config, store, Some(billing))
}

/// Issue 25's loop: one free account calling sync, checkout and portal without end. Past its
/// allowance the sync answers the stored state, checkout the session it already has, the portal
/// 429 with `Retry-After`; none of them reaches Stripe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_allowance_a_caller_reaches_stripe_no_more() {
    let allowance = StripeAllowance {
        calls: 3,
        window_secs: 86_400,
    };
    // A run that would straddle the day's end waits for the next window: the count is per window.
    let left = allowance.retry_after(common::unix_now());
    if left < 120 {
        tokio::time::sleep(std::time::Duration::from_secs(left + 1)).await;
    }
    let (stub, store) = (
        StripeStub::start().await,
        Arc::new(emulator::store().await) as Arc<dyn Store>,
    );
    let app = limited(store.clone(), &stub, allowance.calls);
    let user = tokens::new_user();
    let (code, _, first) = call("create-checkout-session", &app, &user).await;
    assert_eq!(code, 200, "{first}");
    let (code, _, _) = call("sync-subscription", &app, &user).await;
    assert_eq!(code, 200);
    let (code, _, second) = call("create-checkout-session", &app, &user).await;
    assert_eq!(code, 200, "{second}");
    let reached = stub.sent().await.len();

    for _ in 0..5 {
        let (code, _, body) = call("sync-subscription", &app, &user).await;
        assert_eq!(
            (code, body["subscription_status"].as_str()),
            (200, Some("none"))
        );
        let (code, _, body) = call("create-checkout-session", &app, &user).await;
        assert_eq!(
            (code, &body["checkout_url"]),
            (200, &second["checkout_url"]),
            "the open session"
        );
        let (code, headers, body) = call("create-portal-session", &app, &user).await;
        assert_eq!(
            (code, body["error"]["code"].as_str()),
            (429, Some("RATE_LIMITED")),
            "{body}"
        );
        let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&wait), "{wait}");
        assert_eq!(body["error"]["details"]["retry_after"], wait);
    }
    assert_eq!(
        stub.sent().await.len(),
        reached,
        "nothing more reached Stripe"
    );

    // Another user has an allowance of their own.
    let (other, customer) = customer_of_new_user(&store).await;
    stub.add_customer(&customer, other.as_str());
    stub.subscriptions(vec![subscription(
        "sub_o",
        &customer,
        "active",
        1,
        1_900_000_000,
    )])
    .await;
    let (code, _, body) = call("sync-subscription", &app, other.as_str()).await;
    assert_eq!(
        (code, body["has_subscription"].as_bool()),
        (200, Some(true))
    );
}

/// A token of an anonymous sign-in (`is_anonymous: true`) starts with no free messages, so
/// throwaway accounts cannot farm them; `ALLOW_ANONYMOUS_FREE_MESSAGES` lets them have them.
#[tokio::test]
async fn anonymous_sign_ins_get_no_free_messages_unless_allowed() {
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let anonymous_token = |user: &str| {
        let mut claims = tokens::claims(user, tokens::EVENTS_ISSUER);
        claims["is_anonymous"] = json!(true);
        tokens::hs256(&claims, tokens::EVENTS_SECRET)
    };
    let strict = apps::app(store.clone(), None);
    let mut config = apps::config();
    config.rules.anonymous_free_messages = true;
    let generous = common::App::new(config, store.clone(), None);
    for (app, expected) in [(&strict, 0), (&generous, 10)] {
        let user = tokens::new_user();
        let req = request_bearing("user-status.json", &anonymous_token(&user));
        let (code, _, body) = parts(handle("user-status", app, req).await);
        assert_eq!(code, 200);
        assert_eq!(
            (
                body["free_messages_remaining"].as_i64(),
                body["free_messages_total"].as_i64()
            ),
            (Some(expected), Some(expected))
        );
        let caller = common::domain::Caller {
            user: UserId::parse(&user).unwrap(),
            anonymous: true,
        };
        let debit = common::credits::debit_message(
            store.as_ref(),
            &caller,
            &app.config.rules,
            "msg_1",
            "default",
        )
        .await;
        assert_eq!(debit.is_ok(), expected > 0, "{debit:?}");
    }
    // A signed-in user still gets them.
    let user = tokens::new_user();
    let (_, _, body) = call("user-status", &strict, &user).await;
    assert_eq!(body["free_messages_remaining"], 10);
}
