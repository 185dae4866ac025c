//! The store conformance suite: the same test functions run against every [`Store`]
//! (`tests/store_conformance.rs` instantiates them for the embedded store and for DynamoDB on
//! the emulator), so the two implementations cannot drift apart.

use std::sync::Arc;

use common::config::Rules;
use common::domain::{
    Balance, Charge, CreditGrant, DebitId, DebitOutcome, DuePosition, EVENT_LEASE_SECS,
    ErasureStage, EventClaim, EventOutcome, OpenCheckout, PostOutcome, ReconcileCursor,
    RefundOutcome, SubscriptionStatus, SubscriptionView, Take, Tombstone, UserId, UserRecord,
};
use common::store::{Store, StoreError};
use common::users;

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
    let rules = Rules::default();
    let calls = (0..20).map(|_| {
        let (store, user, rules) = (Arc::clone(&store), user.clone(), rules.clone());
        tokio::spawn(async move {
            users::load_or_create(
                store.as_ref(),
                &common::domain::Caller::signed_in(&user),
                &rules,
            )
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
        status_since: observed_at_ms / 1000,
        next_check: Some(observed_at_ms / 1000 + 3600),
        charges_listed_at: Some(observed_at_ms / 1000),
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

    let mut gone = view("incomplete", 3_000);
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

async fn subscribed_user(store: &Arc<dyn Store>, status: &str, credits: i64) -> UserId {
    let user = new_user();
    let mut created = record(&user);
    created.subscription_status = status.into();
    created.credits_remaining = credits;
    assert!(store.create_user(&created).await.unwrap());
    user
}

fn grant(invoice: &str, created: i64) -> CreditGrant {
    CreditGrant {
        invoice_id: invoice.into(),
        invoice_created: created,
        plan: common::domain::PlanId::parse("pro").unwrap(),
        credits: 1000,
        starts_period: true,
        period_start: None,
        period_end: None,
        switches_period: false,
    }
}

/// A paid invoice starts the period once; older invoices and non-subscribers get nothing.
pub async fn credits_are_granted_once_per_invoice_and_never_backwards(store: Arc<dyn Store>) {
    let user = subscribed_user(&store, "active", 3).await;
    assert!(
        grant_credits(store.as_ref(), &user, &grant("in_2", 200))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        1000
    );
    debit(
        store.as_ref(),
        &user,
        Balance::Credits,
        "active",
        &debit_id(),
        1,
    )
    .await
    .unwrap();
    assert!(
        !grant_credits(store.as_ref(), &user, &grant("in_2", 200))
            .await
            .unwrap(),
        "same invoice"
    );
    assert!(
        !grant_credits(store.as_ref(), &user, &grant("in_1", 100))
            .await
            .unwrap(),
        "older invoice"
    );
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        999
    );
    assert!(
        grant_credits(store.as_ref(), &user, &grant("in_3", 300))
            .await
            .unwrap(),
        "next period"
    );
    let stored = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(stored.credits_remaining, 1000);
    assert_eq!(stored.granted_invoices.len(), 2);

    let lapsed = subscribed_user(&store, "canceled", 0).await;
    assert!(
        !grant_credits(store.as_ref(), &lapsed, &grant("in_9", 900))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_user(&lapsed)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        0
    );
    assert_eq!(
        grant_credits(store.as_ref(), &new_user(), &grant("in_9", 900)).await,
        Err(StoreError::NoRecord)
    );
}

/// A debit takes exactly one, never below zero, and only under the status it was decided on.
pub async fn debits_are_conditional(store: Arc<dyn Store>) {
    let user = subscribed_user(&store, "active", 1).await;
    assert_eq!(
        debit(
            store.as_ref(),
            &user,
            Balance::Credits,
            "past_due",
            &debit_id(),
            1
        )
        .await
        .unwrap(),
        DebitOutcome::Refused
    );
    assert_eq!(
        debit(
            store.as_ref(),
            &user,
            Balance::Credits,
            "active",
            &debit_id(),
            1
        )
        .await
        .unwrap(),
        DebitOutcome::Charged
    );
    assert_eq!(
        debit(
            store.as_ref(),
            &user,
            Balance::Credits,
            "active",
            &debit_id(),
            1
        )
        .await
        .unwrap(),
        DebitOutcome::Refused
    );
    assert_eq!(
        debit(
            store.as_ref(),
            &user,
            Balance::FreeMessages,
            "active",
            &debit_id(),
            1
        )
        .await
        .unwrap(),
        DebitOutcome::Charged
    );
    let stored = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (stored.credits_remaining, stored.free_messages_remaining),
        (0, 9)
    );
    assert_eq!(
        debit(
            store.as_ref(),
            &new_user(),
            Balance::FreeMessages,
            "none",
            &debit_id(),
            1
        )
        .await
        .unwrap(),
        DebitOutcome::Refused
    );
}

/// A debit id is charged once however often it is retried, also concurrently; an erasure takes
/// the ledger with the user.
pub async fn a_debit_id_is_charged_once(store: Arc<dyn Store>) {
    let user = subscribed_user(&store, "active", 5).await;
    let id = debit_id();
    let retries = (0..10).map(|_| {
        let (store, user, id) = (Arc::clone(&store), user.clone(), id.clone());
        tokio::spawn(async move {
            debit(
                store.as_ref(),
                &user,
                Balance::Credits,
                "active",
                &id,
                1_000,
            )
            .await
            .unwrap()
        })
    });
    let mut outcomes = Vec::new();
    for retry in retries {
        outcomes.push(retry.await.unwrap());
    }
    let charged = outcomes
        .iter()
        .filter(|o| **o == DebitOutcome::Charged)
        .count();
    assert_eq!(charged, 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| *o != DebitOutcome::Refused),
        "{outcomes:?}"
    );
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        4
    );
    assert_eq!(
        debit(
            store.as_ref(),
            &user,
            Balance::Credits,
            "active",
            &debit_id(),
            1_000
        )
        .await
        .unwrap(),
        DebitOutcome::Charged,
        "another id is another message"
    );
    assert!(
        store.delete_owned_items(&user).await.unwrap() >= 2,
        "ledger items are the user's"
    );
}

