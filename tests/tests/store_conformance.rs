//! One conformance suite, two stores: the embedded one and DynamoDB on the emulator.

use std::sync::Arc;

use common::store::{MemoryStore, Store};
use integration_tests::{conformance, emulator, holdings_conformance, ledger_conformance};

macro_rules! suite {
    ($module:ident = $suite:ident: $($case:ident),* $(,)?) => {
        mod $module {
            use super::*;
            mod memory {
                use super::*;
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $case() { $suite::$case(Arc::new(MemoryStore::new()) as Arc<dyn Store>).await } )*
            }
            mod dynamodb {
                use super::*;
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $case() { $suite::$case(Arc::new(emulator::store().await) as Arc<dyn Store>).await } )*
            }
        }
    };
}

suite!(
    store = conformance:
    missing_user_reads_as_none,
    created_user_reads_back_identically,
    second_create_changes_nothing,
    concurrent_creates_make_exactly_one_record,
    concurrent_first_sight_agrees_on_one_record,
    users_are_independent,
    customer_is_linked_both_ways,
    first_linked_customer_stays,
    billing_writes_need_a_record,
    subscription_views_never_move_backwards,
    credits_are_granted_once_per_invoice_and_never_backwards,
    debits_are_conditional,
    a_debit_id_is_charged_once,
    a_refund_gives_back_what_its_debit_took_once,
    a_refund_gives_back_only_within_the_debit_s_period,
    a_debit_of_a_past_period_is_refused,
    a_record_being_erased_links_no_customer,
    concurrent_debits_never_overspend,
    events_are_claimed_exactly_once,
    concurrent_deliveries_claim_once,
    ended_subscriptions_drop_credits_not_free_messages,
    erasure_removes_the_user_and_leaves_a_tombstone,
    tombstoned_users_are_not_recreated,
    due_users_are_listed_in_order_page_by_page,
    the_reconcile_cursor_round_trips,
);

suite!(
    ledger = ledger_conformance:
    every_change_keeps_each_balance_the_sum_of_its_entries,
    a_day_s_debits_and_refunds_are_one_entry_each,
    a_grant_records_what_expired_once,
    a_plan_change_waits_for_its_period_s_own_invoice,
    a_pack_is_granted_once_only_from_a_session_kept_here,
    endings_write_their_entry_once,
    an_adjustment_is_applied_once_and_never_below_zero,
    the_history_pages_newest_first_each_entry_once,
    erasure_deletes_the_ledger,
    nothing_is_posted_once_the_erasure_began,
    a_message_is_paid_from_the_plan_then_from_purchased_credits,
    purchased_credits_pay_free_users_and_outlive_the_subscription,
);

suite!(
    holdings = holdings_conformance:
    holdings_page_through_the_user_s_items_in_key_order,
    an_event_s_state_reads_as_its_record_says,
);
