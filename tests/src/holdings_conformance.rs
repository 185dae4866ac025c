//! The conformance of what the export and the operator tool read, run on both stores
//! (`tests/tests/store_conformance.rs`): a user's items page by page in key order, and the
//! state of a webhook event's record.

use std::sync::Arc;

use common::credits;
use common::domain::{
    Balance, Caller, EVENT_LEASE_SECS, EventOutcome, EventState, Held, UserId, UserRecord,
};
use common::store::Store;

/// A user with a profile, two adjustments (entries and once-only markers) and a debit.
async fn user_with_items(store: &Arc<dyn Store>) -> UserId {
    let user = UserId::parse(&crate::tokens::new_user()).unwrap();
    let record = UserRecord::new_free(user.clone(), 10, 1_800_000_000);
    store.create_user(&record).await.unwrap();
    for id in ["adj-a", "adj-b"] {
        let adjusted =
            credits::adjust(store.as_ref(), &user, Balance::Purchased, 5, "x", "ops", id);
        adjusted.await.unwrap();
    }
    let rules = common::testing::config().rules;
    credits::debit_message(
        store.as_ref(),
        &Caller::signed_in(&user),
        &rules,
        "msg-1",
        "default",
    )
    .await
    .unwrap();
    user
}

/// What an item is, for comparing pages.
fn kind(held: &Held) -> String {
    match held {
        Held::Profile(_) => "profile".into(),
        Held::Entry(entry) => format!("entry {}", entry.kind.as_str()),
        Held::Debit(debit) => format!("debit {}", debit.id),
        Held::Marker { id } => format!("marker {id}"),
        Held::Purchase(purchase) => format!("purchase {}", purchase.key),
        Held::Other { kind } => format!("other {kind}"),
    }
}

pub async fn holdings_page_through_the_user_s_items_in_key_order(store: Arc<dyn Store>) {
    let user = user_with_items(&store).await;
    let neighbour = user_with_items(&store).await;
    let (all, next) = store.holdings(&user, None, 100).await.unwrap();
    assert_eq!(next, None, "one page holds them all");
    let kinds: Vec<String> = all.iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "debit msg-1",
            "entry adjustment",
            "entry adjustment",
            "entry usage",
            "marker adj-a",
            "marker adj-b",
            "profile",
        ],
        "in sort-key order: DEBIT#, LEDGER#, ONCE#, PROFILE"
    );
    match &all[0] {
        Held::Debit(debit) => {
            assert_eq!(debit.takes, [(Balance::FreeMessages, 1)]);
            assert!(!debit.refunded);
        }
        other => panic!("{other:?}"),
    }
    match &all[6] {
        Held::Profile(record) => assert_eq!(record.user_id, user),
        other => panic!("{other:?}"),
    }

    // Two at a time: the same items, each once, and an end.
    let (mut paged, mut after) = (Vec::new(), None);
    loop {
        let (page, next) = store.holdings(&user, after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        paged.extend(page.iter().map(kind));
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, kinds);
    let (theirs, _) = store.holdings(&neighbour, None, 100).await.unwrap();
    assert_eq!(theirs.len(), all.len(), "each sees only their own");
    assert!(
        theirs
            .iter()
            .all(|held| !matches!(held, Held::Profile(r) if r.user_id == user))
    );
    let nobody = UserId::parse(&crate::tokens::new_user()).unwrap();
    assert_eq!(
        store.holdings(&nobody, None, 100).await.unwrap(),
        (vec![], None)
    );
}

pub async fn an_event_s_state_reads_as_its_record_says(store: Arc<dyn Store>) {
    let event = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let now = 1_800_000_000;
    assert_eq!(store.event_state(&event).await.unwrap(), None);
    store.begin_event(&event, now).await.unwrap();
    assert_eq!(
        store.event_state(&event).await.unwrap(),
        Some(EventState::Processing {
            lease_until: now + EVENT_LEASE_SECS
        })
    );
    store
        .finish_event(&event, EventOutcome::Failed, now + 1)
        .await
        .unwrap();
    assert_eq!(
        store.event_state(&event).await.unwrap(),
        Some(EventState::Failed)
    );
    store.begin_event(&event, now + 2).await.unwrap();
    store
        .finish_event(&event, EventOutcome::Done, now + 3)
        .await
        .unwrap();
    assert_eq!(
        store.event_state(&event).await.unwrap(),
        Some(EventState::Done)
    );
}