/// A refund gives back exactly what its debit took, once, even when ten arrive at once; an id
/// never charged gives nothing; a refunded id is charged anew (the message is retried).
pub async fn a_refund_gives_back_what_its_debit_took_once(store: Arc<dyn Store>) {
    let user = subscribed_user(&store, "active", 5).await;
    let credit = debit_id();
    debit(
        store.as_ref(),
        &user,
        Balance::Credits,
        "active",
        &credit,
        1_000,
    )
    .await
    .unwrap();
    let refunds = (0..10).map(|_| {
        let (store, user, id) = (Arc::clone(&store), user.clone(), credit.clone());
        tokio::spawn(async move { store.refund(&user, &id).await.unwrap() })
    });
    let mut outcomes = Vec::new();
    for refund in refunds {
        outcomes.push(refund.await.unwrap());
    }
    let refunded = outcomes
        .iter()
        .filter(|o| **o == RefundOutcome::Refunded)
        .count();
    assert_eq!(refunded, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RefundOutcome::Refunded | RefundOutcome::AlreadyRefunded)),
        "{outcomes:?}"
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (record.credits_remaining, record.free_messages_remaining),
        (5, 10),
        "the credit is back, nothing else moved"
    );
    assert_eq!(
        store.refund(&user, &debit_id()).await.unwrap(),
        RefundOutcome::NotCharged
    );
    assert_eq!(
        debit(
            store.as_ref(),
            &user,
            Balance::Credits,
            "active",
            &credit,
            1_000
        )
        .await
        .unwrap(),
        DebitOutcome::Charged,
        "a refunded id is charged anew: its retry is not free"
    );
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        4
    );
    assert_eq!(
        debit(
            store.as_ref(),
            &user,
            Balance::Credits,
            "active",
            &credit,
            1_000
        )
        .await
        .unwrap(),
        DebitOutcome::AlreadyCharged,
        "and charged once again"
    );
    assert_eq!(
        store.refund(&user, &credit).await.unwrap(),
        RefundOutcome::Refunded,
        "the new charge is refunded on its own"
    );
    assert_eq!(
        store.refund(&user, &credit).await.unwrap(),
        RefundOutcome::AlreadyRefunded
    );
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        5
    );

    // A free message comes back as a free message.
    let free_user = new_user();
    let free = UserRecord::new_free(free_user.clone(), 3, 1_700_000_000);
    assert!(store.create_user(&free).await.unwrap());
    let message = debit_id();
    debit(
        store.as_ref(),
        &free_user,
        Balance::FreeMessages,
        "none",
        &message,
        1_000,
    )
    .await
    .unwrap();
    assert_eq!(
        store.refund(&free_user, &message).await.unwrap(),
        RefundOutcome::Refunded
    );
    let record = store.get_user(&free_user).await.unwrap().unwrap();
    assert_eq!(
        (record.free_messages_remaining, record.credits_remaining),
        (3, 0)
    );
}

