//! The erasure reaches every system that holds the user: Stripe (the linked customer and an
//! orphan found by search), our table, and the login at the auth service (the admin API's
//! stand-in). A fault at each step is answered with the contract's body, and the next call with
//! the same token finishes the job without repeating a call that already succeeded. The order
//! across the three systems follows from what each fault leaves behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::domain::{ErasureStage, UserId, UserRecord};
use common::store::{CustomerLinks, Erasures, Profiles, Store};
use integration_tests::apps::{app, erasure_app, login_config, parts, request};
use integration_tests::auth_admin_stub::{AuthAdminStub, SERVICE_ROLE_KEY};
use integration_tests::faulty_store::{FaultyStore, Strike};
use integration_tests::stripe_stub::{StripeStub, subscription};
use integration_tests::{FUNCTION_DEADLINE, emulator, tokens};
use serde_json::{Value, json};

/// Everything one erasure touches, seeded: a user with a profile, a linked customer with a live
/// subscription, an orphan customer (created at Stripe, never linked), stored items, a login.
struct World {
    stub: StripeStub,
    auth: AuthAdminStub,
    table: Arc<FaultyStore>,
    user: String,
    customer: String,
    orphan: String,
}

impl World {
    async fn new() -> World {
        let (stub, auth) = (StripeStub::start().await, AuthAdminStub::start().await);
        let dynamo: Arc<dyn Store> = Arc::new(emulator::store().await);
        let table = Arc::new(FaultyStore::new(dynamo, Default::default()));
        let user = tokens::new_user();
        let id = UserId::parse(&user).unwrap();
        table
            .create_user(&UserRecord::new_free(id.clone(), 10, 1))
            .await
            .unwrap();
        let customer = format!("cus_{}", tokens::new_user().replace('-', ""));
        table.link_customer(&id, &customer).await.unwrap();
        stub.add_customer(&customer, &user);
        let orphan = format!("cus_orphan{}", &tokens::new_user()[..8]);
        stub.add_customer(&orphan, &user);
        stub.subscriptions(vec![subscription("sub_live", &customer, "active", 2, 3)])
            .await;
        emulator::seed_items(&user, "CONV", 40).await;
        auth.add_user(&user);
        World {
            stub,
            auth,
            table,
            user,
            customer,
            orphan,
        }
    }

    fn app(&self) -> common::App {
        erasure_app(self.table.clone(), &self.stub.uri(), &self.auth.uri())
    }

    async fn delete(&self, app: &common::App) -> (u16, Value) {
        let req = request("delete-account.json", &self.user);
        let (status, _, body) =
            parts(integration_tests::apps::handle("delete-account", app, req).await);
        (status, body)
    }

    /// The Stripe routes called so far.
    async fn stripe_routes(&self) -> Vec<String> {
        self.stub
            .sent()
            .await
            .into_iter()
            .map(|s| s.route)
            .collect()
    }

    /// The store's deleting and tombstone calls so far, then forgets them.
    fn store_writes(&self) -> Vec<String> {
        let mut log = self.table.log.lock().unwrap();
        let writes = log
            .iter()
            .filter(|c| c.contains("delete") || c.contains("write_tombstone"))
            .cloned()
            .collect();
        log.clear();
        writes
    }

    async fn stage(&self) -> Option<ErasureStage> {
        let id = UserId::parse(&self.user).unwrap();
        let tombstone = self.table.tombstone(&id).await.unwrap();
        tombstone.map(|t| t.stage)
    }

    /// Every system shows the erasure complete.
    async fn assert_erased(&self) {
        assert_eq!(emulator::items_mentioning(&self.user).await, 0, "our table");
        assert_eq!(emulator::items_mentioning(&self.customer).await, 0);
        assert!(
            self.stub.customer_deleted(&self.customer),
            "linked customer"
        );
        assert!(self.stub.customer_deleted(&self.orphan), "orphan customer");
        assert!(!self.auth.has_user(&self.user), "the login");
        assert_eq!(self.stage().await, Some(ErasureStage::LoginDeleted));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_erasure_reaches_stripe_the_table_and_the_login() {
    let world = World::new().await;
    let app = world.app();

    assert_eq!(world.delete(&app).await, (200, json!({"deleted": true})));
    world.assert_erased().await;
    let routes = world.stripe_routes().await;
    assert_eq!(routes[0], "GET /v1/customers/search");
    for customer in [&world.customer, &world.orphan] {
        assert!(routes.contains(&format!("DELETE /v1/customers/{customer}")));
    }
    assert!(routes.contains(&"DELETE /v1/subscriptions/sub_live".to_owned()));
    let calls = world.auth.calls().await;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].route,
        format!("DELETE /auth/v1/admin/users/{}", world.user)
    );
    assert_eq!(calls[0].apikey.as_deref(), Some(SERVICE_ROLE_KEY));
    assert_eq!(
        calls[0].authorization,
        Some(format!("Bearer {SERVICE_ROLE_KEY}"))
    );
    assert_eq!(calls[0].body, Some(json!({"should_soft_delete": false})));

