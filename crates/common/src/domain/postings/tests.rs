//! The posting rules, decided on records built in memory.

use super::*;
use crate::domain::UserId;

/// An active `pro` subscriber with `credits` left.
pub(in crate::domain) fn subscriber(credits: i64) -> UserRecord {
    let user = UserId::parse("4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10").unwrap();
    let mut record = UserRecord::new_free(user, 10, 1_700_000_000);
    record.subscription_status = SubscriptionStatus::Active;
    record.plan = "pro".into();
    record.credits_remaining = credits;
    record
}

fn grant(invoice: &str, created: i64) -> CreditGrant {
    change(invoice, created, "pro", 1000, true)
}

fn change(invoice: &str, created: i64, plan: &str, credits: i64, starts: bool) -> CreditGrant {
    CreditGrant {
        invoice_id: invoice.into(),
        invoice_created: created,
        plan: crate::domain::PlanId::parse(plan).unwrap(),
        credits,
        starts_period: starts,
        period_start: None,
        period_end: None,
        switches_period: false,
    }
}

/// `grant` paying into the period from `start` (of a change: its time) to `end`.
fn over(grant: CreditGrant, start: i64, end: i64) -> CreditGrant {
    CreditGrant {
        period_start: Some(start),
        period_end: Some(end),
        ..grant
    }
}

/// `record` with `posting` applied, as a store does.
fn applied(mut record: UserRecord, posting: &Posting) -> UserRecord {
    record.credits_remaining = posting.entry.balance_after;
    let grant = posting.grant.as_ref().unwrap();
    record.granted_invoices.insert(grant.invoice_id.clone());
    record.period_credits = Some(grant.credits);
    if grant.starts_period {
        record.last_grant_created = grant.invoice_created;
        record.granted_period_start = grant.period_start;
        record.granted_period_end = grant.period_end;
    }
    record
}

#[test]
fn a_plan_change_in_a_period_not_granted_yet_waits_for_that_period_s_own_invoice() {
    let plus = subscriber(0);
    let first = over(change("in_c", 100, "plus", 1000, true), 100, 1_000);
    let plus = applied(plus.clone(), &plus.grant(&first).unwrap());
    // The period ended at 1,000; its renewal, created then, is finalised an hour late, and
    // the plan changed (and was paid) within that hour.
    let renewal = over(change("in_r", 1_000, "plus", 1000, true), 1_000, 2_000);
    let upgrade = over(change("in_u", 1_600, "pro", 5000, false), 1_600, 2_000);
    assert_eq!(plus.grant(&upgrade), Err(GrantRefusal::PeriodNotGranted));
    assert!(!plus.lacks_grant(&upgrade));
    let renewed = applied(plus.clone(), &plus.grant(&renewal).unwrap());
    assert_eq!(renewed.credits_remaining, 1000);
    let up = renewed.grant(&upgrade).unwrap();
    assert_eq!(
        (up.entry.kind, up.entry.amount),
        (EntryKind::PlanUpgrade, 4000)
    );
    let pro = applied(renewed, &up);
    assert_eq!(pro.credits_remaining, 5000);
    assert_eq!(
        pro.grant(&renewal),
        Err(GrantRefusal::AlreadyGranted),
        "the renewal never resets the upgrade"
    );
    let old_change = over(change("in_old", 900, "team", 9000, false), 900, 1_000);
    assert_eq!(pro.grant(&old_change), Err(GrantRefusal::Superseded));
    let same_period = over(change("in_again", 1_000, "pro", 5000, true), 1_000, 2_000);
    assert_eq!(
        pro.grant(&same_period),
        Err(GrantRefusal::Superseded),
        "a second invoice starting the same period grants nothing"
    );
}

/// A period that starts later is newer even when it ends sooner (yearly to monthly, a long
/// trial ended early); a switch that cuts a paid period short adds only beyond the most
/// granted, and a switch to fewer credits cuts the balance to the new plan's, so switching
/// back and forth farms nothing. A record from before the most was kept is reset.
#[test]
fn a_switch_that_resets_the_cycle_grants_only_beyond_the_most_granted() {
    let year = 365 * 86_400;
    let month = 30 * 86_400;
    let yearly = subscriber(0);
    let first = over(change("in_y", 0, "pro_y", 60_000, true), 0, year);
    let yearly = applied(yearly.clone(), &yearly.grant(&first).unwrap());
    let yearly = UserRecord {
        credits_remaining: 50_000,
        ..yearly
    };
    let switch = |id: &str, at: i64, plan: &str, credits: i64| CreditGrant {
        switches_period: true,
        ..over(change(id, at, plan, credits, true), at, at + month)
    };
    let monthly = switch("in_m", 86_400, "pro", 5000);
    let posting = yearly.grant(&monthly).unwrap();
    assert_eq!(
        (
            posting.entry.amount,
            posting.entry.balance_after,
            posting.entry.expired
        ),
        (-45_000, 5000, Some(45_000)),
        "a switch to fewer credits cuts the balance to the new plan's"
    );
    let monthly_record = applied(yearly, &posting);
    assert_eq!(monthly_record.granted_period_end, Some(86_400 + month));
    let back = switch("in_y2", 2 * 86_400, "pro_y", 60_000);
    let again = monthly_record.grant(&back).unwrap();
    assert_eq!(
        (again.entry.amount, again.entry.expired),
        (0, None),
        "back to yearly: the most was granted already"
    );
    assert_eq!(
        again.grant.as_ref().unwrap().credits,
        60_000,
        "the most is kept"
    );
    let renewal = over(
        change("in_m2", 86_400 + month, "pro", 5000, true),
        86_400 + month,
        86_400 + 2 * month,
    );
    let renewed = monthly_record.grant(&renewal).unwrap();
    assert_eq!(
        renewed.entry.balance_after, 5000,
        "the next renewal grants in full"
    );

    let mut legacy = subscriber(700);
    legacy.period_credits = None;
    let reset = legacy
        .grant(&switch("in_l", 86_400, "pro_y", 60_000))
        .unwrap();
    assert_eq!(
        (reset.entry.balance_after, reset.entry.expired),
        (60_000, Some(700))
    );

    // A trial ended early credits no unused time: its first paid period, in full.
    let trial = subscriber(0);
    let trial_grant = over(change("in_t", 0, "pro", 5000, true), 0, 60 * 86_400);
    let trial = applied(trial.clone(), &trial.grant(&trial_grant).unwrap());
    let paid = over(
        change("in_p", 5 * 86_400, "pro", 5000, true),
        5 * 86_400,
        35 * 86_400,
    );
    let posting = UserRecord {
        credits_remaining: 100,
        ..trial
    }
    .grant(&paid)
    .unwrap();
    assert_eq!(
        (posting.entry.amount, posting.entry.balance_after),
        (4900, 5000)
    );
}