/// 100 concurrent debits against 10, each reading again while the balance moved under it (as
/// the debit primitive does): exactly 10 succeed, for credits and for free messages.
pub async fn concurrent_debits_never_overspend(store: Arc<dyn Store>) {
    for (balance, status) in [
        (Balance::Credits, "active"),
        (Balance::FreeMessages, "none"),
    ] {
        let user = subscribed_user(&store, status, 10).await;
        let debits = (0..100).map(|_| {
            let (store, user) = (Arc::clone(&store), user.clone());
            tokio::spawn(async move {
                let id = debit_id();
                loop {
                    let outcome = debit(store.as_ref(), &user, balance, status, &id, 1);
                    let outcome = outcome.await.unwrap();
                    let record = store.get_user(&user).await.unwrap().unwrap();
                    if outcome == DebitOutcome::Charged || record.balance(balance) == 0 {
                        return outcome;
                    }
                }
            })
        });
        let mut successes = 0;
        for debit in debits {
            successes += usize::from(debit.await.unwrap() == DebitOutcome::Charged);
        }
        assert_eq!(successes, 10, "{balance:?}");
        let stored = store.get_user(&user).await.unwrap().unwrap();
        assert_eq!(stored.balance(balance), 0, "{balance:?}");
    }
}

/// An event is claimed once; done stays done; failed or abandoned can be claimed again.
pub async fn events_are_claimed_exactly_once(store: Arc<dyn Store>) {
    let event = format!("evt_{}", crate::tokens::new_user());
    let now = 1_800_000_000;
    assert_eq!(
        store.begin_event(&event, now).await.unwrap(),
        EventClaim::Claimed
    );
    assert_eq!(
        store.begin_event(&event, now + 1).await.unwrap(),
        EventClaim::InProgress
    );
    store
        .finish_event(&event, EventOutcome::Failed, now + 2)
        .await
        .unwrap();
    assert_eq!(
        store.begin_event(&event, now + 3).await.unwrap(),
        EventClaim::Claimed,
        "failed"
    );
    assert_eq!(
        store
            .begin_event(&event, now + 3 + EVENT_LEASE_SECS + 1)
            .await
            .unwrap(),
        EventClaim::Claimed,
        "abandoned past its lease"
    );
    store
        .finish_event(&event, EventOutcome::Done, now + 100)
        .await
        .unwrap();
    assert_eq!(
        store.begin_event(&event, now + 101).await.unwrap(),
        EventClaim::AlreadyDone
    );
    assert_eq!(
        store.begin_event(&event, now + 10_000).await.unwrap(),
        EventClaim::AlreadyDone
    );
}

/// Concurrent deliveries of one event: exactly one claims it.
pub async fn concurrent_deliveries_claim_once(store: Arc<dyn Store>) {
    let event = format!("evt_{}", crate::tokens::new_user());
    let claims = (0..10).map(|_| {
        let (store, event) = (Arc::clone(&store), event.clone());
        tokio::spawn(async move { store.begin_event(&event, 1_800_000_000).await.unwrap() })
    });
    let mut claimed = 0;
    for claim in claims {
        claimed += usize::from(claim.await.unwrap() == EventClaim::Claimed);
    }
    assert_eq!(claimed, 1);
}

/// A subscription that ended drops the paid credits; free messages stay.
pub async fn ended_subscriptions_drop_credits_not_free_messages(store: Arc<dyn Store>) {
    let user = subscribed_user(&store, "active", 500).await;
    debit(
        store.as_ref(),
        &user,
        Balance::FreeMessages,
        "active",
        &debit_id(),
        1,
    )
    .await
    .unwrap();
    assert!(
        store
            .apply_subscription(&user, &view("past_due", 10))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        500,
        "past_due keeps them"
    );
    assert!(
        store
            .apply_subscription(&user, &view("canceled", 20))
            .await
            .unwrap()
    );
    let stored = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.credits_remaining,
            stored.free_messages_remaining,
            stored.plan.as_str()
        ),
        (0, 9, "free")
    );
}

