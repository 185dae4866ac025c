//! The three Stripe endpoints, called directly, on DynamoDB (emulator) and the real
//! `async-stripe` client talking HTTP to a loopback stub that answers with Stripe's fixtures.

use std::sync::Arc;
use std::time::Duration;

use common::domain::{UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::{app, parts, request};
use integration_tests::stripe_stub::{self, PRICE, StripeStub, customer_for_key, subscription};
use integration_tests::{emulator, tokens};
use serde_json::Value;

async fn store() -> Arc<dyn Store> {
    Arc::new(emulator::store().await)
}

/// A user with a record and, optionally, a linked customer and a stored status.
async fn seeded(store: &Arc<dyn Store>, customer: Option<&str>, status: &str) -> (String, UserId) {
    let id = tokens::new_user();
    let user = UserId::parse(&id).unwrap();
    let mut record = UserRecord::new_free(user.clone(), 10, 1_700_000_000);
    record.subscription_status = status.into();
    if status == "active" {
        record.plan = "pro".into();
        record.credits_remaining = 700;
    }
    store.create_user(&record).await.unwrap();
    if let Some(customer) = customer {
        store.link_customer(&user, customer).await.unwrap();
    }
    (id, user)
}

async fn checkout(app: &common::App, user: &str) -> (u16, http::HeaderMap, Value) {
    parts(
        integration_tests::apps::handle(
            "create-checkout-session",
            app,
            request("create-checkout-session.json", user),
        )
        .await,
    )
}

#[tokio::test]
async fn checkout_creates_one_customer_then_a_subscription_session() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let user = tokens::new_user();

    let (status, _, body) = checkout(&app, &user).await;
    assert_eq!(status, 200, "{body}");
    let url = body["checkout_url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with(&format!("{}/checkout/cs_test_", stub.uri())),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");

    let sent = stub.sent().await;
    let routes: Vec<&str> = sent.iter().map(|s| s.route.as_str()).collect();
    assert_eq!(
        routes,
        ["POST /v1/customers", "POST /v1/checkout/sessions"],
        "customer first"
    );
    let (customer_call, session_call) = (&sent[0], &sent[1]);
    assert_eq!(
        customer_call.field("metadata[user_id]"),
        Some(user.as_str())
    );
    assert_eq!(
        customer_call.idempotency_key.as_deref(),
        Some(format!("customer-{user}").as_str())
    );
    assert_eq!(
        customer_call.authorization.as_deref(),
        Some(format!("Bearer {}", stripe_stub::SECRET_KEY).as_str())
    );
    let customer = customer_for_key(&format!("customer-{user}"));
    for (field, expected) in [
        ("mode", "subscription"),
        ("customer", customer.as_str()),
        ("line_items[0][price]", PRICE),
        ("line_items[0][quantity]", "1"),
        ("client_reference_id", user.as_str()),
        ("metadata[user_id]", user.as_str()),
        ("subscription_data[metadata][user_id]", user.as_str()),
        ("success_url", "https://chuk.chat/subscription?success=true"),
        ("cancel_url", "https://chuk.chat/subscription?canceled=true"),
    ] {
        assert_eq!(session_call.field(field), Some(expected), "{field}");
    }
    assert!(
        session_call
            .idempotency_key
            .as_deref()
            .is_some_and(|k| !k.is_empty())
    );

    let id = UserId::parse(&user).unwrap();
    assert_eq!(
        store
            .get_user(&id)
            .await
            .unwrap()
            .unwrap()
            .stripe_customer_id,
        Some(customer.clone())
    );
    assert_eq!(store.user_for_customer(&customer).await.unwrap(), Some(id));

    // A second checkout reuses the stored customer: no new customer call.
    let (status, _, _) = checkout(&app, &user).await;
    assert_eq!(status, 200);
    assert_eq!(stub.sent_to("POST /v1/customers").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_first_checkouts_all_answer_200_with_one_customer() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = Arc::new(app(store.clone(), Some(&stub.uri())));
    let user = tokens::new_user();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (app, user) = (Arc::clone(&app), user.clone());
            tokio::spawn(async move { checkout(&app, &user).await.0 })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    let keys: std::collections::HashSet<_> = stub
        .sent_to("POST /v1/customers")
        .await
        .into_iter()
        .map(|s| s.idempotency_key)
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "every create carried the one key, so Stripe made one customer"
    );
    let customer = customer_for_key(&format!("customer-{user}"));
    let items = emulator::items_of(&user).await;
    assert_eq!(items.len(), 1, "one record");
    assert_eq!(items[0]["stripe_customer_id"].as_s().unwrap(), &customer);
    let sessions = stub.sent_to("POST /v1/checkout/sessions").await;
    assert!(
        sessions
            .iter()
            .all(|s| s.field("customer") == Some(customer.as_str()))
    );
}

