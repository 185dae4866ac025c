//! The store conformance suite: the same test functions run against every [`Store`]
//! (`tests/store_conformance.rs` instantiates them for the embedded store and for DynamoDB on
//! the emulator), so the two implementations cannot drift apart.

use std::sync::Arc;

use common::config::Rules;
use common::store::{Store, StoreError, SubscriptionView, UserRecord};
use common::users::{self, UserId};

fn new_user() -> UserId {
    UserId::parse(&crate::tokens::new_user()).expect("uuid")
}

fn record(user: &UserId) -> UserRecord {
    UserRecord::new_free(user.clone(), 10, 1_700_000_000)
}

/// An unknown user reads as `None`, not as an empty record.
pub async fn missing_user_reads_as_none(store: Arc<dyn Store>) {
    assert_eq!(store.get_user(&new_user()).await.unwrap(), None);
}

/// What is created reads back field for field.
pub async fn created_user_reads_back_identically(store: Arc<dyn Store>) {
    let user = new_user();
    let mut written = record(&user);
    written.credits_remaining = 850;
    written.free_messages_remaining = 3;
    assert!(store.create_user(&written).await.unwrap());
    assert_eq!(store.get_user(&user).await.unwrap(), Some(written));
}

/// A second create writes nothing and reports it.
pub async fn second_create_changes_nothing(store: Arc<dyn Store>) {
    let user = new_user();
    let first = record(&user);
    assert!(store.create_user(&first).await.unwrap());
    let mut second = record(&user);
    second.free_messages_remaining = 0;
    second.created_at += 60;
    assert!(!store.create_user(&second).await.unwrap());
    assert_eq!(store.get_user(&user).await.unwrap(), Some(first));
}

/// Twenty racing creates: exactly one wins.
pub async fn concurrent_creates_make_exactly_one_record(store: Arc<dyn Store>) {
    let user = new_user();
    let attempts = (0..20).map(|i| {
        let store = Arc::clone(&store);
        let mut candidate = record(&user);
        candidate.created_at += i;
        tokio::spawn(async move {
            store
                .create_user(&candidate)
                .await
                .unwrap()
                .then_some(candidate)
        })
    });
    let mut winners = Vec::new();
    for attempt in attempts {
        winners.extend(attempt.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one create wins");
    assert_eq!(
        store.get_user(&user).await.unwrap().as_ref(),
        winners.first()
    );
}

/// Twenty racing first requests all see the one record that was created.
pub async fn concurrent_first_sight_agrees_on_one_record(store: Arc<dyn Store>) {
    let user = new_user();
    let rules = Rules { free_messages: 10 };
    let calls = (0..20).map(|_| {
        let (store, user, rules) = (Arc::clone(&store), user.clone(), rules.clone());
        tokio::spawn(async move {
            users::load_or_create(store.as_ref(), &user, &rules)
                .await
                .unwrap()
        })
    });
    let mut seen = Vec::new();
    for call in calls {
        seen.push(call.await.unwrap());
    }
    let stored = store.get_user(&user).await.unwrap().expect("record exists");
    assert!(
        seen.iter().all(|r| *r == stored),
        "every caller saw the stored record"
    );
    assert_eq!(stored.free_messages_remaining, 10);
    assert_eq!(stored.plan, "free");
}

/// Records of different users never mix.
pub async fn users_are_independent(store: Arc<dyn Store>) {
    let (a, b) = (new_user(), new_user());
    let mut rb = record(&b);
    rb.credits_remaining = 5;
    assert!(store.create_user(&record(&a)).await.unwrap());
    assert!(store.create_user(&rb).await.unwrap());
    assert_eq!(
        store.get_user(&a).await.unwrap().unwrap().credits_remaining,
        0
    );
    assert_eq!(
        store.get_user(&b).await.unwrap().unwrap().credits_remaining,
        5
    );
}

fn view(status: &str, observed_at_ms: i64) -> SubscriptionView {
    SubscriptionView {
        plan: if status == "active" {
            "pro".into()
        } else {
            "free".into()
        },
        status: status.into(),
        subscription_id: Some(format!("sub_{observed_at_ms}")),
        price_id: Some("price_1".into()),
        current_period_end: Some(1_800_000_000),
        cancel_at_period_end: status == "active",
        observed_at_ms,
    }
}

/// A customer is linked both ways: user→customer on the record, customer→user for webhooks.
pub async fn customer_is_linked_both_ways(store: Arc<dyn Store>) {
    let user = new_user();
    let customer = format!("cus_{}", crate::tokens::new_user().replace('-', ""));
    assert!(store.create_user(&record(&user)).await.unwrap());
    assert_eq!(store.user_for_customer(&customer).await.unwrap(), None);
    assert_eq!(
        store.link_customer(&user, &customer).await.unwrap(),
        customer
    );
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .stripe_customer_id,
        Some(customer.clone())
    );
    assert_eq!(
        store.user_for_customer(&customer).await.unwrap(),
        Some(user.clone())
    );
    // Linking the same customer again is harmless.
    assert_eq!(
        store.link_customer(&user, &customer).await.unwrap(),
        customer
    );
}

/// The first linked customer stays; a second one is neither linked nor mapped.
pub async fn first_linked_customer_stays(store: Arc<dyn Store>) {
    let user = new_user();
    assert!(store.create_user(&record(&user)).await.unwrap());
    let first = format!("cus_a{}", crate::tokens::new_user().replace('-', ""));
    let second = format!("cus_b{}", crate::tokens::new_user().replace('-', ""));
    store.link_customer(&user, &first).await.unwrap();
    assert_eq!(store.link_customer(&user, &second).await.unwrap(), first);
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .stripe_customer_id,
        Some(first)
    );
    assert_eq!(store.user_for_customer(&second).await.unwrap(), None);
}

/// No record, no link and no subscription write.
pub async fn billing_writes_need_a_record(store: Arc<dyn Store>) {
    let user = new_user();
    assert_eq!(
        store.link_customer(&user, "cus_nobody").await,
        Err(StoreError::NoRecord)
    );
    assert_eq!(
        store.apply_subscription(&user, &view("active", 10)).await,
        Err(StoreError::NoRecord)
    );
    assert_eq!(store.get_user(&user).await.unwrap(), None);
    assert_eq!(store.user_for_customer("cus_nobody").await.unwrap(), None);
}

/// A subscription view is written whole, and an older view never overwrites a newer one.
pub async fn subscription_views_never_move_backwards(store: Arc<dyn Store>) {
    let user = new_user();
    let mut created = record(&user);
    created.credits_remaining = 42;
    assert!(store.create_user(&created).await.unwrap());
    let newer = view("active", 2_000);
    assert!(store.apply_subscription(&user, &newer).await.unwrap());
    let expected = created.clone().with_subscription(&newer);
    assert_eq!(store.get_user(&user).await.unwrap(), Some(expected.clone()));

    assert!(
        !store
            .apply_subscription(&user, &view("past_due", 1_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .apply_subscription(&user, &view("canceled", 2_000))
            .await
            .unwrap()
    );
    assert_eq!(store.get_user(&user).await.unwrap(), Some(expected.clone()));

    let mut gone = view("none", 3_000);
    gone.subscription_id = None;
    gone.price_id = None;
    gone.current_period_end = None;
    assert!(store.apply_subscription(&user, &gone).await.unwrap());
    let stored = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(stored, expected.with_subscription(&gone));
    assert_eq!(
        stored.credits_remaining, 42,
        "the sync leaves balances alone"
    );
}