/// Erasure primitives: tombstone, owned items, mapping, profile; other users untouched.
pub async fn erasure_removes_the_user_and_leaves_a_tombstone(store: Arc<dyn Store>) {
    let (user, neighbour) = (new_user(), new_user());
    let customer = format!("cus_{}", crate::tokens::new_user().replace('-', ""));
    assert!(store.create_user(&record(&user)).await.unwrap());
    assert!(store.create_user(&record(&neighbour)).await.unwrap());
    store.link_customer(&user, &customer).await.unwrap();
    assert_eq!(store.tombstone(&user).await.unwrap(), None);

    let mut tombstone = Tombstone {
        erased_at: 1_800_000_000,
        expires_at: 1_800_000_000 + 90 * 86_400,
        stage: ErasureStage::StripeClosed,
    };
    store.write_tombstone(&user, &tombstone).await.unwrap();
    assert_eq!(store.tombstone(&user).await.unwrap(), Some(tombstone));
    assert_eq!(
        store.delete_owned_items(&user).await.unwrap(),
        0,
        "only the profile is here"
    );
    assert!(
        store.get_user(&user).await.unwrap().is_some(),
        "the profile goes last"
    );
    store.delete_customer_link(&customer).await.unwrap();
    store.delete_profile(&user).await.unwrap();

    // The stage moves on by overwriting the tombstone.
    tombstone.stage = ErasureStage::StoredErased;
    store.write_tombstone(&user, &tombstone).await.unwrap();
    assert_eq!(store.tombstone(&user).await.unwrap(), Some(tombstone));
    assert_eq!(store.get_user(&user).await.unwrap(), None);
    assert_eq!(store.user_for_customer(&customer).await.unwrap(), None);
    assert_eq!(store.tombstone(&neighbour).await.unwrap(), None);
    assert!(store.get_user(&neighbour).await.unwrap().is_some());
    // Repeating every step is harmless.
    store.delete_customer_link(&customer).await.unwrap();
    store.delete_profile(&user).await.unwrap();
    assert_eq!(store.delete_owned_items(&user).await.unwrap(), 0);
}

/// A tombstoned user is not recreated on first sight: 410.
pub async fn tombstoned_users_are_not_recreated(store: Arc<dyn Store>) {
    let user = new_user();
    let tombstone = Tombstone {
        erased_at: 1,
        expires_at: 2,
        stage: ErasureStage::LoginDeleted,
    };
    store.write_tombstone(&user, &tombstone).await.unwrap();
    let result = users::load_or_create(
        store.as_ref(),
        &common::domain::Caller::signed_in(&user),
        &Rules::default(),
    )
    .await;
    assert_eq!(result, Err(common::ApiError::AccountDeleted));
    assert_eq!(store.get_user(&user).await.unwrap(), None);
}

/// A fresh debit id, as the chat service's message id would be.
/// Users due for reconciliation are listed by due time from the index, page by page, after a
/// position; users without a due time (no customer) never are; unlinking takes a user out.
pub async fn due_users_are_listed_in_order_page_by_page(store: Arc<dyn Store>) {
    // Due times far before any other test's, so that a shared table's other users stay out.
    let base = -(rand_offset() + 1_000_000);
    let mut expected = Vec::new();
    for offset in [3, 1, 2, 1, 5] {
        let mut record = record(&new_user());
        record.next_check = Some(base + offset);
        store.create_user(&record).await.unwrap();
        expected.push(DuePosition {
            due_at: base + offset,
            user: record.user_id,
        });
    }
    store.create_user(&record(&new_user())).await.unwrap(); // no customer: never due
    expected.sort_by_key(|p| (p.due_at, p.user.as_str().to_owned()));
    let not_yet = expected.pop().unwrap(); // due at base + 5

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (page, more) = store.due_users(base + 4, after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().cloned());
        after = page.last().cloned();
        if !more {
            break;
        }
    }
    assert_eq!(seen, expected);
    let (all, _) = store.due_users(base + 5, None, 100).await.unwrap();
    assert_eq!(all.last(), Some(&not_yet));

    // Linking makes a user due within the hour; unlinking takes the user out again.
    let user = new_user();
    store.create_user(&record(&user)).await.unwrap();
    let customer = format!("cus_{}", uuid::Uuid::new_v4().simple());
    store.link_customer(&user, &customer).await.unwrap();
    let linked = store.get_user(&user).await.unwrap().unwrap();
    let soon = linked.next_check.expect("due once linked");
    assert!(soon > common::unix_now() && soon <= common::unix_now() + 3600);
    store.unlink_customer(&user, &customer).await.unwrap();
    assert_eq!(
        store.get_user(&user).await.unwrap().unwrap().next_check,
        None
    );
}

