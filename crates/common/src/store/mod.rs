//! Storage of user records behind a small trait, with two implementations that pass one
//! conformance suite (`tests/tests/store_conformance.rs`):
//! [`DynamoStore`] (the Lambdas, always) and [`MemoryStore`] (local runs, fast handler tests).
//! The key design is in `docs/data-model.md`.

use std::collections::BTreeSet;

mod dynamo;
mod memory;

use async_trait::async_trait;

use crate::error::ApiError;
use crate::users::{FREE_PLAN, NO_SUBSCRIPTION, UserId};
pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

/// A user's profile and billing record (`pk = USER#<id>`, `sk = PROFILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Whose record this is.
    pub user_id: UserId,
    /// `free` or the paid plan's name.
    pub plan: String,
    /// Stripe's subscription status, or `none`.
    pub subscription_status: String,
    /// Remaining paid credits of the current period.
    pub credits_remaining: i64,
    /// Lifetime free messages granted at creation.
    pub free_messages_total: i64,
    /// Lifetime free messages left.
    pub free_messages_remaining: i64,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// The user's Stripe customer, once created.
    pub stripe_customer_id: Option<String>,
    /// The subscription the status reflects.
    pub subscription_id: Option<String>,
    /// Its price.
    pub price_id: Option<String>,
    /// End of its current period, Unix seconds.
    pub current_period_end: Option<i64>,
    /// Whether it ends at the period end.
    pub cancel_at_period_end: bool,
    /// When the Stripe view last written was observed, Unix milliseconds (0: never synced).
    /// An older view never overwrites a newer one.
    pub synced_at_ms: i64,
    /// Invoices whose credits were granted (each at most once).
    pub granted_invoices: BTreeSet<String>,
    /// Creation time of the newest granted invoice, Unix seconds (0: none).
    pub last_grant_created: i64,
}

impl UserRecord {
    /// The record of a user seen for the first time: free plan, nothing used.
    pub fn new_free(user_id: UserId, free_messages: i64, now: i64) -> Self {
        UserRecord {
            user_id,
            plan: FREE_PLAN.to_owned(),
            subscription_status: NO_SUBSCRIPTION.to_owned(),
            credits_remaining: 0,
            free_messages_total: free_messages,
            free_messages_remaining: free_messages,
            created_at: now,
            stripe_customer_id: None,
            subscription_id: None,
            price_id: None,
            current_period_end: None,
            cancel_at_period_end: false,
            synced_at_ms: 0,
            granted_invoices: BTreeSet::new(),
            last_grant_created: 0,
        }
    }

    /// This record with `view` applied (what [`Store::apply_subscription`] writes). A view whose
    /// subscription has ended also drops the paid credits to 0; free messages stay.
    pub fn with_subscription(mut self, view: &SubscriptionView) -> Self {
        if view.ends_paid_credits() {
            self.credits_remaining = 0;
        }
        self.plan = view.plan.clone();
        self.subscription_status = view.status.clone();
        self.subscription_id = view.subscription_id.clone();
        self.price_id = view.price_id.clone();
        self.current_period_end = view.current_period_end;
        self.cancel_at_period_end = view.cancel_at_period_end;
        self.synced_at_ms = view.observed_at_ms;
        self
    }
}

/// The subscription state of a customer as read from Stripe at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    /// `free` or the paid plan's name.
    pub plan: String,
    /// Stripe's status, or `none` without any subscription.
    pub status: String,
    /// The subscription that matters, if any.
    pub subscription_id: Option<String>,
    /// Its price.
    pub price_id: Option<String>,
    /// End of its current period, Unix seconds.
    pub current_period_end: Option<i64>,
    /// Whether it ends at the period end.
    pub cancel_at_period_end: bool,
    /// When Stripe was asked, Unix milliseconds: the view's version.
    pub observed_at_ms: i64,
}

impl SubscriptionView {
    /// The view of a customer without any subscription, observed at `observed_at_ms`.
    pub fn none(observed_at_ms: i64) -> Self {
        SubscriptionView {
            plan: FREE_PLAN.to_owned(),
            status: NO_SUBSCRIPTION.to_owned(),
            subscription_id: None,
            price_id: None,
            current_period_end: None,
            cancel_at_period_end: false,
            observed_at_ms,
        }
    }

    /// Whether this view means the paid period is over for good (canceled, expired, or no
    /// subscription at all), so unused credits lapse.
    pub fn ends_paid_credits(&self) -> bool {
        matches!(
            self.status.as_str(),
            "canceled" | "incomplete_expired" | NO_SUBSCRIPTION
        )
    }
}

/// The credits of one paid invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditGrant {
    /// The invoice (`in_...`): each is granted at most once.
    pub invoice_id: String,
    /// Its creation time, Unix seconds: an older invoice never resets a newer period.
    pub invoice_created: i64,
    /// The balance the period starts with (`PLAN_CREDITS`).
    pub credits: i64,
}

/// Which balance a message is paid from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Paid credits (`credits_remaining`), for subscribers.
    Credits,
    /// Lifetime free messages (`free_messages_remaining`), for everyone else.
    FreeMessages,
}

/// How long a debit id is remembered (its ledger item's TTL): a retry within it is charged once.
pub const DEBIT_RETENTION_SECS: i64 = 24 * 3600;

/// What [`Store::debit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebitOutcome {
    /// Charged now.
    Charged,
    /// This debit id was charged before; nothing was charged now.
    AlreadyCharged,
    /// The balance is 0, the status changed, or there is no record: nothing was written.
    Refused,
}

