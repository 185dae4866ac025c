//! Storage of user records, split by capability into small traits, with two implementations
//! that pass one conformance suite (`tests/src/conformance.rs`): [`DynamoStore`] (the Lambdas,
//! always) and [`MemoryStore`] (local runs, fast handler tests). A function asks for the
//! capabilities it uses; [`Store`] is all of them. The key design is in `docs/data-model.md`.
//!
//! | trait | capability |
//! |---|---|
//! | [`Profiles`] | the user's record: read, create, the subscription view, paid periods |
//! | [`CustomerLinks`] | the user ↔ Stripe customer link, both ways |
//! | [`Ledger`] | every change of a balance with its entry: debits, refunds, grants, adjustments; the history |
//! | [`WebhookEvents`] | claiming and finishing a webhook event, once per event id |
//! | [`Erasures`] | the tombstone and the deletion of everything a user has |
//! | [`Reconciliation`] | the users due for a re-sync, in order, and the cursor of a pass |
//! | [`CallLimits`] | how many of a user's requests reached Stripe in a window |
//! | [`Holdings`] | every item of a user's partition, page by page: what their export is made of |

mod dynamo;
mod memory;

use async_trait::async_trait;

use crate::domain::{
    Charge, DebitId, DebitOutcome, DuePosition, Entry, EntryKey, EventClaim, EventOutcome,
    EventState, Held, HeldKey, OpenCheckout, PendingPack, PostOutcome, Posting, Purchase,
    ReconcileCursor, RefundOutcome, SubscriptionView, Tombstone, UserId, UserRecord,
};
pub(crate) use dynamo::env_credentials;
pub use dynamo::{DynamoStore, https_client};
pub use memory::MemoryStore;

/// Why a storage call failed. Every variant but the last two means "the state is unknown",
/// never "empty".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store throttled us beyond the client's retries.
    #[error("storage throttled")]
    Throttled,
    /// The store could not be reached, timed out or failed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// An item exists but cannot be read as a record, or items contradict each other.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    /// The user's record does not exist (it must be created first).
    #[error("no such user record")]
    NoRecord,
    /// The user's erasure has begun: nothing was written.
    #[error("the user is being erased")]
    Erasing,
}

/// The user's record.
#[async_trait]
pub trait Profiles: Send + Sync {
    /// The user's record, read consistently, or `None` if there is none.
    async fn get_user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError>;

    /// Writes `record` only if the user has none yet (one conditional put). `Ok(false)` means a
    /// record already existed and nothing was written.
    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError>;

    /// Writes `view` into the existing record of `user` in one conditional update, unless a view
    /// observed at the same time or later is stored already. `Ok(false)`: nothing written. A
    /// view whose subscription has ended also ends the paid credits left, with their
    /// [`crate::domain::EntryKind::SubscriptionEnded`] entry in the same transaction.
    async fn apply_subscription(
        &self,
        user: &UserId,
        view: &SubscriptionView,
    ) -> Result<bool, StoreError>;

    /// Records `session` as the user's Checkout session that may still be open, or (`None`)
    /// that none is, in one conditional write: only if the one recorded is still `previous` (by
    /// id) and no erasure began (else `Erasing`). `Ok(false)`: a concurrent checkout recorded
    /// its own first; nothing written.
    async fn set_open_checkout(
        &self,
        user: &UserId,
        previous: Option<&str>,
        session: Option<&OpenCheckout>,
    ) -> Result<bool, StoreError>;

    /// Keeps `pending` among the user's pack sessions not granted yet, and makes the user due
    /// for reconciliation within the hour (so a lost webhook heals), in one update of the
    /// existing record; `Erasing` once its erasure began, `NoRecord` without a record.
    async fn add_pending_pack(
        &self,
        user: &UserId,
        pending: &PendingPack,
    ) -> Result<(), StoreError>;

    /// Forgets pending pack session `session` of `user` (it can no longer be paid). Safe to
    /// repeat.
    async fn drop_pending_pack(&self, user: &UserId, session: &str) -> Result<(), StoreError>;
}

/// The link between a user and a Stripe customer, kept both ways.
#[async_trait]
pub trait CustomerLinks: Send + Sync {
    /// Records on the existing record of `user` that a Stripe customer may exist for it, before
    /// one is created: an erasure then knows to ask Stripe. `Erasing` once its erasure began.
    async fn expect_customer(&self, user: &UserId) -> Result<(), StoreError>;

