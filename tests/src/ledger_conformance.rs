//! The credit ledger's conformance suite, run on both stores like [`crate::conformance`]: every
//! change of a balance writes its entry in the same transaction, and for each balance the
//! value at creation plus the sum of its entries is the stored value, after every step of
//! random sequences of grants, debits, refunds, status changes, customer deletions, operator
//! adjustments and pairs of them racing ([`every_change_keeps_each_balance_the_sum_of_its_entries`],
//! in `ledger_property.rs`).

use std::sync::Arc;

use common::config::Rules;
use common::credits::{self, AdjustError, AdjustOutcome};
use common::domain::{
    AdjustmentRefusal, Balance, Caller, Entry, EntryKind, MessagePrices, PaidInvoice, Plan, PlanId,
    RefundOutcome, SubscriptionStatus, SubscriptionView, UserId, UserRecord,
};
use common::store::Store;

pub use crate::ledger_property::every_change_keeps_each_balance_the_sum_of_its_entries;

fn new_user() -> UserId {
    UserId::parse(&crate::tokens::new_user()).expect("uuid")
}

/// Every entry of `user`, newest first, read page by page (of 7) as the endpoint reads them.
pub async fn all_entries(store: &dyn Store, user: &UserId) -> Vec<Entry> {
    entries_by_pages_of(store, user, 7).await
}

async fn entries_by_pages_of(store: &dyn Store, user: &UserId, size: usize) -> Vec<Entry> {
    let (mut all, mut after) = (Vec::new(), None);
    loop {
        let (page, more) = store.entries(user, after.as_ref(), size).await.unwrap();
        after = page.last().map(|entry| entry.key.clone());
        all.extend(page);
        if !more {
            return all;
        }
    }
}

/// The invariant: for each balance, `initial` (its value when the record was made) plus the sum
/// of its entries is the stored value. `Err` says which balance and by how much.
pub async fn ledger_sums(
    store: &dyn Store,
    user: &UserId,
    initial: &UserRecord,
) -> Result<(), String> {
    let record = store.get_user(user).await.unwrap().expect("a record");
    // Pages of 100: one query for the few entries a test makes (the emulator is shared).
    let entries = entries_by_pages_of(store, user, 100).await;
    for balance in Balance::ALL {
        let sum: i64 = entries
            .iter()
            .filter(|e| e.balance == balance)
            .map(|e| e.amount)
            .sum();
        let (start, now) = (initial.balance(balance), record.balance(balance));
        if start + sum != now {
            return Err(format!(
                "{balance:?}: {start} at creation + {sum} in entries != {now} stored; entries {entries:#?}"
            ));
        }
    }
    Ok(())
}

/// A free user with `free` free messages, created; returns the record as made.
pub(crate) async fn created(store: &dyn Store, free: i64) -> (UserId, UserRecord) {
    let user = new_user();
    let record = UserRecord::new_free(user.clone(), free, 1_700_000_000);
    assert!(store.create_user(&record).await.unwrap());
    (user, record)
}

pub(crate) fn view(status: &str, observed_at_ms: i64) -> SubscriptionView {
    SubscriptionView {
        plan: "pro".into(),
        status: SubscriptionStatus::parse(status),
        subscription_id: Some("sub_1".into()),
        price_id: Some("price_pro".into()),
        current_period_end: Some(1_800_000_000),
        cancel_at_period_end: false,
        observed_at_ms,
        status_since: observed_at_ms / 1000,
        next_check: None,
        charges_listed_at: None,
    }
}

pub(crate) fn invoice(id: &str, created: i64) -> PaidInvoice {
    PaidInvoice {
        id: id.into(),
        created,
        billing_reason: Some("subscription_cycle".into()),
        price_id: Some("price_pro".into()),
        period_start: None,
        period_end: None,
        pays_a_whole_period: true,
        credits_unused_time: false,
    }
}

/// The `pro` plan (`price_pro`), granting `credits` a period.
pub(crate) fn plan(credits: i64) -> Plan {
    Plan {
        id: PlanId::parse("pro").unwrap(),
        price_id: "price_pro".into(),
        credits,
        sold: true,
    }
}

