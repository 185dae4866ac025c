//! What a caller sees of their record, and its first-sight creation.

use serde::Serialize;

use crate::config::Rules;
use crate::domain::{Caller, UserRecord};
use crate::error::ApiError;
use crate::store::{Erasures, Profiles};

/// The body of `GET /v1/user/status`: exactly the six documented fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserStatus {
    /// True while the status is entitled (`active` or `trialing`).
    pub has_subscription: bool,
    /// `free` or the configured plan name.
    pub current_plan: String,
    /// Remaining credits: the plan's of this period plus the purchased.
    pub credits_remaining: i64,
    /// Stripe's subscription status, or `none`.
    pub subscription_status: String,
    /// Remaining lifetime free messages.
    pub free_messages_remaining: i64,
    /// Lifetime free messages granted to the account.
    pub free_messages_total: i64,
}

impl From<&UserRecord> for UserStatus {
    fn from(record: &UserRecord) -> Self {
        UserStatus {
            has_subscription: record.subscription_status.is_entitled(),
            current_plan: record.plan.clone(),
            credits_remaining: record.credits_shown(),
            subscription_status: record.subscription_status.as_str().to_owned(),
            free_messages_remaining: record.free_messages_remaining,
            free_messages_total: record.free_messages_total,
        }
    }
}

/// The user's record, created on first sight as a free account (with no free messages for an
/// anonymous sign-in, unless allowed: [`Rules::free_messages_for`]). Concurrent first calls create
/// exactly one record: the losers of the conditional put read the winner's. An account being
/// erased (its record marked) or erased (tombstoned) gets 410 and nothing is created; the
/// tombstone is only read when no record exists.
pub async fn load_or_create<S>(
    store: &S,
    caller: &Caller,
    rules: &Rules,
) -> Result<UserRecord, ApiError>
where
    S: Profiles + Erasures + ?Sized,
{
    let user = &caller.user;
    if let Some(record) = store.get_user(user).await? {
        if record.erasing_since.is_some() {
            return Err(ApiError::AccountDeleted);
        }
        return Ok(record);
    }
    if store.tombstone(user).await?.is_some() {
        return Err(ApiError::AccountDeleted);
    }
    let free_messages = rules.free_messages_for(caller);
    let fresh = UserRecord::new_free(user.clone(), free_messages, crate::unix_now());
    if store.create_user(&fresh).await? {
        tracing::info!(user = %user.hash(), "user record created");
        return Ok(fresh);
    }
    store.get_user(user).await?.ok_or_else(|| {
        tracing::error!(user = %user.hash(), "record vanished after a lost create race");
        ApiError::StorageUnavailable
    })
}
