//! The clawback rules, decided on records and purchases built in memory.

use super::*;
use crate::domain::postings::tests::subscriber;

const NOW: i64 = 1_800_000_000;

fn pack(key: &str, credits: i64, at: i64) -> Purchase {
    Purchase::new(key, Balance::Purchased, credits, at, 0)
}

fn money(charge: &str, amount: i64, refunded: i64) -> MoneyBack {
    MoneyBack {
        charge: charge.into(),
        amount,
        amount_refunded: refunded,
    }
}

/// `record` and `purchases` with `posting` applied, as a store does.
fn applied(record: &mut UserRecord, purchases: &mut Vec<Purchase>, posting: &Posting) {
    match posting.entry.balance {
        Balance::Credits => record.credits_remaining = posting.entry.balance_after,
        Balance::Purchased => record.purchased_credits = posting.entry.balance_after,
        Balance::FreeMessages => record.free_messages_remaining = posting.entry.balance_after,
    }
    let purchase = posting.purchase.clone().unwrap();
    purchases.retain(|p| p.key != purchase.key);
    purchases.push(purchase);
}

#[test]
fn a_partial_then_a_full_refund_take_the_proportion_once_each() {
    let mut record = subscriber(0);
    record.purchased_credits = 1000;
    let mut purchases = vec![pack("pi_1", 1000, NOW - 60)];
    let half = money("ch_1", 999, 499);
    let posting = record
        .refund_clawback(&purchases, "pi_1", &half, NOW)
        .unwrap();
    // 1000 × 499 ÷ 999 = 499.49…, rounded down.
    assert_eq!(
        (
            posting.entry.kind,
            posting.entry.amount,
            posting.entry.balance_after
        ),
        (EntryKind::PaymentRefunded, -499, 501)
    );
    assert_eq!(posting.entry.cause, "ch_1");
    assert_eq!(posting.purchase.as_ref().unwrap().revision, 1);
    applied(&mut record, &mut purchases, &posting);
    assert_eq!(
        record.refund_clawback(&purchases, "pi_1", &half, NOW),
        Err(ClawbackRefusal::NothingMore),
        "a redelivery takes nothing"
    );
    let full = money("ch_1", 999, 999);
    let posting = record
        .refund_clawback(&purchases, "pi_1", &full, NOW)
        .unwrap();
    assert_eq!(
        (posting.entry.amount, posting.entry.balance_after),
        (-501, 0)
    );
    assert_ne!(posting.entry.key, purchases_key_of_first(&half));
    applied(&mut record, &mut purchases, &posting);
    assert_eq!(
        record.refund_clawback(&purchases, "pi_1", &full, NOW),
        Err(ClawbackRefusal::NothingMore)
    );
}

fn purchases_key_of_first(money: &MoneyBack) -> EntryKey {
    EntryKey::new(
        NOW,
        EntryKind::PaymentRefunded,
        &format!("{}#{}", money.charge, money.amount_refunded),
    )
}

#[test]
fn a_refund_takes_only_what_is_left_of_its_own_pack_never_a_newer_one() {
    let mut record = subscriber(0);
    // Pack 1 (500) was spent; pack 2 (300) bought later is whole.
    record.purchased_credits = 300;
    let purchases = vec![
        pack("pi_old", 500, NOW - 100),
        pack("pi_new", 300, NOW - 10),
    ];
    assert_eq!(record.left_of(&purchases, "pi_old", NOW), 0);
    assert_eq!(record.left_of(&purchases, "pi_new", NOW), 300);
    let posting = record
        .refund_clawback(&purchases, "pi_old", &money("ch_old", 500, 500), NOW)
        .unwrap();
    assert_eq!(
        (
            posting.entry.amount,
            posting.entry.spent,
            posting.entry.balance_after
        ),
        (0, Some(500), 300)
    );
    assert!(
        posting
            .entry
            .description()
            .unwrap()
            .contains("500 of its credits")
    );
    // Partly spent: 120 of 500 left of the older pack under a whole newer one.
    record.purchased_credits = 420;
    let posting = record
        .refund_clawback(&purchases, "pi_old", &money("ch_old", 500, 500), NOW)
        .unwrap();
    assert_eq!(
        (posting.entry.amount, posting.entry.spent),
        (-120, Some(380))
    );
}