#[tokio::test]
async fn already_subscribed_is_409_from_the_stored_state_without_calling_stripe() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
    let (user, _) = seeded(&store, Some(&customer), "active").await;
    let (status, _, body) = checkout(&app, &user).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "ALREADY_SUBSCRIBED");
    assert_eq!(body["detail"], "You already have an active subscription.");
    assert!(stub.sent().await.is_empty());
}

#[tokio::test]
async fn already_subscribed_at_stripe_is_409_and_the_record_catches_up() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
    let (user, id) = seeded(&store, Some(&customer), "none").await;
    stub.subscriptions(vec![subscription(
        "sub_trial",
        &customer,
        "trialing",
        1_700_000_000,
        1_800_000_000,
    )])
    .await;

    let (status, _, body) = checkout(&app, &user).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("ALREADY_SUBSCRIBED"))
    );
    assert!(stub.sent_to("POST /v1/checkout/sessions").await.is_empty());
    let listed = stub.sent_to("GET /v1/subscriptions").await;
    assert_eq!(listed[0].field("customer"), Some(customer.as_str()));
    assert_eq!(listed[0].field("status"), Some("all"));
    let record = store.get_user(&id).await.unwrap().unwrap();
    assert_eq!(
        (record.subscription_status.as_str(), record.plan.as_str()),
        ("trialing", "pro")
    );
}

#[tokio::test]
async fn portal_needs_a_customer() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let portal = |user: String| {
        let app = &app;
        async move {
            parts(
                integration_tests::apps::handle(
                    "create-portal-session",
                    app,
                    request("create-portal-session.json", &user),
                )
                .await,
            )
        }
    };

    let (status, _, body) = portal(tokens::new_user()).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "NO_SUBSCRIPTION");
    assert_eq!(
        body["detail"],
        "No subscription found. Please subscribe first."
    );
    assert!(stub.sent().await.is_empty());

    let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
    let (user, _) = seeded(&store, Some(&customer), "active").await;
    stub.add_customer(&customer, &user);
    let (status, _, body) = portal(user).await;
    assert_eq!(status, 200, "{body}");
    let url = body["portal_url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with(&format!("{}/portal/bps_", stub.uri())),
        "{body}"
    );
    let sent = stub.sent_to("POST /v1/billing_portal/sessions").await;
    assert_eq!(sent[0].field("customer"), Some(customer.as_str()));
    assert_eq!(
        sent[0].field("return_url"),
        Some("https://chuk.chat/subscription")
    );
    assert!(sent[0].idempotency_key.is_some());
}

async fn sync(app: &common::App, user: &str) -> (u16, Value) {
    let (status, _, body) = parts(
        integration_tests::apps::handle(
            "sync-subscription",
            app,
            request("sync-subscription.json", user),
        )
        .await,
    );
    (status, body)
}

#[tokio::test]
async fn sync_without_a_customer_is_the_free_status() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store, Some(&stub.uri()));
    let (status, body) = sync(&app, &tokens::new_user()).await;
    assert_eq!(status, 200);
    assert_eq!(body["subscription_status"], "none");
    assert_eq!(body["has_subscription"], false);
    assert_eq!(body["free_messages_remaining"], 10);
    assert!(stub.sent().await.is_empty());
}

/// One sync scenario: the customer's subscriptions at Stripe, and what the sync must pick.
struct Case {
    name: &'static str,
    /// (id, status, created, cancel_at_period_end)
    subs: Vec<(&'static str, &'static str, i64, bool)>,
    expected_status: &'static str,
    chosen: Option<&'static str>,
    subscribed: bool,
}