/// A day's debits are one `usage` entry (count, total, the balance after the last), and its
/// refunds one `message_refund` entry: never a row per message.
pub async fn a_day_s_debits_and_refunds_are_one_entry_each(store: Arc<dyn Store>) {
    let (user, initial) = created(store.as_ref(), 10).await;
    let caller = Caller::signed_in(&user);
    for id in ["a", "b", "c"] {
        credits::debit_message(store.as_ref(), &caller, &Rules::default(), id, "default")
            .await
            .unwrap();
    }
    credits::refund_message(store.as_ref(), &user, "b")
        .await
        .unwrap();
    let entries = all_entries(store.as_ref(), &user).await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    let usage = entries.iter().find(|e| e.kind == EntryKind::Usage).unwrap();
    assert_eq!(
        (usage.messages, usage.amount, usage.balance_after),
        (Some(3), -3, 7)
    );
    assert_eq!(usage.balance, Balance::FreeMessages);
    let refund = entries
        .iter()
        .find(|e| e.kind == EntryKind::MessageRefund)
        .unwrap();
    assert_eq!(
        (refund.messages, refund.amount, refund.balance_after),
        (Some(1), 1, 8)
    );
    assert_eq!(
        usage.cause,
        common::domain::entries::day_of(common::unix_now())
    );
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();
}

/// A user made with `free` free messages, linked to the customer it returns, active and
/// granted nothing yet; and the record as made.
async fn active(store: &dyn Store, free: i64) -> (UserId, UserRecord, String) {
    let (user, initial) = created(store, free).await;
    let customer = format!("cus_{}", user.hash());
    store.link_customer(&user, &customer).await.unwrap();
    assert!(
        store
            .apply_subscription(&user, &view("active", 1))
            .await
            .unwrap()
    );
    (user, initial, customer)
}

/// [`active`], its period `in_1` (created at 1,000) granted with `credits`.
async fn subscriber(store: &dyn Store, free: i64, credits: i64) -> (UserId, UserRecord, String) {
    let (user, initial, customer) = active(store, free).await;
    let first = invoice("in_1", 1_000);
    let granted = credits::grant_for_invoice(store, &user, &first, &plan(credits)).await;
    assert_eq!(granted.unwrap(), credits::GrantOutcome::Granted);
    (user, initial, customer)
}

/// A period grant says what it granted and what expired; a redelivery posts nothing more.
pub async fn a_grant_records_what_expired_once(store: Arc<dyn Store>) {
    let (user, initial, _) = subscriber(store.as_ref(), 0, 100).await;
    let caller = Caller::signed_in(&user);
    for id in ["x", "y"] {
        credits::debit_message(store.as_ref(), &caller, &Rules::default(), id, "default")
            .await
            .unwrap();
    }
    let renewal = invoice("in_b", 2_000);
    for _ in 0..2 {
        credits::grant_for_invoice(store.as_ref(), &user, &renewal, &plan(100))
            .await
            .unwrap();
    }
    let grants: Vec<Entry> = all_entries(store.as_ref(), &user)
        .await
        .into_iter()
        .filter(|e| e.kind == EntryKind::PeriodGrant)
        .collect();
    assert_eq!(grants.len(), 2, "{grants:#?}");
    let newest = &grants[0];
    assert_eq!(newest.cause, "in_b");
    assert_eq!(
        (
            newest.granted,
            newest.expired,
            newest.amount,
            newest.balance_after
        ),
        (Some(100), Some(98), 2, 100)
    );
    assert_eq!(newest.plan.as_deref(), Some("pro"));
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();
}

/// Periods are told apart by their ends, kept by the store: a plan change paid within the first
/// hour of a period, before that period's own renewal is finalised, waits for it; then the
/// renewal grants its plan and the change its difference, and neither again.
pub async fn a_plan_change_waits_for_its_period_s_own_invoice(store: Arc<dyn Store>) {
    let (user, initial, _) = active(store.as_ref(), 0).await;
    let in_period = |id: &str, created, reason: &str, end| PaidInvoice {
        billing_reason: Some(reason.into()),
        period_start: Some(created),
        period_end: Some(end),
        pays_a_whole_period: reason != "subscription_update",
        ..invoice(id, created)
    };
    let grant = |paid: PaidInvoice, credits| {
        let store = store.clone();
        let user = user.clone();
        async move {
            credits::grant_for_invoice(store.as_ref(), &user, &paid, &plan(credits))
                .await
                .unwrap()
        }
    };
    let first = in_period("in_first", 1_000, "subscription_create", 2_000);
    assert_eq!(grant(first, 1000).await, credits::GrantOutcome::Granted);
    let upgrade = in_period("in_up", 2_600, "subscription_update", 3_000);
    let renewal = in_period("in_renew", 2_000, "subscription_cycle", 3_000);
    assert_eq!(
        grant(upgrade.clone(), 5000).await,
        credits::GrantOutcome::NothingOwed
    );
    assert_eq!(
        held(store.as_ref(), &user).await.0,
        1000,
        "the change waits"
    );
    assert_eq!(
        grant(renewal.clone(), 1000).await,
        credits::GrantOutcome::Granted
    );
    assert_eq!(
        grant(upgrade.clone(), 5000).await,
        credits::GrantOutcome::Granted
    );
    for again in [renewal, upgrade] {
        assert_eq!(grant(again, 5000).await, credits::GrantOutcome::NothingOwed);
    }
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (
            record.credits_remaining,
            record.granted_period_end,
            record.period_credits
        ),
        (5000, Some(3_000), Some(5000))
    );
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();
}

