//! The debit primitive the chat service calls, on DynamoDB (emulator).

use std::sync::Arc;

use common::ApiError;
use common::config::Rules;
use common::credits::{DebitError, debit_message};
use common::domain::{Balance, UserId, UserRecord};
use common::store::Store;
use integration_tests::{emulator, tokens};

async fn user_with(store: &Arc<dyn Store>, status: &str, credits: i64, free: i64) -> UserId {
    let user = UserId::parse(&tokens::new_user()).unwrap();
    let mut record = UserRecord::new_free(user.clone(), free, 1);
    record.subscription_status = status.into();
    record.credits_remaining = credits;
    store.create_user(&record).await.unwrap();
    user
}

/// A fresh chat message id.
fn message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_debits_against_ten_succeed_ten_times() {
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    for (status, balance) in [
        ("active", Balance::Credits),
        ("none", Balance::FreeMessages),
    ] {
        let user = user_with(&store, status, 10, 10).await;
        let debits: Vec<_> = (0..100)
            .map(|_| {
                let (store, user) = (Arc::clone(&store), user.clone());
                tokio::spawn(async move {
                    debit_message(
                        store.as_ref(),
                        &common::domain::Caller::signed_in(&user),
                        &Rules::default(),
                        &message_id(),
                        "default",
                    )
                    .await
                })
            })
            .collect();
        let (mut paid, mut refused) = (0, 0);
        for debit in debits {
            match debit.await.unwrap() {
                Ok(debit) => {
                    assert_eq!(debit.paid_with, balance);
                    paid += 1;
                }
                Err(DebitError::Insufficient) => refused += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((paid, refused), (10, 90), "{status}");
        let record = store.get_user(&user).await.unwrap().unwrap();
        let (credits, free) = (record.credits_remaining, record.free_messages_remaining);
        assert_eq!(
            if balance == Balance::Credits {
                (credits, free)
            } else {
                (free, credits)
            },
            (0, 10)
        );
    }
}

#[tokio::test]
async fn subscribers_pay_credits_others_free_messages_and_nothing_left_is_402() {
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let rules = Rules::default();
    let trialing = user_with(&store, "trialing", 2, 5).await;
    let debit = debit_message(
        store.as_ref(),
        &common::domain::Caller::signed_in(&trialing),
        &rules,
        &message_id(),
        "default",
    )
    .await
    .unwrap();
    assert_eq!((debit.paid_with, debit.remaining), (Balance::Credits, 1));

    let past_due = user_with(&store, "past_due", 50, 1).await;
    let debit = debit_message(
        store.as_ref(),
        &common::domain::Caller::signed_in(&past_due),
        &rules,
        &message_id(),
        "default",
    )
    .await
    .unwrap();
    assert_eq!(
        (debit.paid_with, debit.remaining),
        (Balance::FreeMessages, 0)
    );
    let err = debit_message(
        store.as_ref(),
        &common::domain::Caller::signed_in(&past_due),
        &rules,
        &message_id(),
        "default",
    )
    .await
    .unwrap_err();
    assert_eq!(err, DebitError::Insufficient);
    let err = ApiError::from(err);
    assert_eq!(err.status().as_u16(), 402);
    assert_eq!(err.code(), "INSUFFICIENT_CREDITS");
    assert_eq!(
        store
            .get_user(&past_due)
            .await
            .unwrap()
            .unwrap()
            .credits_remaining,
        50,
        "untouched"
    );

    let newcomer = UserId::parse(&tokens::new_user()).unwrap();
    let debit = debit_message(
        store.as_ref(),
        &common::domain::Caller::signed_in(&newcomer),
        &rules,
        &message_id(),
        "default",
    )
    .await
    .unwrap();
    assert_eq!(
        (debit.paid_with, debit.remaining),
        (Balance::FreeMessages, 9)
    );
}

#[tokio::test]
async fn a_retried_message_is_charged_once() {
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);
    let rules = Rules::default();
    let user = user_with(&store, "active", 3, 10).await;
    let message = message_id();
    for _ in 0..3 {
        let debit = debit_message(
            store.as_ref(),
            &common::domain::Caller::signed_in(&user),
            &rules,
            &message,
            "default",
        )
        .await
        .unwrap();
        assert_eq!((debit.paid_with, debit.remaining), (Balance::Credits, 2));
    }
    let debit = debit_message(
        store.as_ref(),
        &common::domain::Caller::signed_in(&user),
        &rules,
        &message_id(),
        "default",
    )
    .await
    .unwrap();
    assert_eq!(debit.remaining, 1, "another message is charged");
}
