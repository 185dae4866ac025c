//! Storage of user records behind a small trait, with two implementations that pass one
//! conformance suite (`tests/tests/store_conformance.rs`):
//! [`DynamoStore`] (the Lambdas, always) and [`MemoryStore`] (local runs, fast handler tests).
//! The key design is in `docs/data-model.md`.

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
        }
    }
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
    /// An item exists but cannot be read as a record.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Throttled | StoreError::Unavailable(_) => ApiError::StorageUnavailable,
            StoreError::Corrupt(_) => ApiError::Internal,
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
}
