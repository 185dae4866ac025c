//! [`CallLimits`] on DynamoDB: one counter item per user and window (`LIMIT#<window start>`,
//! under the user's partition, so an erasure takes it), incremented by a conditional `ADD` and
//! expired by TTL.

use async_trait::async_trait;

use super::keys::{TTL, limit_key, n};
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
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(limit_key(user, window)))
            .update_expression("ADD calls :one SET entity = :entity, #ttl = :ttl")
            .condition_expression("attribute_not_exists(calls) OR calls < :limit")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n(expires_at))
            .expression_attribute_values(":entity", super::keys::s("limit"))
            .send()
            .await;
        conditional("UpdateItem", result)
    }
}