/// Pack sessions opened here are kept on the record until granted or forgotten: a grant adds
/// the pack to the purchased balance once (the session leaves the record in the same write),
/// a session never kept grants nothing, and none is kept once the erasure began.
pub async fn a_pack_is_granted_once_only_from_a_session_kept_here(store: Arc<dyn Store>) {
    let (user, initial, _) = subscriber(store.as_ref(), 0, 100).await;
    let pending = |session: &str, credits| common::domain::PendingPack {
        session_id: session.into(),
        pack: common::domain::PackId::parse("small").unwrap(),
        credits,
        created_at: 1_800_000_000,
    };
    for session in ["cs_paid", "cs_expired"] {
        store
            .add_pending_pack(&user, &pending(session, 500))
            .await
            .unwrap();
    }
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        record.pending_packs,
        [pending("cs_expired", 500), pending("cs_paid", 500)]
    );
    assert!(
        record.next_check.unwrap() <= common::unix_now() + 3600,
        "due within the hour"
    );
    for _ in 0..2 {
        credits::grant_pack(store.as_ref(), &user, "cs_paid", Some("pi_1"))
            .await
            .unwrap();
    }
    let granted = credits::grant_pack(store.as_ref(), &user, "cs_stranger", None).await;
    assert!(!granted.unwrap(), "a session never kept grants nothing");
    store.drop_pending_pack(&user, "cs_expired").await.unwrap();
    store.drop_pending_pack(&user, "cs_expired").await.unwrap();
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        (record.purchased_credits, record.credits_remaining),
        (500, 100)
    );
    assert!(record.pending_packs.is_empty());
    let bought: Vec<Entry> = all_entries(store.as_ref(), &user)
        .await
        .into_iter()
        .filter(|e| e.kind == EntryKind::PackPurchase)
        .collect();
    assert_eq!(bought.len(), 1, "{bought:#?}");
    assert_eq!(
        (
            bought[0].cause.as_str(),
            bought[0].payment_intent.as_deref(),
            bought[0].balance
        ),
        ("cs_paid", Some("pi_1"), Balance::Purchased)
    );
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();

    // What the pack's money bought is kept with its grant, found by its PaymentIntent. A
    // clawback changes it only from the revision it was decided on.
    let purchases = store.purchases(&user).await.unwrap();
    let kept: Vec<_> = purchases
        .iter()
        .filter(|p| p.balance == Balance::Purchased)
        .map(|p| (p.key.as_str(), p.balance, p.credits, p.revision))
        .collect();
    assert_eq!(kept, [("pi_1", Balance::Purchased, 500, 1)]);
    let money = |refunded| common::domain::MoneyBack {
        charge: "ch_1".into(),
        amount: 500,
        amount_refunded: refunded,
    };
    let now = common::unix_now();
    let record = store.get_user(&user).await.unwrap().unwrap();
    let first = record.refund_clawback(&purchases, "pi_1", &money(100), now);
    let posted = store.post(&user, &first.unwrap()).await.unwrap();
    assert_eq!(posted, common::domain::PostOutcome::Posted);
    let fresh = store.get_user(&user).await.unwrap().unwrap();
    let stale = fresh.refund_clawback(&purchases, "pi_1", &money(200), now + 1);
    let posted = store.post(&user, &stale.unwrap()).await.unwrap();
    assert_eq!(
        posted,
        common::domain::PostOutcome::Moved,
        "decided on a purchase that moved since"
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    let purchases = store.purchases(&user).await.unwrap();
    let purchase = purchases.into_iter().find(|p| p.key == "pi_1").unwrap();
    assert_eq!(
        (
            record.purchased_credits,
            purchase.refunded,
            purchase.revision
        ),
        (400, 100, 2)
    );
    assert!(record.refundable_until.is_some_and(|until| until > now));
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();

    store.mark_erasing(&user, 5).await.unwrap();
    let refused = store
        .add_pending_pack(&user, &pending("cs_late", 500))
        .await;
    assert_eq!(refused, Err(common::store::StoreError::Erasing));
    store.delete_owned_items(&user).await.unwrap();
    assert!(store.purchases(&user).await.unwrap().is_empty(), "erased");
}