#[test]
fn a_dispute_holds_what_is_left_and_a_won_one_gives_exactly_that_back_once() {
    let mut record = subscriber(0);
    record.purchased_credits = 700;
    let mut purchases = vec![pack("pi_1", 1000, NOW - 60)];
    let charge = money("ch_1", 1000, 0);
    let hold = record
        .dispute_clawback(
            &purchases,
            "pi_1",
            "du_1",
            DisputeStatus::Open,
            &charge,
            NOW,
        )
        .unwrap();
    assert_eq!(
        (hold.entry.kind, hold.entry.amount, hold.entry.spent),
        (EntryKind::DisputeHold, -700, Some(300))
    );
    applied(&mut record, &mut purchases, &hold);
    for status in [DisputeStatus::Open, DisputeStatus::Lost] {
        assert_eq!(
            record.dispute_clawback(&purchases, "pi_1", "du_1", status, &charge, NOW),
            Err(ClawbackRefusal::NothingMore),
            "{status:?}: once per dispute"
        );
    }
    record.purchased_credits += 50; // bought meanwhile: not the dispute's to give
    let won = record
        .dispute_clawback(&purchases, "pi_1", "du_1", DisputeStatus::Won, &charge, NOW)
        .unwrap();
    assert_eq!(
        (won.entry.kind, won.entry.amount, won.entry.balance_after),
        (EntryKind::DisputeReleased, 700, 750)
    );
    applied(&mut record, &mut purchases, &won);
    assert_eq!(
        record.dispute_clawback(&purchases, "pi_1", "du_1", DisputeStatus::Won, &charge, NOW),
        Err(ClawbackRefusal::NothingMore)
    );
}

#[test]
fn inquiries_and_won_disputes_without_a_hold_take_nothing_and_a_lost_one_found_late_holds() {
    let mut record = subscriber(0);
    record.purchased_credits = 400;
    let purchases = vec![pack("pi_1", 400, NOW - 60)];
    let charge = money("ch_1", 400, 0);
    for status in [DisputeStatus::NoFundsMoved, DisputeStatus::Won] {
        assert_eq!(
            record.dispute_clawback(&purchases, "pi_1", "du_1", status, &charge, NOW),
            Err(ClawbackRefusal::NothingMore)
        );
    }
    let lost = record
        .dispute_clawback(
            &purchases,
            "pi_1",
            "du_1",
            DisputeStatus::Lost,
            &charge,
            NOW,
        )
        .unwrap();
    assert_eq!(lost.entry.amount, -400);
}

#[test]
fn an_invoice_of_a_past_period_or_an_ended_subscription_takes_nothing() {
    let mut record = subscriber(800);
    record.last_grant_created = NOW - 86_400;
    let current = Purchase::new("in_now", Balance::Credits, 1000, NOW - 86_400, NOW - 86_400);
    let past = Purchase::new("in_past", Balance::Credits, 1000, NOW - 40 * 86_400, 7);
    let purchases = vec![current, past];
    let full = money("ch_1", 1000, 1000);
    assert_eq!(
        record.refund_clawback(&purchases, "in_past", &full, NOW),
        Err(ClawbackRefusal::NoPurchase)
    );
    let posting = record
        .refund_clawback(&purchases, "in_now", &full, NOW)
        .unwrap();
    assert_eq!(
        (posting.entry.balance, posting.entry.amount),
        (Balance::Credits, -800)
    );
    record.subscription_status = crate::domain::SubscriptionStatus::Canceled;
    assert_eq!(
        record.refund_clawback(&purchases, "in_now", &full, NOW),
        Err(ClawbackRefusal::NoPurchase)
    );
    assert_eq!(
        record.refund_clawback(&purchases, "pi_unknown", &full, NOW),
        Err(ClawbackRefusal::NoPurchase)
    );
}