#[tokio::test]
async fn sync_picks_the_subscription_that_matters() {
    let case = |name, subs, expected_status, chosen, subscribed| Case {
        name,
        subs,
        expected_status,
        chosen,
        subscribed,
    };
    let cases = vec![
        case(
            "active beats a newer canceled",
            vec![
                ("sub_old", "active", 100, true),
                ("sub_new", "canceled", 200, false),
            ],
            "active",
            Some("sub_old"),
            true,
        ),
        case(
            "past_due beats canceled",
            vec![
                ("sub_c", "canceled", 300, false),
                ("sub_p", "past_due", 100, false),
            ],
            "past_due",
            Some("sub_p"),
            false,
        ),
        case(
            "trialing beats a newer past_due",
            vec![
                ("sub_p", "past_due", 300, false),
                ("sub_t", "trialing", 100, false),
            ],
            "trialing",
            Some("sub_t"),
            true,
        ),
        case(
            "newest among canceled",
            vec![
                ("sub_1", "canceled", 100, false),
                ("sub_2", "canceled", 200, false),
            ],
            "canceled",
            Some("sub_2"),
            false,
        ),
        case("no subscription at all", vec![], "none", None, false),
    ];
    for Case {
        name,
        subs,
        expected_status,
        chosen,
        subscribed,
    } in cases
    {
        let (stub, store) = (StripeStub::start().await, store().await);
        let app = app(store.clone(), Some(&stub.uri()));
        let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
        let (user, id) = seeded(&store, Some(&customer), "none").await;
        let fixtures = subs
            .iter()
            .map(|(sid, status, created, cancel)| {
                let mut sub =
                    subscription(sid, &customer, status, *created, 1_800_000_000 + created);
                sub["cancel_at_period_end"] = (*cancel).into();
                sub
            })
            .collect();
        stub.subscriptions(fixtures).await;

        let (status, body) = sync(&app, &user).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["subscription_status"], expected_status, "{name}");
        assert_eq!(body["has_subscription"], subscribed, "{name}");
        assert_eq!(
            body["current_plan"],
            if subscribed { "pro" } else { "free" },
            "{name}"
        );
        let record = store.get_user(&id).await.unwrap().unwrap();
        assert_eq!(record.subscription_id.as_deref(), chosen, "{name}");
        let chosen_sub = subs.iter().find(|s| Some(s.0) == chosen);
        assert_eq!(
            record.cancel_at_period_end,
            chosen_sub.is_some_and(|s| s.3),
            "{name}"
        );
        assert_eq!(
            record.current_period_end,
            chosen_sub.map(|s| 1_800_000_000 + s.2),
            "{name}"
        );
        assert_eq!(record.price_id.as_deref(), chosen.map(|_| PRICE), "{name}");
    }
}

#[tokio::test]
async fn pages_sync_follows_every_page_of_subscriptions() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
    let (user, id) = seeded(&store, Some(&customer), "none").await;
    // Four ended subscriptions, then the live one on the third page of two.
    let mut subs: Vec<Value> = (0..4)
        .map(|i| {
            subscription(
                &format!("sub_old{i}"),
                &customer,
                "canceled",
                100 + i,
                200 + i,
            )
        })
        .collect();
    subs.push(subscription(
        "sub_live",
        &customer,
        "active",
        50,
        1_900_000_000,
    ));
    stub.subscriptions(subs).await;
    stub.page_size(2);

    let (status, body) = sync(&app, &user).await;
    assert_eq!(
        (status, body["subscription_status"].as_str()),
        (200, Some("active"))
    );
    let record = store.get_user(&id).await.unwrap().unwrap();
    assert_eq!(record.subscription_id.as_deref(), Some("sub_live"));
    let pages = stub.sent_to("GET /v1/subscriptions").await;
    let after: Vec<Option<&str>> = pages.iter().map(|p| p.field("starting_after")).collect();
    assert_eq!(after, [None, Some("sub_old1"), Some("sub_old3")]);
}

#[tokio::test]
async fn transient_stripe_failures_are_retried_with_the_same_idempotency_key() {
    for status in [500, 429, 503] {
        let (stub, store) = (StripeStub::start().await, store().await);
        let app = app(store.clone(), Some(&stub.uri()));
        stub.fail("POST", "/v1/customers", status, Some(1)).await;
        stub.fail("POST", "/v1/checkout/sessions", status, Some(1))
            .await;
        let user = tokens::new_user();
        let (code, _, body) = checkout(&app, &user).await;
        assert_eq!(code, 200, "after a {status}: {body}");
        let creates = stub.sent_to("POST /v1/customers").await;
        assert_eq!(creates.len(), 2, "one retry after a {status}");
        assert_eq!(creates[0].idempotency_key, creates[1].idempotency_key);
        let sessions = stub.sent_to("POST /v1/checkout/sessions").await;
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].idempotency_key, sessions[1].idempotency_key);
    }
}