/// The end of a subscription and the deletion of a customer each write their entry with what
/// expired; free messages stay, and a repeat writes nothing.
pub async fn endings_write_their_entry_once(store: Arc<dyn Store>) {
    for ending in [EntryKind::SubscriptionEnded, EntryKind::CustomerDeleted] {
        let (user, initial, customer) = subscriber(store.as_ref(), 4, 50).await;
        for _ in 0..2 {
            match ending {
                EntryKind::SubscriptionEnded => {
                    let _ = store
                        .apply_subscription(&user, &view("canceled", 2))
                        .await
                        .unwrap();
                }
                _ => store.unlink_customer(&user, &customer).await.unwrap(),
            }
        }
        let entries = all_entries(store.as_ref(), &user).await;
        let ends: Vec<&Entry> = entries.iter().filter(|e| e.kind == ending).collect();
        assert_eq!(ends.len(), 1, "{ending}: {entries:#?}");
        assert_eq!(
            (ends[0].amount, ends[0].expired, ends[0].balance_after),
            (-50, Some(50), 0)
        );
        let record = store.get_user(&user).await.unwrap().unwrap();
        assert_eq!(
            (record.credits_remaining, record.free_messages_remaining),
            (0, 4)
        );
        ledger_sums(store.as_ref(), &user, &initial).await.unwrap();
    }
}

/// An operator's adjustment is applied once per id, never below zero, names its reason, and a
/// refused one changes nothing.
pub async fn an_adjustment_is_applied_once_and_never_below_zero(store: Arc<dyn Store>) {
    let (user, initial) = created(store.as_ref(), 3).await;
    let adjust = |amount, id: &'static str| {
        let (store, user) = (Arc::clone(&store), user.clone());
        async move {
            credits::adjust(
                store.as_ref(),
                &user,
                Balance::FreeMessages,
                amount,
                "support ticket 42",
                "ops:alice",
                id,
            )
            .await
        }
    };
    assert!(matches!(
        adjust(5, "t1").await.unwrap(),
        AdjustOutcome::Adjusted(8)
    ));
    assert!(matches!(
        adjust(5, "t1").await.unwrap(),
        AdjustOutcome::AlreadyApplied
    ));
    let refused = adjust(-9, "t2").await;
    assert!(
        matches!(
            refused,
            Err(AdjustError::Refused(AdjustmentRefusal::BelowZero {
                balance: 8,
                amount: -9
            }))
        ),
        "{refused:?}"
    );
    assert!(matches!(
        adjust(0, "t3").await,
        Err(AdjustError::Refused(AdjustmentRefusal::Incomplete))
    ));
    assert!(matches!(
        adjust(-8, "t4").await.unwrap(),
        AdjustOutcome::Adjusted(0)
    ));
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(record.free_messages_remaining, 0);
    let entries = all_entries(store.as_ref(), &user).await;
    assert_eq!(
        entries.len(),
        2,
        "the refused ones wrote nothing: {entries:#?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| e.reason.as_deref() == Some("support ticket 42"))
    );
    assert!(
        entries
            .iter()
            .all(|e| e.operator.as_deref() == Some("ops:alice"))
    );
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();
    let stranger = credits::adjust(
        store.as_ref(),
        &new_user(),
        Balance::Credits,
        1,
        "x",
        "ops",
        "t5",
    )
    .await;
    assert!(matches!(stranger, Err(AdjustError::NoUser)));
}

/// The history comes newest first, page by page, each entry once.
pub async fn the_history_pages_newest_first_each_entry_once(store: Arc<dyn Store>) {
    let (user, _) = created(store.as_ref(), 0).await;
    for i in 0..9 {
        let id = format!("t{i}");
        credits::adjust(
            store.as_ref(),
            &user,
            Balance::FreeMessages,
            1,
            "gift",
            "ops",
            &id,
        )
        .await
        .unwrap();
    }
    let (first, more) = store.entries(&user, None, 4).await.unwrap();
    assert_eq!((first.len(), more), (4, true));
    let all = all_entries(store.as_ref(), &user).await;
    assert_eq!(all.len(), 9);
    assert_eq!(all[..4], first[..]);
    assert!(
        all.windows(2).all(|pair| pair[0].key > pair[1].key),
        "newest first, no repeats"
    );
    let (rest, more) = store.entries(&user, Some(&all[8].key), 4).await.unwrap();
    assert_eq!((rest.len(), more), (0, false));
    let (none, more) = store.entries(&new_user(), None, 4).await.unwrap();
    assert_eq!((none.len(), more), (0, false));
}

