//! [`CustomerLinks`] on DynamoDB: the customer id on the profile and the customer→user mapping
//! item, written together in one transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::keys::{DUE, customer_key, n, profile_key, s};
use super::{DynamoStore, cancellation_code, conditional, store_error};
use crate::domain::reconcile::RECHECK_AFTER_SECS;
use crate::domain::{EntryKind, FREE_PLAN, SubscriptionStatus, UserId};

use crate::store::{CustomerLinks, Profiles, StoreError};

#[async_trait]
impl CustomerLinks for DynamoStore {
    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<String, StoreError> {
        let link_profile = Update::builder()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression(
                "SET stripe_customer_id = :customer, customer_linked_at = if_not_exists(customer_linked_at, :now), \
                 due_shard = :due, due_at = if_not_exists(due_at, :soon)",
            )
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(erasing_since) \
                 AND (attribute_not_exists(stripe_customer_id) OR stripe_customer_id = :customer)",
            )
            .expression_attribute_values(":customer", s(customer))
            .expression_attribute_values(":due", s(DUE))
            .expression_attribute_values(":now", n(crate::unix_now()))
            .expression_attribute_values(":soon", n(crate::unix_now() + RECHECK_AFTER_SECS))
            .build()
            .map_err(|_| StoreError::Unavailable("build Update".into()))?;
        let mut mapping = customer_key(customer);
        mapping.extend([
            ("entity".to_owned(), s("customer")),
            ("user_id".to_owned(), s(user.as_str())),
        ]);
        let put_mapping = Put::builder()
            .table_name(&self.table)
            .set_item(Some(mapping))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", s(user.as_str()))
            .build()
            .map_err(|_| StoreError::Unavailable("build Put".into()))?;
        let items = vec![
            TransactWriteItem::builder().update(link_profile).build(),
            TransactWriteItem::builder().put(put_mapping).build(),
        ];
        match self.transact(items).await {
            Ok(_) => Ok(customer.to_owned()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                // A condition failed: the user is being erased, a customer is linked already
                // (this one, by a twin request, or another: either way the one that stands), or
                // there is no record, or the mapping belongs to someone else.
                let record = self.get_user(user).await?.ok_or(StoreError::NoRecord)?;
                if record.erasing_since.is_some() {
                    return Err(StoreError::Erasing);
                }
                match record.stripe_customer_id {
                    Some(existing) if existing != customer => Ok(existing),
                    Some(_) if self.user_for_customer(customer).await?.as_ref() == Some(user) => {
                        Ok(customer.to_owned())
                    }
                    _ => Err(StoreError::Corrupt(
                        "customer is linked to another user".into(),
                    )),
                }
            }
            Err(err) => Err(store_error("TransactWriteItems", err)),
        }
    }

    async fn expect_customer(&self, user: &UserId) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression("SET stripe_customer_possible = :yes")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(erasing_since)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        if conditional("UpdateItem", result)? {
            return Ok(());
        }
        self.refused_unless_erasing(user).await.map(drop)
    }

    async fn unlink_customer(&self, user: &UserId, customer: &str) -> Result<(), StoreError> {
        // Only if it is this user's customer; otherwise nothing to forget on the profile. The
        // paid credits end with their entry: decided on a read, written only if the balance is
        // still the one read.
        let mut forgotten = false;
        for pause in crate::race_pauses() {
            tokio::time::sleep(pause).await;
            let Some(record) = self.get_user(user).await? else {
                forgotten = true;
                break;
            };
            if record.stripe_customer_id.as_deref() != Some(customer)
                || record.erasing_since.is_some()
            {
                forgotten = true;
                break;
            }
            let now = crate::unix_now();
            let ending = record.paid_credits_end(EntryKind::CustomerDeleted, customer, now);
            let forget = Update::builder()
                .table_name(&self.table)
                .set_key(Some(profile_key(user)))
                .update_expression(
                    "SET subscription_status = :none, #plan = :free, credits_remaining = :zero, \
                     cancel_at_period_end = :false, synced_at_ms = :now, status_since = :since \
                     REMOVE stripe_customer_id, customer_linked_at, subscription_id, price_id, \
                     current_period_end, due_shard, due_at, charges_listed_at",
                )
                .condition_expression(
                    "stripe_customer_id = :customer AND credits_remaining = :before \
                     AND attribute_not_exists(erasing_since)",
                )
                .expression_attribute_names("#plan", "plan")
                .expression_attribute_values(":none", s(SubscriptionStatus::None.as_str()))
                .expression_attribute_values(":free", s(FREE_PLAN))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":before", n(record.credits_remaining))
                .expression_attribute_values(":false", AttributeValue::Bool(false))
                .expression_attribute_values(":now", n(crate::unix_now_ms()))
                .expression_attribute_values(":since", n(crate::unix_now()))
                .expression_attribute_values(":customer", s(customer))
                .build()
                .map_err(|_| StoreError::Unavailable("build Update".into()))?;
            let mut items = vec![TransactWriteItem::builder().update(forget).build()];
            if let Some(posting) = &ending {
                items.push(self.put_entry(user, &posting.entry)?);
            }
            match self.transact(items).await {
                Ok(()) => {
                    forgotten = true;
                    break;
                }
                // Unlinked meanwhile, or the balance moved: read again.
                Err(err) if cancellation_code(&err, 0) == Some("ConditionalCheckFailed") => {}
                Err(err) => return Err(store_error("TransactWriteItems", err)),
            }
        }
        if !forgotten {
            return Err(StoreError::Unavailable(
                "the unlink kept racing other changes".into(),
            ));
        }
        // Only if the mapping is this user's.
        let unmap = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(customer_key(customer)))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        conditional("DeleteItem", unmap).map(drop)
    }

    async fn user_for_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError> {
        let Some(item) = self.get_item(customer_key(customer)).await? else {
            return Ok(None);
        };
        item.get("user_id")
            .and_then(|id| id.as_s().ok())
            .and_then(|id| UserId::parse(id))
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt("mapping holds no user id".into()))
    }
}
