//! The table's keys and attribute names (single-table design, see `docs/data-model.md`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{Balance, EntryKey, UserId};

/// An item, or a key, as the SDK passes it.
pub type Item = HashMap<String, AttributeValue>;

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// The TTL attribute (see `template.yaml`).
pub const TTL: &str = "ttl";
/// Sort key of the profile and billing record.
pub const PROFILE: &str = "PROFILE";
/// The sparse index of users due for reconciliation (`template.yaml`): partition `due_shard`,
/// sort `due_at`, keys only. Only profiles of users with a Stripe customer carry its keys.
pub const DUE_INDEX: &str = "due";
/// The index's partition key attribute, and its one value.
pub const DUE_SHARD: &str = "due_shard";
/// See [`DUE_SHARD`].
pub const DUE: &str = "DUE";
/// The index's sort key attribute: when the user is due, Unix seconds.
pub const DUE_AT: &str = "due_at";
/// Sort-key prefix of a debit's ledger item (`DEBIT#<debit id>`), kept for the retention period.
pub const DEBIT: &str = "DEBIT#";

/// A string attribute.
pub fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// A number attribute.
pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The key `pk`, `sk`.
fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), s(sk)),
    ])
}

/// The partition holding every item of `user`.
pub fn user_pk(user: &UserId) -> String {
    format!("USER#{}", user.as_str())
}

/// The key of the profile record of `user`.
pub fn profile_key(user: &UserId) -> Item {
    key(user_pk(user), PROFILE)
}

/// The key of the ledger item of the debit `debit_id` of `user`.
pub fn debit_key(user: &UserId, debit_id: &str) -> Item {
    key(user_pk(user), &format!("{DEBIT}{debit_id}"))
}

/// The profile attribute holding `balance`.
pub fn balance_attribute(balance: Balance) -> &'static str {
    match balance {
        Balance::Credits => "credits_remaining",
        Balance::FreeMessages => "free_messages_remaining",
        Balance::Purchased => "purchased_credits",
    }
}

/// The key of the ledger entry `entry` of `user` (`LEDGER#<entry key>`).
pub fn entry_key(user: &UserId, entry: &EntryKey) -> Item {
    key(
        user_pk(user),
        &format!("{}{}", super::entries::LEDGER, entry.as_str()),
    )
}

/// Sort-key prefix of the marker of a posting done once (`ONCE#<id>`).
pub const ONCE: &str = "ONCE#";

/// The key of the marker of a posting done once for `id` (`ONCE#<id>`).
pub fn once_key(user: &UserId, id: &str) -> Item {
    key(user_pk(user), &format!("{ONCE}{id}"))
}

/// The key of the customer→user mapping item of `customer`.
pub fn customer_key(customer: &str) -> Item {
    key(format!("CUSTOMER#{customer}"), "CUSTOMER")
}

/// The key of the record of webhook event `event_id`.
pub fn event_key(event_id: &str) -> Item {
    key(format!("EVENT#{event_id}"), "EVENT")
}

/// The key of the reconciliation cursor.
pub fn cursor_key() -> Item {
    key("RECONCILE".to_owned(), "CURSOR")
}

/// The key of the tombstone of `user`: a hash, never the id.
pub fn tombstone_key(user: &UserId) -> Item {
    key(format!("TOMBSTONE#{}", user.full_hash()), "TOMBSTONE")
}