#[tokio::test]
async fn stripe_failing_for_good_is_502_and_changes_nothing() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    stub.fail("POST", "/v1/customers", 500, None).await;
    let (user, id) = seeded(&store, None, "none").await;
    let before = store.get_user(&id).await.unwrap();

    let (status, headers, body) = checkout(&app, &user).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "STRIPE_ERROR");
    assert!(
        !body.to_string().contains("4242"),
        "Stripe's message never reaches the client"
    );
    assert!(headers.get("retry-after").is_none());
    assert_eq!(
        stub.sent_to("POST /v1/customers").await.len(),
        3,
        "gave up after 3 attempts"
    );
    // Only the note that a customer may exist at Stripe (a lost reply may have made one), so
    // that an erasure knows to look.
    let mut expected = before.unwrap();
    expected.stripe_customer_possible = true;
    assert_eq!(store.get_user(&id).await.unwrap(), Some(expected));
    assert_eq!(emulator::items_of(&user).await.len(), 1);
}

#[tokio::test]
async fn stripe_rate_limiting_for_good_is_503_with_retry_after() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
    let (user, id) = seeded(&store, Some(&customer), "none").await;
    let before = store.get_user(&id).await.unwrap();
    stub.fail("GET", "/v1/subscriptions", 429, None).await;
    let (status, body) = sync(&app, &user).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "STRIPE_UNAVAILABLE");
    assert_eq!(body["error"]["details"]["retry_after"], 5);
    assert_eq!(store.get_user(&id).await.unwrap(), before);
}

#[tokio::test]
async fn a_stripe_timeout_is_502_within_bounds_and_changes_nothing() {
    let (stub, store) = (StripeStub::start().await, store().await);
    let app = app(store.clone(), Some(&stub.uri()));
    let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
    let (user, id) = seeded(&store, Some(&customer), "active").await;
    // A hang: each attempt times out (2 s here), and the answer comes long before Stripe's.
    stub.delay(
        "POST",
        "/v1/billing_portal/sessions",
        Duration::from_secs(60),
    )
    .await;
    let before = store.get_user(&id).await.unwrap();
    let started = std::time::Instant::now();
    let (status, _, body) = parts(
        integration_tests::apps::handle(
            "create-portal-session",
            &app,
            request("create-portal-session.json", &user),
        )
        .await,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("STRIPE_ERROR"))
    );
    println!(
        "portal, Stripe hanging: {status} after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < integration_tests::FUNCTION_DEADLINE,
        "3 attempts of 2 s plus backoff, before the function's deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(store.get_user(&id).await.unwrap(), before);
}

#[tokio::test]
async fn without_stripe_settings_billing_endpoints_say_what_to_set() {
    let app = app(store().await, None);
    let user = tokens::new_user();
    for response in [
        integration_tests::apps::handle(
            "create-checkout-session",
            &app,
            request("create-checkout-session.json", &user),
        )
        .await,
        integration_tests::apps::handle(
            "create-portal-session",
            &app,
            request("create-portal-session.json", &user),
        )
        .await,
        integration_tests::apps::handle(
            "sync-subscription",
            &app,
            request("sync-subscription.json", &user),
        )
        .await,
    ] {
        let (status, _, body) = parts(response);
        assert_eq!(status, 503);
        assert_eq!(body["error"]["code"], "BILLING_NOT_CONFIGURED");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("STRIPE_SECRET_KEY")
        );
    }
}

#[tokio::test]
async fn billing_endpoints_refuse_other_methods_and_missing_tokens() {
    let stub = StripeStub::start().await;
    let app = app(store().await, Some(&stub.uri()));
    let mut get = request("sync-subscription.json", &tokens::new_user());
    *get.method_mut() = http::Method::GET;
    let (status, headers, _) =
        parts(integration_tests::apps::handle("sync-subscription", &app, get).await);
    assert_eq!((status, headers["allow"].to_str().unwrap()), (405, "POST"));
    let mut anonymous = request("create-checkout-session.json", &tokens::new_user());
    anonymous.headers_mut().remove(http::header::AUTHORIZATION);
    let (status, _, body) =
        parts(integration_tests::apps::handle("create-checkout-session", &app, anonymous).await);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    assert!(stub.sent().await.is_empty());
}
