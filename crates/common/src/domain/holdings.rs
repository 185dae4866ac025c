//! What this service holds of a user, item by item: what a user's own copy of their data (the
//! export, GDPR Articles 15 and 20) is made of. Items other services keep under the user's
//! partition are named by their kind only: their owners export them.

use super::clawbacks::Purchase;
use super::entries::Entry;
use super::ledger::Balance;
use super::user::UserRecord;

/// One item held under a user's partition, as the store read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The profile and billing record.
    Profile(Box<UserRecord>),
    /// A ledger entry.
    Entry(Entry),
    /// A charged message, kept for the retention period so that a retry is not charged twice.
    Debit(HeldDebit),
    /// The marker of a posting done once for `id` (an adjustment id): a retry changes nothing.
    Marker {
        /// The posting's once-only id.
        id: String,
    },
    /// What one payment bought, kept to be taken back if its money goes back.
    Purchase(Purchase),
    /// An item this service did not write (another service's under the same partition), by its
    /// kind ([`kind_of`]).
    Other {
        /// The kind, such as `CONV`.
        kind: String,
    },
}

/// A charged message, as its debit item records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDebit {
    /// The message's debit id.
    pub id: String,
    /// Each balance it took from, and how much.
    pub takes: Vec<(Balance, i64)>,
    /// Whether it was refunded.
    pub refunded: bool,
}

/// Where a page of held items ends: the sort key of its last item, from which the next page
/// continues.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeldKey(pub String);

/// The kind of another service's item: the capitals (and `_`) its sort key begins with, up to
/// the first `#`; `OTHER` for a key that begins otherwise, so no id in a key is ever copied.
pub fn kind_of(sort_key: &str) -> &str {
    let prefix = sort_key.split('#').next().unwrap_or_default();
    let named = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    if named { prefix } else { "OTHER" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_the_sort_key_up_to_its_first_hash() {
        assert_eq!(kind_of("CONV#000017"), "CONV");
        assert_eq!(kind_of("KEY#a#b"), "KEY");
        assert_eq!(kind_of("SETTINGS"), "SETTINGS");
        assert_eq!(kind_of("DEVICE_KEY#1"), "DEVICE_KEY");
        for unnamed in ["", "#x", "6f1c2a9e-3b7d-4e21#x", "conv#1", "A1#2"] {
            assert_eq!(kind_of(unnamed), "OTHER", "{unnamed}");
        }
    }
}
