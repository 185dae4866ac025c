//! The credit ledger's property test (part of [`crate::ledger_conformance`]): random sequences
//! of grants, debits (some paid from two balances), refunds, status changes, customer
//! deletions, operator adjustments (of every balance) and pairs of them racing, on one store,
//! with the invariant checked after every step.

use std::sync::Arc;

use common::config::Rules;
use common::credits;
use common::domain::{Balance, Caller, MessagePrices, UserId};
use common::store::Store;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::ledger_conformance::{created, invoice, ledger_sums, view};

/// One step of a random sequence.
#[derive(Debug, Clone)]
enum Step {
    /// The sync's grant of invoice `in_<n>` (older numbers are older invoices).
    Grant(u8),
    /// A message debit, with one of a few ids (so retries and re-debits after refunds occur),
    /// to a 1-credit model or a dearer one (`true`: paid from two balances when one falls short).
    Debit(u8, bool),
    /// The refund of that id.
    Refund(u8),
    /// A new subscription status from Stripe.
    Status(&'static str),
    /// An operator's adjustment of a balance (an index into `Balance::ALL`) by `amount`, with
    /// one of a few ids (purchased credits are filled this way, as packs post).
    Adjust(usize, i8, u8),
    /// A customer linked, then deleted at Stripe.
    DeleteCustomer,
}

/// A step, or two racing.
#[derive(Debug, Clone)]
enum Op {
    One(Step),
    Race(Step, Step),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..6).prop_map(Step::Grant),
        6 => (0u8..8, any::<bool>()).prop_map(|(id, large)| Step::Debit(id, large)),
        2 => (0u8..8).prop_map(Step::Refund),
        2 => prop_oneof![Just("active"), Just("past_due"), Just("canceled")].prop_map(Step::Status),
        2 => (0..Balance::ALL.len(), -6i8..6, 0u8..4).prop_map(|(balance, amount, id)| Step::Adjust(balance, amount, id)),
        1 => Just(Step::DeleteCustomer),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => step().prop_map(Op::One),
        1 => (step(), step()).prop_map(|(a, b)| Op::Race(a, b)),
    ]
}

/// Runs `step` for `user`; every outcome is allowed (refusals, nothing owed, a 503 after a
/// race), since the invariant is what is checked, and it must hold whatever came of it.
async fn run(store: Arc<dyn Store>, user: UserId, step: Step, clock: i64) {
    let rules = Rules {
        message_prices: MessagePrices::new([("large".to_owned(), 3)]).unwrap(),
        ..Rules::default()
    };
    let caller = Caller::signed_in(&user);
    match step {
        Step::Grant(n) => {
            let paid = invoice(&format!("in_{n}"), 1_000 + i64::from(n) * 10);
            let _ = credits::grant_for_invoice(
                store.as_ref(),
                &user,
                &paid,
                &crate::ledger_conformance::plan(100),
            )
            .await;
        }
        Step::Debit(n, large) => {
            let model = if large { "large" } else { "default" };
            let id = format!("m{n}");
            let _ = credits::debit_message(store.as_ref(), &caller, &rules, &id, model).await;
        }
        Step::Refund(n) => {
            let _ = credits::refund_message(store.as_ref(), &user, &format!("m{n}")).await;
        }
        Step::Status(status) => {
            let _ = store.apply_subscription(&user, &view(status, clock)).await;
        }
        Step::Adjust(balance, amount, n) => {
            let balance = Balance::ALL[balance];
            let id = format!("adj_{n}");
            let _ = credits::adjust(
                store.as_ref(),
                &user,
                balance,
                i64::from(amount),
                "test",
                "ops:prop",
                &id,
            )
            .await;
        }
        Step::DeleteCustomer => {
            let customer = format!("cus_{clock}");
            if store.link_customer(&user, &customer).await.is_ok() {
                store.unlink_customer(&user, &customer).await.unwrap();
            }
        }
    }
}

/// The property test: random sequences on one store, the invariant after every step.
pub async fn every_change_keeps_each_balance_the_sum_of_its_entries(store: Arc<dyn Store>) {
    let config = Config {
        cases: 10,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let handle = tokio::runtime::Handle::current();
    let outcome = runner.run(&proptest::collection::vec(op(), 1..20), |ops| {
        let store = Arc::clone(&store);
        tokio::task::block_in_place(|| {
            handle.block_on(async move {
                let (user, initial) = created(store.as_ref(), 10).await;
                for (i, op) in ops.into_iter().enumerate() {
                    let clock = 1_000 + i as i64 * 2;
                    match op {
                        Op::One(step) => run(Arc::clone(&store), user.clone(), step, clock).await,
                        Op::Race(a, b) => {
                            let first = run(Arc::clone(&store), user.clone(), a, clock);
                            let second = run(Arc::clone(&store), user.clone(), b, clock + 1);
                            tokio::join!(first, second);
                        }
                    }
                    ledger_sums(store.as_ref(), &user, &initial)
                        .await
                        .map_err(|broken| {
                            TestCaseError::fail(format!("after step {i}: {broken}"))
                        })?;
                }
                Ok(())
            })
        })
    });
    if let Err(err) = outcome {
        panic!("{err}");
    }
}