/// Erasure deletes the ledger with everything else of the user.
pub async fn erasure_deletes_the_ledger(store: Arc<dyn Store>) {
    let (user, _) = created(store.as_ref(), 2).await;
    credits::adjust(
        store.as_ref(),
        &user,
        Balance::FreeMessages,
        1,
        "gift",
        "ops",
        "t",
    )
    .await
    .unwrap();
    let caller = Caller::signed_in(&user);
    credits::debit_message(store.as_ref(), &caller, &Rules::default(), "m", "default")
        .await
        .unwrap();
    assert_eq!(all_entries(store.as_ref(), &user).await.len(), 2);
    assert!(
        store.delete_owned_items(&user).await.unwrap() >= 3,
        "entries, the once marker, the debit"
    );
    assert!(all_entries(store.as_ref(), &user).await.is_empty());
}

/// Once an erasure began, nothing writes an entry (the erasure deletes them): a refund is
/// refused, an ending view or a deleted customer leaves the credits to the erasure, a grant is
/// owed no more, an adjustment finds no user.
pub async fn nothing_is_posted_once_the_erasure_began(store: Arc<dyn Store>) {
    let (user, _, customer) = subscriber(store.as_ref(), 2, 30).await;
    let caller = Caller::signed_in(&user);
    credits::debit_message(store.as_ref(), &caller, &Rules::default(), "m", "default")
        .await
        .unwrap();
    let before = all_entries(store.as_ref(), &user).await;
    store.mark_erasing(&user, 5).await.unwrap();

    let refund = store
        .refund(&user, &common::domain::DebitId::parse("m").unwrap())
        .await;
    assert_eq!(refund, Err(common::store::StoreError::Erasing));
    let renewal = invoice("in_2", 2_000);
    let plan = plan(30);
    let granted = credits::grant_for_invoice(store.as_ref(), &user, &renewal, &plan);
    assert_eq!(granted.await.unwrap(), credits::GrantOutcome::NothingOwed);
    let adjusted = credits::adjust(store.as_ref(), &user, Balance::Credits, 1, "x", "ops", "a");
    assert!(matches!(adjusted.await, Err(AdjustError::NoUser)));
    let _ = store
        .apply_subscription(&user, &view("canceled", 2))
        .await
        .unwrap();
    store.unlink_customer(&user, &customer).await.unwrap();

    assert_eq!(all_entries(store.as_ref(), &user).await, before);
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        record.credits_remaining, 29,
        "left for the erasure to delete"
    );
}

/// Gives `user` `amount` purchased credits, as an operator would (packs post the same way).
async fn buy(store: &dyn Store, user: &UserId, amount: i64, id: &str) {
    let outcome = credits::adjust(
        store,
        user,
        Balance::Purchased,
        amount,
        "test purchase",
        "ops:test",
        id,
    )
    .await;
    assert!(
        matches!(outcome, Ok(AdjustOutcome::Adjusted(_))),
        "{outcome:?}"
    );
}

/// The plan's and the purchased credits `user` holds.
async fn held(store: &dyn Store, user: &UserId) -> (i64, i64) {
    let record = store.get_user(user).await.unwrap().expect("a record");
    (record.credits_remaining, record.purchased_credits)
}

/// The debit of message `id` of `user` to `model`, with the model `large` priced `large`.
async fn pay(
    store: &dyn Store,
    user: &UserId,
    id: &str,
    model: &str,
    large: i64,
) -> Result<credits::Debit, credits::DebitError> {
    let rules = Rules {
        message_prices: MessagePrices::new([("large".to_owned(), large)]).unwrap(),
        ..Rules::default()
    };
    credits::debit_message(store, &Caller::signed_in(user), &rules, id, model).await
}