    // Again: 200, and not one more call anywhere but the tombstone's read.
    world.store_writes();
    let stripe_calls = world.stub.sent().await.len();
    assert_eq!(world.delete(&app).await.0, 200);
    assert_eq!(world.stub.sent().await.len(), stripe_calls);
    assert_eq!(world.auth.calls().await.len(), 1);
    assert_eq!(world.store_writes(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_failing_leaves_the_table_and_the_login_and_the_retry_finishes() {
    let world = World::new().await;
    let app = world.app();
    let orphan_route = format!("/v1/customers/{}", world.orphan);
    world.stub.fail("DELETE", &orphan_route, 500, Some(3)).await;

    let (status, body) = world.delete(&app).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("STRIPE_ERROR"))
    );
    assert_eq!(
        world.stage().await,
        None,
        "no tombstone before Stripe is closed"
    );
    assert!(world.store_writes().is_empty(), "nothing of ours touched");
    assert_eq!(
        emulator::items_mentioning(&world.user).await,
        40 + 2,
        "items, profile, mapping"
    );
    assert!(
        world.auth.calls().await.is_empty(),
        "the login is untouched"
    );

    assert_eq!(world.delete(&app).await.0, 200);
    world.assert_erased().await;
}

/// Before issue 24, the retry skipped the Stripe step it had recorded as done, so a customer made
/// for the user after it (a checkout from a second device) stayed at Stripe, billable, with no
/// account behind it. The retry runs the idempotent step again, and closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_failing_midway_is_503_and_the_retry_closes_stripe_again() {
    let world = World::new().await;
    let app = world.app();
    world.table.fail("delete_owned_items", 1, Strike::Before);

    let (status, body) = world.delete(&app).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("SERVICE_UNAVAILABLE"))
    );
    assert!(
        world.stub.customer_deleted(&world.orphan),
        "Stripe came first"
    );
    assert_eq!(world.stage().await, Some(ErasureStage::StripeClosed));
    assert!(world.auth.calls().await.is_empty(), "the login comes last");

    // Meanwhile a customer appears for the user (made at Stripe, never linked).
    let late = format!("cus_late{}", &tokens::new_user()[..8]);
    world.stub.add_customer(&late, &world.user);
    let searches = world.stub.sent_to("GET /v1/customers/search").await.len();
    assert_eq!(world.delete(&app).await.0, 200);
    assert_eq!(
        world.stub.sent_to("GET /v1/customers/search").await.len(),
        searches + 1,
        "the Stripe step runs again"
    );
    assert!(
        world.stub.customer_deleted(&late),
        "the late customer is closed"
    );
    world.assert_erased().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_service_failing_is_502_and_the_retry_only_deletes_the_login() {
    let world = World::new().await;
    let app = world.app();
    world.auth.fail(503, Some(3)).await;

    let (status, body) = world.delete(&app).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["detail"].is_string()
        ),
        (502, Some("AUTH_SERVICE_ERROR"), true)
    );
    assert_eq!(world.auth.calls().await.len(), 3, "5xx is retried, bounded");
    assert_eq!(world.stage().await, Some(ErasureStage::StoredErased));
    assert_eq!(emulator::items_mentioning(&world.user).await, 0);
    assert!(world.auth.has_user(&world.user));

    world.store_writes();
    let stripe_calls = world.stub.sent().await.len();
    assert_eq!(world.delete(&app).await.0, 200);
    assert_eq!(world.stub.sent().await.len(), stripe_calls);
    assert_eq!(
        world.store_writes(),
        ["store:write_tombstone"],
        "only the final stage is written"
    );
    world.assert_erased().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_auth_service_is_502_before_the_deadline_and_the_retry_finishes() {
    let world = World::new().await;
    let app = world.app();
    world.auth.hang(Duration::from_secs(60), 3).await;

    let started = Instant::now();
    let (status, body) = world.delete(&app).await;
    let took = started.elapsed();
    println!("delete-account, auth service hanging: {status} after {took:?}");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("AUTH_SERVICE_ERROR"))
    );
    assert!(took < FUNCTION_DEADLINE, "answered after {took:?}");

    assert_eq!(world.delete(&app).await.0, 200);
    world.assert_erased().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_service_role_key_is_502_not_retried_and_never_shown() {
    let world = World::new().await;
    let wrong_key = "not-the-service-role-key-0000000000";
    let login = common::login::LoginAdmin::new(login_config(&world.auth.uri(), wrong_key));
    let wrong = app(world.table.clone(), Some(&world.stub.uri())).with_login(login);

    let (status, body) = world.delete(&wrong).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("AUTH_SERVICE_ERROR"))
    );
    assert!(!body.to_string().contains(wrong_key));
    assert_eq!(world.auth.calls().await.len(), 1, "a 401 is not retried");
    assert!(world.auth.has_user(&world.user));

    // The operator fixes the key; the user's retry finishes.
    assert_eq!(world.delete(&world.app()).await.0, 200);
    world.assert_erased().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_login_deletion_off_the_login_stays_and_everything_else_goes() {
    let world = World::new().await;
    let app = app(world.table.clone(), Some(&world.stub.uri()));

    assert_eq!(world.delete(&app).await.0, 200);
    assert_eq!(emulator::items_mentioning(&world.user).await, 0);
    assert!(world.stub.customer_deleted(&world.orphan));
    assert!(world.auth.has_user(&world.user), "AUTH_USER_DELETION=off");
    assert!(world.auth.calls().await.is_empty());
    assert_eq!(world.stage().await, Some(ErasureStage::StoredErased));
}