#[test]
fn an_upgrade_grants_the_difference_once_and_switching_back_and_forth_grants_no_more() {
    let plus = subscriber(0);
    let first = plus
        .grant(&change("in_c", 100, "plus", 1000, true))
        .unwrap();
    let spent = UserRecord {
        credits_remaining: 400,
        ..applied(plus, &first)
    };
    let up = spent
        .grant(&change("in_u1", 200, "pro", 5000, false))
        .unwrap();
    assert_eq!(up.entry.kind, EntryKind::PlanUpgrade);
    assert_eq!((up.entry.amount, up.entry.balance_after), (4000, 4400));
    assert_eq!(up.entry.description().unwrap(), "upgrade to the pro plan");
    let pro = applied(spent, &up);
    assert_eq!(pro.last_grant_created, 100, "an upgrade keeps the period");
    assert_eq!(
        pro.grant(&change("in_u1", 200, "pro", 5000, false)),
        Err(GrantRefusal::AlreadyGranted)
    );
    for (invoice, plan, credits) in [("in_d", "plus", 1000), ("in_u2", "pro", 5000)] {
        assert_eq!(
            pro.grant(&change(invoice, 300, plan, credits, false)),
            Err(GrantRefusal::NoUpgrade),
            "{invoice}"
        );
    }
    let renewed = pro.grant(&change("in_r", 400, "plus", 1000, true)).unwrap();
    assert_eq!(renewed.entry.kind, EntryKind::PeriodGrant);
    assert_eq!(renewed.entry.balance_after, 1000);
    assert_eq!(renewed.entry.expired, Some(4400));
    let next = applied(pro, &renewed);
    assert_eq!(next.period_credits, Some(1000));
    assert_eq!(
        next.grant(&change("in_old", 300, "team", 9000, false)),
        Err(GrantRefusal::Superseded),
        "a change of the period before grants nothing in this one"
    );
}

#[test]
fn a_period_granted_before_plans_were_recorded_gets_no_upgrade_in_it() {
    let legacy = subscriber(10);
    assert_eq!(legacy.period_credits, None);
    let upgrade = change("in_u", 200, "pro", 5000, false);
    assert_eq!(legacy.grant(&upgrade), Err(GrantRefusal::NoUpgrade));
    assert!(!legacy.lacks_grant(&upgrade));
}

#[test]
fn a_period_grant_says_what_expired_and_sums_to_the_new_balance() {
    let posting = subscriber(37).grant(&grant("in_1", 1_764_580_320)).unwrap();
    let entry = &posting.entry;
    assert_eq!((entry.amount, entry.balance_after), (963, 1000));
    assert_eq!((entry.granted, entry.expired), (Some(1000), Some(37)));
    assert_eq!(posting.seen.before + entry.amount, entry.balance_after);
    assert_eq!(entry.key.as_str(), "2025-12-01T09:12:00Z#period_grant#in_1");
    assert_eq!(entry.description().unwrap(), "pro plan, new period");
}

#[test]
fn a_grant_is_refused_when_granted_superseded_or_not_entitled() {
    let mut record = subscriber(5);
    record.granted_invoices.insert("in_1".into());
    record.last_grant_created = 2_000;
    assert_eq!(
        record.grant(&grant("in_1", 2_000)),
        Err(GrantRefusal::AlreadyGranted)
    );
    assert_eq!(
        record.grant(&grant("in_0", 1_000)),
        Err(GrantRefusal::Superseded)
    );
    record.subscription_status = SubscriptionStatus::PastDue;
    assert_eq!(
        record.grant(&grant("in_2", 3_000)),
        Err(GrantRefusal::NotEntitled)
    );
}

#[test]
fn adjustments_never_go_below_zero_and_need_a_reason() {
    let record = subscriber(3);
    let adjustment = |amount, reason| Adjustment {
        id: "adj_1",
        balance: Balance::Credits,
        amount,
        reason,
        operator: "ops:alice",
        at: 1_800_000_000,
    };
    let taken = record
        .adjustment(&adjustment(-3, "duplicate grant"))
        .unwrap();
    assert_eq!(taken.entry.balance_after, 0);
    assert_eq!(taken.once.as_deref(), Some("adj_1"));
    assert_eq!(
        record.adjustment(&adjustment(-4, "too much")),
        Err(AdjustmentRefusal::BelowZero {
            balance: 3,
            amount: -4
        })
    );
    assert_eq!(
        record.adjustment(&adjustment(0, "none")),
        Err(AdjustmentRefusal::Incomplete)
    );
    assert_eq!(
        record.adjustment(&adjustment(5, " ")),
        Err(AdjustmentRefusal::Incomplete)
    );
}