/// How far an erasure got, kept in the user's tombstone so that a retry resumes where the last
/// attempt stopped and repeats no call that already succeeded. Ordered: each stage implies the
/// ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErasureStage {
    /// Stripe is closed (subscriptions canceled, customers deleted); the tombstone now bars the
    /// user; stored items may remain.
    StripeClosed,
    /// Every stored item of the user is gone; the login may remain.
    StoredErased,
    /// The login at the auth service is gone too: the erasure is complete.
    LoginDeleted,
}

impl ErasureStage {
    /// The stored name of the stage.
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureStage::StripeClosed => "stripe_closed",
            ErasureStage::StoredErased => "stored_erased",
            ErasureStage::LoginDeleted => "login_deleted",
        }
    }

    /// The stage of a stored name. A tombstone without one predates stages: its erasure emptied
    /// the table (it was written, then everything deleted, in one call).
    pub fn parse(name: Option<&str>) -> Option<Self> {
        match name {
            Some("stripe_closed") => Some(ErasureStage::StripeClosed),
            Some("stored_erased") | None => Some(ErasureStage::StoredErased),
            Some("login_deleted") => Some(ErasureStage::LoginDeleted),
            Some(_) => None,
        }
    }
}

/// What is kept of an erased user: a hash of the id (the key), times and the erasure's stage;
/// no personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    /// When the erasure began, Unix seconds.
    pub erased_at: i64,
    /// When the tombstone expires (TTL), Unix seconds.
    pub expires_at: i64,
    /// How far the erasure got.
    pub stage: ErasureStage,
}

/// What [`Store::refund`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The debit's message was given back to this balance now.
    Refunded(Balance),
    /// This debit was refunded before; nothing was given now.
    AlreadyRefunded,
    /// No debit with this id was charged (in the retention period): nothing to give back.
    NotCharged,
}

/// What [`Store::begin_event`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClaim {
    /// New, failed before, or abandoned past its lease: this caller processes it now.
    Claimed,
    /// Processed already: nothing to do.
    AlreadyDone,
    /// Another delivery is processing it within its lease.
    InProgress,
}

/// Why a storage call failed. Every variant means "the state is unknown", never "empty".
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
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Throttled | StoreError::Unavailable(_) => ApiError::StorageUnavailable,
            StoreError::Corrupt(_) | StoreError::NoRecord => ApiError::Internal,
        }
    }
}

/// User-record storage.
#[async_trait]
pub trait Store: Send + Sync {
    /// The user's record, read consistently, or `None` if there is none.
    async fn get_user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError>;

    /// Writes `record` only if the user has none yet (one conditional put). `Ok(false)` means a
    /// record already existed and nothing was written.
    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError>;

    /// Links `customer` to the existing record of `user`, and writes the customer→user mapping,
    /// atomically and only if the user has no other customer. Returns the customer now linked:
    /// `customer`, or the one linked before.
    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<String, StoreError>;

    /// Forgets `customer`, deleted at Stripe: if it is the one linked to `user`, removes the link
    /// both ways and the subscription state with it (status `none`, plan `free`, paid credits 0;
    /// free messages stay). Safe to repeat; a customer linked to someone else is left alone.
    async fn unlink_customer(&self, user: &UserId, customer: &str) -> Result<(), StoreError>;

    /// The user `customer` is linked to, if any.
    async fn user_for_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError>;

    /// Writes `view` into the existing record of `user` in one conditional update, unless a view
    /// observed at the same time or later is stored already. `Ok(false)`: nothing written.
    async fn apply_subscription(
        &self,
        user: &UserId,
        view: &SubscriptionView,
    ) -> Result<bool, StoreError>;

    /// Starts the paid period of `grant` in one conditional update: sets `credits_remaining`
    /// and records the invoice, only if the user is subscribed (active or trialing), the invoice
    /// was never granted, and no newer invoice was. `Ok(false)`: nothing written.
    async fn grant_credits(&self, user: &UserId, grant: &CreditGrant) -> Result<bool, StoreError>;

    /// Takes one from `balance` for the message `debit_id`, atomically and at most once per id:
    /// only if the balance is above 0, the subscription status is still `status_seen` (so the
    /// payer cannot change under us), and no debit with that id was charged in the last
    /// [`DEBIT_RETENTION_SECS`] (a retry, by the SDK after a lost reply or by the caller, is
    /// never charged twice). `now` is Unix seconds.
    async fn debit(
        &self,
        user: &UserId,
        balance: Balance,
        status_seen: &str,
        debit_id: &str,
        now: i64,
    ) -> Result<DebitOutcome, StoreError>;

    /// Gives back what the debit `debit_id` of `user` took (one credit or one free message, as
    /// its ledger item records), atomically and at most once: the ledger item is marked refunded
    /// in the same transaction. A refunded id stays spent: a debit retried with it is not charged.
    async fn refund(&self, user: &UserId, debit_id: &str) -> Result<RefundOutcome, StoreError>;

    /// Claims webhook event `event_id` for processing until `now + lease` (Unix seconds), in one
    /// conditional write. The record expires by TTL after the retention period.
    async fn begin_event(&self, event_id: &str, now: i64) -> Result<EventClaim, StoreError>;

    /// Records how processing of a claimed event ended: done for good, or failed (redelivery
    /// may claim it again).
    async fn finish_event(&self, event_id: &str, done: bool, now: i64) -> Result<(), StoreError>;

    /// The tombstone of `user`, if the user was (being) erased.
    async fn tombstone(&self, user: &UserId) -> Result<Option<Tombstone>, StoreError>;

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

/// How long a claim on a webhook event holds before a redelivery may take it over.
pub const EVENT_LEASE_SECS: i64 = 60;
/// How long event records are kept (Stripe retries for up to 3 days).
pub const EVENT_RETENTION_SECS: i64 = 30 * 24 * 3600;