#[test]
fn a_purchase_past_its_keeping_is_not_taken_back_and_proportions_stay_in_range() {
    let mut record = subscriber(0);
    record.purchased_credits = 100;
    let purchases = vec![pack("pi_1", 100, NOW - KEPT_SECS)];
    assert_eq!(
        record.refund_clawback(&purchases, "pi_1", &money("ch_1", 100, 100), NOW),
        Err(ClawbackRefusal::NoPurchase)
    );
    assert_eq!(proportion(1000, 50, 100), 500);
    assert_eq!(proportion(1000, 500, 100), 1000);
    assert_eq!(proportion(1000, -5, 100), 0);
    assert_eq!(proportion(1000, 1, 0), 1000);
    assert_eq!(proportion(i64::MAX, i64::MAX - 1, i64::MAX), i64::MAX - 1);
}

#[test]
fn a_grant_keeps_what_its_money_bought_in_its_period() {
    let record = subscriber(0);
    let grant = crate::domain::CreditGrant {
        invoice_id: "in_1".into(),
        invoice_created: NOW,
        plan: crate::domain::PlanId::parse("pro").unwrap(),
        credits: 1000,
        starts_period: true,
        period_start: None,
        period_end: None,
        switches_period: false,
    };
    let posting = record.grant(&grant).unwrap();
    let purchase = posting.purchase.unwrap();
    assert_eq!(
        (purchase.key.as_str(), purchase.balance, purchase.credits),
        ("in_1", Balance::Credits, 1000)
    );
    assert_eq!((purchase.period, purchase.revision), (NOW, 1));
    assert_eq!(posting.refundable_until, Some(NOW + KEPT_SECS));
}

#[test]
fn a_refund_made_while_a_dispute_stood_is_not_given_back_when_it_is_won() {
    let mut record = subscriber(0);
    record.purchased_credits = 1000;
    let mut purchases = vec![pack("pi_1", 1000, NOW - 60)];
    let charge = money("ch_1", 1000, 0);
    let hold = record
        .dispute_clawback(
            &purchases,
            "pi_1",
            "du_1",
            DisputeStatus::Open,
            &charge,
            NOW,
        )
        .unwrap();
    applied(&mut record, &mut purchases, &hold);
    assert!(
        purchases[0].expires_at() > NOW - 60 + KEPT_SECS,
        "kept longer once disputed"
    );
    let refund = record
        .refund_clawback(&purchases, "pi_1", &money("ch_1", 1000, 1000), NOW)
        .unwrap();
    assert_eq!(refund.entry.amount, 0, "the hold has it all");
    applied(&mut record, &mut purchases, &refund);
    assert_eq!(
        record.dispute_clawback(&purchases, "pi_1", "du_1", DisputeStatus::Won, &charge, NOW),
        Err(ClawbackRefusal::NothingMore),
        "refunded in full meanwhile: nothing to give back"
    );
}

#[test]
fn charges_are_listed_weekly_while_a_purchase_may_be_taken_back() {
    let until = Some(NOW + KEPT_SECS);
    // Never listed: the first sync lists.
    assert!(charges_to_list(until, None, NOW));
    // Listed less than a week ago: not again.
    let listed = Some(NOW - CHARGES_LISTED_EVERY_SECS + 1);
    assert!(!charges_to_list(until, listed, NOW));
    // A week ago: again.
    let listed = Some(NOW - CHARGES_LISTED_EVERY_SECS);
    assert!(charges_to_list(until, listed, NOW));
    // The window's last hour: once more, even a day after the last listing...
    let closing = Some(NOW + LAST_LOOK_SECS / 2);
    assert!(charges_to_list(closing, Some(NOW - 86_400), NOW));
    // ...but not twice.
    assert!(!charges_to_list(closing, Some(NOW - 60), NOW));
    // Nothing left to take back: never, however old the listing.
    assert!(!charges_to_list(Some(NOW), None, NOW));
    assert!(!charges_to_list(None, None, NOW));
}
