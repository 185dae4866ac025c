//! [`CallLimits`] on DynamoDB: the counter lives on the profile (`stripe_window`, the window's
//! start, and `stripe_calls` in it), so it needs no item of its own, goes with the erasure, and
//! is refused once the erasure began. In a window already begun one conditional increment; the
//! first request of a window one more conditional write, which starts it.

use async_trait::async_trait;

use super::keys::{n, profile_key};
use super::{DynamoStore, conditional};
use crate::domain::UserId;
use crate::store::{CallLimits, StoreError};

#[async_trait]
impl CallLimits for DynamoStore {
    async fn count_stripe_call(
        &self,
        user: &UserId,
        window: i64,
        limit: i64,
    ) -> Result<bool, StoreError> {
        // Twice: a concurrent request may start the window between this one's two writes.
        for _ in 0..2 {
            if self.increment(user, window, limit).await? {
                return Ok(true);
            }
            if self.start_window(user, window).await? {
                return Ok(limit >= 1);
            }
        }
        self.refused_unless_erasing(user).await
    }
}

/// Neither write touches a record being erased, nor makes one.
const LIVE: &str = "attribute_exists(pk) AND attribute_not_exists(erasing_since)";

impl DynamoStore {
    /// Counts one more call in `window`, if it is the record's window and below `limit`.
    async fn increment(&self, user: &UserId, window: i64, limit: i64) -> Result<bool, StoreError> {
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression("SET stripe_calls = stripe_calls + :one")
            .condition_expression(format!(
                "{LIVE} AND stripe_window = :window AND stripe_calls < :limit"
            ))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":window", n(window))
            .expression_attribute_values(":limit", n(limit))
            .send()
            .await;
        conditional("UpdateItem", counted)
    }

    /// Starts `window` with one call, if the record's window is older (or none).
    async fn start_window(&self, user: &UserId, window: i64) -> Result<bool, StoreError> {
        let started = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression("SET stripe_window = :window, stripe_calls = :one")
            .condition_expression(format!(
                "{LIVE} AND (attribute_not_exists(stripe_window) OR stripe_window < :window)"
            ))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":window", n(window))
            .send()
            .await;
        conditional("UpdateItem", started)
    }
}
