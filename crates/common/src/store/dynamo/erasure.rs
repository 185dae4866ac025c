//! [`Erasures`] on DynamoDB: the tombstone (keyed by a hash of the id), and the deletion of a
//! user's partition page by page, in batches.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::{
    Item, PK, PROFILE, SK, TTL, customer_key, n, profile_key, s, tombstone_key, user_pk,
};
use super::{DynamoStore, store_error};
use crate::domain::{ErasureStage, Tombstone, UserId, UserRecord};
use crate::store::{Erasures, StoreError};

/// Items per `BatchWriteItem` (DynamoDB's limit).
const BATCH_SIZE: usize = 25;
/// Keys per `Query` page of an erasure: each page is deleted before the next is read, and a
/// small page keeps every call short, well inside the per-attempt timeout, whatever the user owns.
const ERASURE_PAGE_ITEMS: i32 = 250;

#[async_trait]
impl Erasures for DynamoStore {
    async fn tombstone(&self, user: &UserId) -> Result<Option<Tombstone>, StoreError> {
        let Some(item) = self.get_item(tombstone_key(user)).await? else {
            return Ok(None);
        };
        let number = |name: &str| {
            let n = item.get(name).and_then(|v| v.as_n().ok());
            n.and_then(|n| n.parse::<i64>().ok())
        };
        let stage = item.get("stage").and_then(|v| v.as_s().ok());
        let corrupt = || StoreError::Corrupt("tombstone".to_owned());
        Ok(Some(Tombstone {
            erased_at: number("deleted_at").ok_or_else(corrupt)?,
            expires_at: number(TTL).ok_or_else(corrupt)?,
            stage: ErasureStage::parse(stage.map(String::as_str)).ok_or_else(corrupt)?,
        }))
    }

    async fn mark_erasing(&self, user: &UserId, at: i64) -> Result<(), StoreError> {
        for _ in 0..2 {
            let marked = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(profile_key(user)))
                .update_expression("SET erasing_since = if_not_exists(erasing_since, :at)")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":at", n(at))
                .send()
                .await;
            if super::conditional("UpdateItem", marked)? {
                return Ok(());
            }
            // No record yet: a marked one, so that a first request racing the erasure (another
            // device) finds the mark instead of creating a record the erasure never saw.
            let mut stub = UserRecord::new_free(user.clone(), 0, at);
            stub.erasing_since = Some(at);
            let created = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(super::codec::to_item(&stub)))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            if super::conditional("PutItem", created)? {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(
            "the record kept changing under the erasure's mark".into(),
        ))
    }

    async fn write_tombstone(
        &self,
        user: &UserId,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        let mut item = tombstone_key(user);
        item.extend([
            ("entity".to_owned(), s("tombstone")),
            ("deleted_at".to_owned(), n(tombstone.erased_at)),
            (TTL.to_owned(), n(tombstone.expires_at)),
            ("stage".to_owned(), s(tombstone.stage.as_str())),
        ]);
        self.put_item(item).await
    }

    async fn delete_owned_items(&self, user: &UserId) -> Result<usize, StoreError> {
        let mut deleted = 0;
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(&user_pk(user)))
                .consistent_read(true)
                .limit(ERASURE_PAGE_ITEMS)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| store_error("Query", err))?;
            let keys: Vec<Item> = page
                .items
                .unwrap_or_default()
                .into_iter()
                .filter(
                    |item| !matches!(item.get(SK), Some(AttributeValue::S(sk)) if sk == PROFILE),
                )
                .collect();
            for batch in keys.chunks(BATCH_SIZE) {
                self.delete_batch(batch.to_vec()).await?;
                deleted += batch.len();
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(deleted);
            }
        }
    }

    async fn delete_customer_link(&self, customer: &str) -> Result<(), StoreError> {
        self.delete_item(customer_key(customer)).await
    }

    async fn delete_profile(&self, user: &UserId) -> Result<(), StoreError> {
        self.delete_item(profile_key(user)).await
    }
}