/// The cursor of a reconciliation pass is stored, replaced and removed.
pub async fn the_reconcile_cursor_round_trips(store: Arc<dyn Store>) {
    let cursor = ReconcileCursor {
        pass_started_at: 1_700_000_000,
        after: Some(DuePosition {
            due_at: 1_699_999_000,
            user: new_user(),
        }),
    };
    store.save_reconcile_cursor(Some(&cursor)).await.unwrap();
    assert_eq!(store.reconcile_cursor().await.unwrap(), Some(cursor));
    let fresh = ReconcileCursor {
        pass_started_at: 1_700_000_100,
        after: None,
    };
    store.save_reconcile_cursor(Some(&fresh)).await.unwrap();
    assert_eq!(store.reconcile_cursor().await.unwrap(), Some(fresh));
    store.save_reconcile_cursor(None).await.unwrap();
    assert_eq!(store.reconcile_cursor().await.unwrap(), None);
}

fn rand_offset() -> i64 {
    i64::from(uuid::Uuid::new_v4().as_u128() as u32)
}

/// A credit goes back only within the paid period it was taken in: a refund after a renewal or
/// after the subscription ended gives nothing back, and counts as done.
pub async fn a_refund_gives_back_only_within_the_debit_s_period(store: Arc<dyn Store>) {
    let user = subscribed_user(&store, "active", 5).await;
    let (before_renewal, before_end) = (debit_id(), debit_id());
    for id in [&before_renewal, &before_end] {
        let charged = debit(store.as_ref(), &user, Balance::Credits, "active", id, 1_000);
        assert_eq!(charged.await.unwrap(), DebitOutcome::Charged);
    }
    assert!(
        grant_credits(store.as_ref(), &user, &grant("in_next", 2_000))
            .await
            .unwrap()
    );
    assert_eq!(
        store.refund(&user, &before_renewal).await.unwrap(),
        RefundOutcome::Lapsed
    );
    assert_eq!(
        store
            .get_user(&user)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        1000,
        "the new period's credits, not one more"
    );
    assert_eq!(
        store.refund(&user, &before_renewal).await.unwrap(),
        RefundOutcome::AlreadyRefunded
    );

    // Taken in this period, refunded after the subscription ended: nothing comes back.
    let in_period = debit_id();
    let charged = debit(
        store.as_ref(),
        &user,
        Balance::Credits,
        "active",
        &in_period,
        1_000,
    );
    assert_eq!(charged.await.unwrap(), DebitOutcome::Charged);
    let mut ended = SubscriptionView::none(9_000_000_000_000);
    ended.status = SubscriptionStatus::Canceled;
    assert!(store.apply_subscription(&user, &ended).await.unwrap());
    assert_eq!(
        store.refund(&user, &in_period).await.unwrap(),
        RefundOutcome::Lapsed
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (record.credits_remaining, record.free_messages_remaining),
        (0, 10),
        "no credit on a canceled record"
    );
}

/// A debit of a credit read in a period that has ended since is refused (the caller reads again).
pub async fn a_debit_of_a_past_period_is_refused(store: Arc<dyn Store>) {
    let user = subscribed_user(&store, "active", 5).await;
    let status = SubscriptionStatus::Active;
    let id = debit_id();
    let takes = [Take {
        balance: Balance::Credits,
        amount: 1,
        before: 5,
    }];
    let stale = Charge {
        debit_id: &id,
        takes: &takes,
        status_seen: &status,
        period: 1_234,
        at: 1_000,
    };
    assert_eq!(
        store.debit(&user, &stale).await.unwrap(),
        DebitOutcome::Refused
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.credits_remaining, 5, "nothing was taken");
    let again = debit(
        store.as_ref(),
        &user,
        Balance::Credits,
        "active",
        &id,
        1_000,
    );
    assert_eq!(
        again.await.unwrap(),
        DebitOutcome::Charged,
        "nothing was recorded"
    );
}