    /// Links `customer` to the existing record of `user`, and writes the customer→user mapping,
    /// atomically and only if the user has no other customer and is not being erased (else
    /// `Erasing`, nothing written). Returns the customer now linked: `customer`, or the one
    /// linked before.
    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<String, StoreError>;

    /// Forgets `customer`, deleted at Stripe: if it is the one linked to `user`, removes the link
    /// both ways and the subscription state with it (status `none`, plan `free`; the paid
    /// credits end with a [`crate::domain::EntryKind::CustomerDeleted`] entry in the same
    /// transaction; free messages stay). Safe to repeat; a customer linked to someone else is
    /// left alone.
    async fn unlink_customer(&self, user: &UserId, customer: &str) -> Result<(), StoreError>;

    /// The user `customer` is linked to, if any.
    async fn user_for_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError>;
}

/// The credit ledger: every change of a balance, each written with its entry in one
/// transaction (`docs/data-model.md`, "The credit ledger"), and the history they make.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Takes one from `charge.balance` for the message `charge.debit_id`, atomically and at most
    /// once per id, adding it to the day's usage entry: only if the balance is still
    /// `charge.before`, the subscription status still `charge.status_seen` and, for credits, the
    /// paid period still `charge.period` (so neither the payer nor the period can change under
    /// us, and the entry knows the balance after), and no unrefunded debit with that id was
    /// charged in the last [`crate::domain::DEBIT_RETENTION_SECS`] (a retry, by the SDK after a
    /// lost reply or by the caller, is never charged twice). A refunded id is charged anew: the
    /// message is being retried, and its refund gave the first charge back.
    async fn debit(&self, user: &UserId, charge: &Charge<'_>) -> Result<DebitOutcome, StoreError>;

    /// Gives back what the debit `debit_id` of `user` took (to each balance, as its debit item
    /// records), atomically and at most once: the debit item is marked refunded and each
    /// balance's day's refund entry added to in the same transaction. A plan credit goes back
    /// only within the paid period it was taken in, and never onto an ended subscription
    /// ([`UserRecord::refund_of`]); when nothing is left to give back
    /// ([`RefundOutcome::Lapsed`]), the item is marked refunded all the same.
    async fn refund(&self, user: &UserId, debit_id: &DebitId) -> Result<RefundOutcome, StoreError>;

    /// Applies `posting` to the existing record of `user` in one transaction: its entry (new,
    /// or [`PostOutcome::AlreadyPosted`]), its once-only id if it has one, and the balance set
    /// to the entry's `balance_after` (a grant also records its invoice and period), only if
    /// the record still holds [`Posting::seen`] (else [`PostOutcome::Moved`], nothing written).
    /// `Erasing` once the user's erasure began, `NoRecord` without a record.
    async fn post(&self, user: &UserId, posting: &Posting) -> Result<PostOutcome, StoreError>;

    /// Up to `limit` entries of `user`, newest first, after `after` (the last key of the
    /// previous page); and whether more follow. One query on the user's partition.
    async fn entries(
        &self,
        user: &UserId,
        after: Option<&EntryKey>,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError>;

    /// Every purchase of `user` kept to be taken back ([`Purchase`]), in no order: one query on
    /// the user's partition. Made and changed only by [`Ledger::post`], with the posting.
    async fn purchases(&self, user: &UserId) -> Result<Vec<Purchase>, StoreError>;
}

/// The processing of webhook events, once per event id.
#[async_trait]
pub trait WebhookEvents: Send + Sync {
    /// Claims webhook event `event_id` for processing until `now +`
    /// [`crate::domain::EVENT_LEASE_SECS`] (Unix seconds), in one conditional write. The record
    /// expires by TTL after [`crate::domain::EVENT_RETENTION_SECS`].
    async fn begin_event(&self, event_id: &str, now: i64) -> Result<EventClaim, StoreError>;

    /// Records how processing of a claimed event ended: [`EventOutcome::Done`] for good, or
    /// [`EventOutcome::Failed`] (a redelivery may claim it again).
    async fn finish_event(
        &self,
        event_id: &str,
        outcome: EventOutcome,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Where the processing of event `event_id` stands, or `None` if no delivery of it was
    /// recorded (or its record expired): for operators asking "did this webhook arrive?".
    async fn event_state(&self, event_id: &str) -> Result<Option<EventState>, StoreError>;
}

/// What erasure needs: the tombstone, and the deletion of every item of a user.
#[async_trait]
pub trait Erasures: Send + Sync {
    /// The tombstone of `user`, if the user was (being) erased.
    async fn tombstone(&self, user: &UserId) -> Result<Option<Tombstone>, StoreError>;

    /// Marks the record of `user` as being erased since `at` (kept if marked before), creating a
    /// marked record if there is none: from then on it is served to no one, no customer can be
    /// linked to it and no message debited from it.
    async fn mark_erasing(&self, user: &UserId, at: i64) -> Result<(), StoreError>;

    /// Writes (or overwrites) the tombstone of `user`, keyed by a hash of the id.
    async fn write_tombstone(&self, user: &UserId, tombstone: &Tombstone)
    -> Result<(), StoreError>;

    /// Deletes every item under the user's partition except the profile, page by page, 25 per
    /// batch, retrying unprocessed items. Returns how many were deleted. Safe to repeat.
    async fn delete_owned_items(&self, user: &UserId) -> Result<usize, StoreError>;

    /// Deletes the customer→user mapping of `customer` (if any).
    async fn delete_customer_link(&self, customer: &str) -> Result<(), StoreError>;

    /// Deletes the profile record of `user` (if any): the last step of an erasure.
    async fn delete_profile(&self, user: &UserId) -> Result<(), StoreError>;
}

/// What reconciliation needs: the users due for a re-sync, without reading the whole table,
/// and a cursor that outlives a run.
#[async_trait]
pub trait Reconciliation: Send + Sync {
    /// Up to `limit` users whose record is due by `due_by` (its `next_check`, Unix seconds), in
    /// order of due time then id, after `after`; and whether more may follow. Read from an
    /// index, eventually consistent: a user just synced may show once more, never one missed.
    async fn due_users(
        &self,
        due_by: i64,
        after: Option<&DuePosition>,
        limit: usize,
    ) -> Result<(Vec<DuePosition>, bool), StoreError>;

    /// The cursor of the pass under way, if a run left one.
    async fn reconcile_cursor(&self) -> Result<Option<ReconcileCursor>, StoreError>;

    /// Stores the cursor of the pass under way, or (`None`) ends the pass.
    async fn save_reconcile_cursor(
        &self,
        cursor: Option<&ReconcileCursor>,
    ) -> Result<(), StoreError>;
}

/// Limits per caller.
#[async_trait]
pub trait CallLimits: Send + Sync {
    /// Counts one request of `user` that is about to reach Stripe in the window starting at
    /// `window` (Unix seconds), by conditional writes on the user's record, if fewer than
    /// `limit` were counted in it. `Ok(false)`: the limit is reached, nothing was counted;
    /// `Erasing` once the user's erasure began, `NoRecord` without a record.
    async fn count_stripe_call(
        &self,
        user: &UserId,
        window: i64,
        limit: i64,
    ) -> Result<bool, StoreError>;
}

/// What a user's own copy of their data reads.
#[async_trait]
pub trait Holdings: Send + Sync {
    /// Up to `limit` items of the partition of `user` (its profile, ledger entries, debits,
    /// once-only markers and purchases, and any other service's items by kind), in key order,
    /// after `after`; and where the next page starts (`None`: none follows). One consistent
    /// query on the user's partition per page, never a scan.
    async fn holdings(
        &self,
        user: &UserId,
        after: Option<&HeldKey>,
        limit: usize,
    ) -> Result<(Vec<Held>, Option<HeldKey>), StoreError>;
}

/// Every capability: what the app of a Lambda holds. Implemented by whatever implements them all.
pub trait Store:
    Profiles
    + CustomerLinks
    + Ledger
    + WebhookEvents
    + Erasures
    + Reconciliation
    + CallLimits
    + Holdings
{
}

impl<T> Store for T where
    T: Profiles
        + CustomerLinks
        + Ledger
        + WebhookEvents
        + Erasures
        + Reconciliation
        + CallLimits
        + Holdings
        + ?Sized
{
}
