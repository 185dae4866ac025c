//! [`Profiles`] on DynamoDB: the profile item, written only by conditional puts and updates.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::codec::{PENDING_PACKS, from_item, pending_pack_item, to_item};
use super::keys::{DUE, DUE_AT, DUE_SHARD, PK, n, profile_key, s};
use super::{DynamoStore, cancellation_code, conditional, store_error};
use crate::domain::reconcile::RECHECK_AFTER_SECS;
use crate::domain::{EntryKind, OpenCheckout, PendingPack, SubscriptionView, UserId, UserRecord};
use crate::store::{Profiles, StoreError};

impl DynamoStore {
    /// After a conditional update of the profile of `user`: `Ok(true)` if it was written; if its
    /// condition failed, `Ok(false)` (nothing written) when the record exists, `NoRecord` when not.
    async fn profile_updated(&self, user: &UserId, written: bool) -> Result<bool, StoreError> {
        if written {
            return Ok(true);
        }
        match self.get_user(user).await? {
            Some(_) => Ok(false),
            None => Err(StoreError::NoRecord),
        }
    }

    /// After a write to the record of `user` that its condition refused, with the record's
    /// erasure mark in that condition: `Erasing` once the erasure began, `NoRecord` without a
    /// record, else `Ok(false)` (the rest of the condition failed; nothing written).
    pub(super) async fn refused_unless_erasing(&self, user: &UserId) -> Result<bool, StoreError> {
        match self.get_user(user).await? {
            Some(record) if record.erasing_since.is_some() => Err(StoreError::Erasing),
            Some(_) => Ok(false),
            None => Err(StoreError::NoRecord),
        }
    }
}

