//! Who the caller is, what they see, and the first-sight creation of their record.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Rules;
use crate::error::ApiError;
use crate::store::{Store, UserRecord};

/// Plan shown to users without a subscription.
pub const FREE_PLAN: &str = "free";
/// `subscription_status` of a user who never subscribed.
pub const NO_SUBSCRIPTION: &str = "none";

/// A user id: the `sub` claim of a verified token, always a UUID.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// Accepts `sub` only if it is a UUID (the auth provider's user id format).
    pub fn parse(sub: &str) -> Option<UserId> {
        uuid::Uuid::parse_str(sub)
            .ok()
            .map(|uuid| UserId(uuid.hyphenated().to_string()))
    }

    /// The id itself, for storage keys. Never log it: log [`UserId::hash`].
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stable pseudonym of the id (16 hex chars of its SHA-256) for logs and audit lines.
    pub fn hash(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }

    /// The full SHA-256 of the id, hex: the key of the user's tombstone after erasure.
    pub fn full_hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// Debug shows the pseudonym only, so a stray `{:?}` cannot leak the id into logs.
impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId(#{})", self.hash())
    }
}

/// The body of `GET /v1/user/status`: exactly the six documented fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserStatus {
    /// True while the Stripe status is `active` or `trialing`.
    pub has_subscription: bool,
    /// `free` or the configured plan name.
    pub current_plan: String,
    /// Remaining paid message credits.
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
            has_subscription: is_subscribed(&record.subscription_status),
            current_plan: record.plan.clone(),
            credits_remaining: record.credits_remaining,
            subscription_status: record.subscription_status.clone(),
            free_messages_remaining: record.free_messages_remaining,
            free_messages_total: record.free_messages_total,
        }
    }
}

/// Whether a Stripe subscription status entitles the user to the paid plan.
pub fn is_subscribed(status: &str) -> bool {
    matches!(status, "active" | "trialing")
}

/// The user's record, created on first sight as a free account. Concurrent first calls create
/// exactly one record: the losers of the conditional put read the winner's. An erased account
/// (tombstoned) gets 410 and nothing is created; the tombstone is only read when no record exists.
pub async fn load_or_create(
    store: &dyn Store,
    user: &UserId,
    rules: &Rules,
) -> Result<UserRecord, ApiError> {
    if let Some(record) = store.get_user(user).await? {
        return Ok(record);
    }
    if store.tombstone(user).await?.is_some() {
        return Err(ApiError::AccountDeleted);
    }
    let fresh = UserRecord::new_free(user.clone(), rules.free_messages, crate::unix_now());
    if store.create_user(&fresh).await? {
        tracing::info!(user = %user.hash(), "user record created");
        return Ok(fresh);
    }
    store.get_user(user).await?.ok_or_else(|| {
        tracing::error!(user = %user.hash(), "record vanished after a lost create race");
        ApiError::StorageUnavailable
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_must_be_uuids_and_are_normalised() {
        let id = UserId::parse("4B3C1D7E-8F1A-4C1E-9A55-2F0E2D9C1A10").unwrap();
        assert_eq!(id.as_str(), "4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10");
        for bad in [
            "",
            "admin",
            "../4b3c1d7e",
            "USER#4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10",
        ] {
            assert!(UserId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_and_hash_never_show_the_raw_id() {
        let id = UserId::parse("4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10").unwrap();
        assert!(!format!("{id:?}").contains("4b3c1d7e"));
        assert_eq!(id.hash().len(), 16);
        assert_ne!(
            id.hash(),
            UserId::parse("00000000-0000-4000-8000-000000000000")
                .unwrap()
                .hash()
        );
    }

    #[test]
    fn only_active_and_trialing_count_as_subscribed() {
        assert!(is_subscribed("active") && is_subscribed("trialing"));
        for status in [
            "none",
            "past_due",
            "canceled",
            "incomplete",
            "unpaid",
            "paused",
        ] {
            assert!(!is_subscribed(status), "{status}");
        }
    }
}