/// A subscriber pays from the plan's credits first and the rest from purchased credits, in one
/// debit with a usage entry per balance counting the message once; its refund gives each
/// balance back exactly what it took, and after a renewal only the purchased part.
pub async fn a_message_is_paid_from_the_plan_then_from_purchased_credits(store: Arc<dyn Store>) {
    let (user, initial, _) = subscriber(store.as_ref(), 0, 3).await;
    buy(store.as_ref(), &user, 10, "buy-1").await;
    let debit = |id| pay(store.as_ref(), &user, id, "large", 5);
    let paid = debit("m1").await.unwrap();
    assert_eq!((paid.paid_with, paid.remaining), (Balance::Credits, 8));
    assert_eq!(held(store.as_ref(), &user).await, (0, 8));
    assert_eq!(
        debit("m1").await.unwrap().remaining,
        8,
        "a retry is charged once"
    );
    let entries = all_entries(store.as_ref(), &user).await;
    let usage: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Usage)
        .map(|e| (e.balance, e.amount, e.balance_after, e.messages))
        .collect();
    assert_eq!(usage.len(), 2, "{entries:#?}");
    assert!(
        usage.contains(&(Balance::Credits, -3, 0, Some(1))),
        "{usage:?}"
    );
    assert!(
        usage.contains(&(Balance::Purchased, -2, 8, Some(0))),
        "{usage:?}"
    );
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();

    let refunded = credits::refund_message(store.as_ref(), &user, "m1").await;
    assert_eq!(refunded.unwrap(), RefundOutcome::Refunded);
    assert_eq!(held(store.as_ref(), &user).await, (3, 10));
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();

    // Split again, then renew: the plan's part lapsed with its period, the purchased comes back.
    debit("m2").await.unwrap();
    credits::grant_for_invoice(store.as_ref(), &user, &invoice("in_2", 2_000), &plan(3))
        .await
        .unwrap();
    assert_eq!(
        held(store.as_ref(), &user).await,
        (3, 8),
        "a renewal resets the plan's credits only"
    );
    let refunded = credits::refund_message(store.as_ref(), &user, "m2").await;
    assert_eq!(refunded.unwrap(), RefundOutcome::Refunded);
    assert_eq!(held(store.as_ref(), &user).await, (3, 10));
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();

    // More than both hold: nothing is taken.
    buy(store.as_ref(), &user, -9, "spend-down").await;
    let short = debit("m3").await;
    assert!(
        matches!(short, Err(credits::DebitError::Insufficient)),
        "{short:?}"
    );
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!((record.credits_remaining, record.purchased_credits), (3, 1));
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();
}

/// Without a subscription, a message of a 1-credit model is paid with a free message while any
/// are left, then from purchased credits; a dearer model only from purchased credits. The end
/// of a subscription and the deletion of the customer leave purchased credits untouched.
pub async fn purchased_credits_pay_free_users_and_outlive_the_subscription(store: Arc<dyn Store>) {
    let (user, initial) = created(store.as_ref(), 1).await;
    buy(store.as_ref(), &user, 6, "buy-1").await;
    let debit = |id, model| pay(store.as_ref(), &user, id, model, 4);
    let free = debit("m1", "default").await.unwrap();
    assert_eq!((free.paid_with, free.remaining), (Balance::FreeMessages, 0));
    let bought = debit("m2", "default").await.unwrap();
    assert_eq!(
        (bought.paid_with, bought.remaining),
        (Balance::Purchased, 5)
    );
    let large = debit("m3", "large").await.unwrap();
    assert_eq!((large.paid_with, large.remaining), (Balance::Purchased, 1));
    assert!(matches!(
        debit("m4", "large").await,
        Err(credits::DebitError::Insufficient)
    ));
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();

    let customer = format!("cus_{}", user.hash());
    store.link_customer(&user, &customer).await.unwrap();
    assert!(
        store
            .apply_subscription(&user, &view("active", 1))
            .await
            .unwrap()
    );
    credits::grant_for_invoice(store.as_ref(), &user, &invoice("in_1", 1_000), &plan(50))
        .await
        .unwrap();
    assert!(
        store
            .apply_subscription(&user, &view("canceled", 2))
            .await
            .unwrap()
    );
    assert_eq!(held(store.as_ref(), &user).await, (0, 1));
    assert!(
        store
            .apply_subscription(&user, &view("active", 3))
            .await
            .unwrap()
    );
    store.unlink_customer(&user, &customer).await.unwrap();
    let record = store.get_user(&user).await.unwrap().unwrap();
    assert_eq!(
        record.purchased_credits, 1,
        "a deleted customer takes no purchased credit"
    );
    ledger_sums(store.as_ref(), &user, &initial).await.unwrap();
}