#[async_trait]
impl Profiles for DynamoStore {
    async fn get_user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let item = self.get_item(profile_key(user)).await?;
        item.as_ref().map(|item| from_item(user, item)).transpose()
    }

    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn apply_subscription(
        &self,
        user: &UserId,
        view: &SubscriptionView,
    ) -> Result<bool, StoreError> {
        let attributes = [
            ("plan", Some(s(&view.plan))),
            ("subscription_status", Some(s(view.status.as_str()))),
            (
                "cancel_at_period_end",
                Some(AttributeValue::Bool(view.cancel_at_period_end)),
            ),
            ("synced_at_ms", Some(n(view.observed_at_ms))),
            ("status_since", Some(n(view.status_since))),
            ("subscription_id", view.subscription_id.as_deref().map(s)),
            ("price_id", view.price_id.as_deref().map(s)),
            ("current_period_end", view.current_period_end.map(n)),
            (DUE_SHARD, view.next_check.map(|_| s(DUE))),
            (DUE_AT, view.next_check.map(n)),
            ("charges_listed_at", view.charges_listed_at.map(n)),
        ];
        // Every attribute goes through a `#name` placeholder: some (`plan`) are reserved words.
        let (mut set, mut remove) = (Vec::new(), Vec::new());
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        for (attribute, value) in attributes {
            names.insert(format!("#{attribute}"), attribute.to_owned());
            match value {
                Some(value) => {
                    set.push(format!("#{attribute} = :{attribute}"));
                    values.insert(format!(":{attribute}"), value);
                }
                None => remove.push(format!("#{attribute}")),
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let condition = "attribute_exists(pk) AND (attribute_not_exists(#synced_at_ms) \
             OR #synced_at_ms < :synced_at_ms)";
        let record = match view.status.ends_paid_credits() {
            true => Some(self.get_user(user).await?.ok_or(StoreError::NoRecord)?),
            false => None,
        };
        // The view alone: the credits untouched (an erasure deletes them with their entries,
        // so an ending there writes none).
        let expression = expression.as_str();
        let view_only = |names, values| async move {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(profile_key(user)))
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send()
                .await;
            let written = conditional("UpdateItem", result)?;
            self.profile_updated(user, written).await
        };
        let Some(record) = record.filter(|record| record.erasing_since.is_none()) else {
            return view_only(names, values).await;
        };
        // An ended subscription ends the paid credits left, with their entry: decided on a read,
        // written only if the balance is still the one read.
        names.insert("#credits".to_owned(), "credits_remaining".to_owned());
        let mut read = Some(record);
        for pause in crate::race_pauses() {
            tokio::time::sleep(pause).await;
            let record = match read.take() {
                Some(record) => record,
                None => self.get_user(user).await?.ok_or(StoreError::NoRecord)?,
            };
            if record.synced_at_ms >= view.observed_at_ms {
                return Ok(false);
            }
            if record.erasing_since.is_some() {
                return view_only(names, values).await;
            }
            let cause = view
                .subscription_id
                .as_ref()
                .or(record.subscription_id.as_ref());
            let cause = cause.map_or("subscription", String::as_str);
            let ending =
                record.paid_credits_end(EntryKind::SubscriptionEnded, cause, crate::unix_now());
            let mut values = values.clone();
            values.insert(":before".to_owned(), n(record.credits_remaining));
            values.insert(":no_credits".to_owned(), n(0));
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(profile_key(user)))
                .update_expression(expression.replacen("SET ", "SET #credits = :no_credits, ", 1))
                .condition_expression(format!(
                    "{condition} AND #credits = :before AND attribute_not_exists(erasing_since)"
                ))
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(|_| StoreError::Unavailable("build Update".into()))?;
            let mut items = vec![TransactWriteItem::builder().update(update).build()];
            if let Some(posting) = &ending {
                items.push(self.put_entry(user, &posting.entry)?);
            }
            match self.transact(items).await {
                Ok(()) => return Ok(true),
                // A newer view, or the balance moved: read again.
                Err(err) if cancellation_code(&err, 0) == Some("ConditionalCheckFailed") => {}
                Err(err) => return Err(store_error("TransactWriteItems", err)),
            }
        }
        Err(StoreError::Unavailable(
            "the view kept racing other changes".into(),
        ))
    }

    async fn set_open_checkout(
        &self,
        user: &UserId,
        previous: Option<&str>,
        session: Option<&OpenCheckout>,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)));
        let update = match previous {
            Some(previous) => update
                .condition_expression(
                    "attribute_exists(pk) AND attribute_not_exists(erasing_since) \
                     AND open_checkout_session = :previous",
                )
                .expression_attribute_values(":previous", s(previous)),
            None => update.condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(erasing_since) \
                 AND attribute_not_exists(open_checkout_session)",
            ),
        };
        let update = match session {
            // A session that may be paid makes the user due within the hour, so a lost
            // `checkout.session.completed` heals even for a user who had left the index.
            Some(session) => update
                .update_expression(
                    "SET open_checkout_session = :id, open_checkout_url = :url, \
                     open_checkout_expires = :expires, open_checkout_price = :price, \
                     due_shard = :due, due_at = :soon",
                )
                .expression_attribute_values(":due", s(DUE))
                .expression_attribute_values(":soon", n(crate::unix_now() + RECHECK_AFTER_SECS))
                .expression_attribute_values(":price", s(&session.price_id))
                .expression_attribute_values(":id", s(&session.id))
                .expression_attribute_values(":url", s(&session.url))
                .expression_attribute_values(":expires", n(session.expires_at)),
            None => update.update_expression(
                "REMOVE open_checkout_session, open_checkout_url, open_checkout_expires, \
                 open_checkout_price",
            ),
        };
        if conditional("UpdateItem", update.send().await)? {
            return Ok(true);
        }
        self.refused_unless_erasing(user).await
    }

    async fn add_pending_pack(
        &self,
        user: &UserId,
        pending: &PendingPack,
    ) -> Result<(), StoreError> {
        let value = AttributeValue::M(pending_pack_item(pending));
        // A nested path can be set only in a map that exists: into the map, or the map itself.
        for into_map in [true, false, true] {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(profile_key(user)))
                .expression_attribute_names("#pending", PENDING_PACKS)
                .expression_attribute_names("#shard", DUE_SHARD)
                .expression_attribute_names("#due", DUE_AT)
                .expression_attribute_values(":due_shard", s(DUE))
                .expression_attribute_values(":soon", n(crate::unix_now() + RECHECK_AFTER_SECS));
            let ready = "attribute_exists(pk) AND attribute_not_exists(erasing_since) \
                 AND attribute_exists(stripe_customer_id)";
            let update = match into_map {
                true => update
                    .update_expression(
                        "SET #pending.#session = :pending, #shard = :due_shard, #due = :soon",
                    )
                    .condition_expression(format!("{ready} AND attribute_exists(#pending)"))
                    .expression_attribute_names("#session", &pending.session_id)
                    .expression_attribute_values(":pending", value.clone()),
                false => update
                    .update_expression("SET #pending = :map, #shard = :due_shard, #due = :soon")
                    .condition_expression(format!("{ready} AND attribute_not_exists(#pending)"))
                    .expression_attribute_values(
                        ":map",
                        AttributeValue::M(HashMap::from([(
                            pending.session_id.clone(),
                            value.clone(),
                        )])),
                    ),
            };
            if conditional("UpdateItem", update.send().await)? {
                return Ok(());
            }
            match self.get_user(user).await? {
                Some(record) if record.erasing_since.is_some() => return Err(StoreError::Erasing),
                Some(record) if record.stripe_customer_id.is_some() => {}
                _ => return Err(StoreError::NoRecord),
            }
        }
        Err(StoreError::Unavailable("pending packs kept moving".into()))
    }

    async fn drop_pending_pack(&self, user: &UserId, session: &str) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .update_expression("REMOVE #pending.#session")
            .condition_expression("attribute_exists(#pending)")
            .expression_attribute_names("#pending", PENDING_PACKS)
            .expression_attribute_names("#session", session);
        conditional("UpdateItem", update.send().await).map(drop)
    }
}