/// From the moment an erasure marks the record, no customer can be linked or expected, and the
/// mark stays with its first time; the open Checkout session is kept on the record.
pub async fn a_record_being_erased_links_no_customer(store: Arc<dyn Store>) {
    let user = new_user();
    assert!(store.create_user(&record(&user)).await.unwrap());
    let fresh = store.get_user(&user).await.unwrap().unwrap();
    assert!(!fresh.stripe_customer_possible && fresh.erasing_since.is_none());
    store.expect_customer(&user).await.unwrap();
    let open = OpenCheckout {
        id: "cs_test_1".into(),
        url: "https://checkout.stripe.com/c/pay/cs_test_1".into(),
        expires_at: 1_800_003_600,
        price_id: "price_plus".into(),
    };
    let recorded = store.set_open_checkout(&user, None, Some(&open)).await;
    assert_eq!(recorded, Ok(true));
    let racing = OpenCheckout {
        id: "cs_test_2".into(),
        ..open.clone()
    };
    let overwritten = store.set_open_checkout(&user, None, Some(&racing)).await;
    assert_eq!(
        overwritten,
        Ok(false),
        "a concurrent checkout's session does not overwrite the one recorded"
    );
    let expecting = store.get_user(&user).await.unwrap().unwrap();
    assert!(expecting.stripe_customer_possible);
    assert_eq!(expecting.open_checkout.as_ref(), Some(&open));
    let cleared = store
        .set_open_checkout(&user, Some("cs_test_1"), None)
        .await;
    assert_eq!(cleared, Ok(true));

    store.mark_erasing(&user, 1_800_000_000).await.unwrap();
    store.mark_erasing(&user, 1_900_000_000).await.unwrap();
    let customer = format!("cus_{}", crate::tokens::new_user().replace('-', ""));
    assert_eq!(
        store.link_customer(&user, &customer).await,
        Err(StoreError::Erasing)
    );
    assert_eq!(store.expect_customer(&user).await, Err(StoreError::Erasing));
    let message = debit_id();
    let in_flight = debit(
        store.as_ref(),
        &user,
        Balance::FreeMessages,
        "none",
        &message,
        1,
    );
    assert_eq!(
        in_flight.await.unwrap(),
        DebitOutcome::Refused,
        "no message is debited once erasing"
    );
    let late = store.set_open_checkout(&user, None, Some(&open)).await;
    assert_eq!(
        late,
        Err(StoreError::Erasing),
        "no session is recorded once erasing"
    );
    let marked = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (
            marked.erasing_since,
            marked.stripe_customer_id,
            marked.open_checkout
        ),
        (Some(1_800_000_000), None, None)
    );
    assert_eq!(store.user_for_customer(&customer).await.unwrap(), None);
    // No record: nothing to mark, no error.
    store
        .mark_erasing(&new_user(), 1_800_000_000)
        .await
        .unwrap();
}

/// A debit of one message of `user` from `balance`, chosen under `status`, at `at`.
pub async fn debit(
    store: &dyn Store,
    user: &UserId,
    balance: Balance,
    status: &str,
    debit_id: &DebitId,
    at: i64,
) -> Result<DebitOutcome, StoreError> {
    let status_seen = SubscriptionStatus::parse(status);
    // The period and the balance the caller read, as the debit primitive reads them.
    let (period, before) = match store.get_user(user).await? {
        Some(record) => (record.last_grant_created, record.balance(balance)),
        None => (0, 1),
    };
    let takes = [Take {
        balance,
        amount: 1,
        before,
    }];
    let charge = Charge {
        debit_id,
        takes: &takes,
        status_seen: &status_seen,
        period,
        at,
    };
    store.debit(user, &charge).await
}

/// The grant of `grant` to `user`, as the sync decides and posts it: `Ok(false)` when nothing
/// is owed or it was posted before.
pub async fn grant_credits(
    store: &dyn Store,
    user: &UserId,
    grant: &CreditGrant,
) -> Result<bool, StoreError> {
    loop {
        let record = store.get_user(user).await?.ok_or(StoreError::NoRecord)?;
        let Ok(posting) = record.grant(grant) else {
            return Ok(false);
        };
        match store.post(user, &posting).await? {
            PostOutcome::Posted => return Ok(true),
            PostOutcome::AlreadyPosted => return Ok(false),
            PostOutcome::Moved => {}
        }
    }
}

fn debit_id() -> DebitId {
    DebitId::parse(&format!("msg_{}", uuid::Uuid::new_v4().simple())).unwrap()
}
