//! [`Ledger`] on DynamoDB: each debit is a debit item (`DEBIT#<id>`, expiring after the
//! retention period, recording the balance, the amount and the paid period it took from) written in one
//! transaction with the balance's conditional decrement and the day's usage entry; a refund
//! marks the item, gives the amount back and adds to the day's refund entry in another, only
//! within the debit's period; every other change is a posting (`entries.rs`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::keys::{Item, PK, SK, TTL, balance_attribute, debit_key, n, s};
use super::{DynamoStore, cancellation_code, store_error};
use crate::domain::{
    Balance, Charge, DEBIT_RETENTION_SECS, DailyStep, DebitId, DebitOutcome, Entry, EntryKey,
    EntryKind, Period, PostOutcome, Posting, RefundOutcome, Seen, UserId,
};
use crate::store::{Ledger, Profiles, StoreError};

/// The balance a debit item records; items written before refunds existed record none.
fn recorded_balance(debit: &Item) -> Option<Balance> {
    let name = debit.get("balance").and_then(|v| v.as_s().ok())?;
    Balance::ALL
        .into_iter()
        .find(|balance| balance_attribute(*balance) == name)
}

/// Marks a debit item refunded (`:lapsed`: with nothing given back), under [`NOT_REFUNDED`].
const MARK_REFUNDED: &str = "SET refunded_at = :now, lapsed = :lapsed";
const NOT_REFUNDED: &str = "attribute_exists(pk) AND attribute_not_exists(refunded_at)";

/// The paid period a debit item records; items written before periods existed record none.
fn recorded_period(debit: &Item) -> Option<Period> {
    let value = debit.get("period").and_then(|v| v.as_n().ok())?;
    value.parse().ok()
}

/// What a debit item took (items written before prices took 1).
fn recorded_price(debit: &Item) -> i64 {
    let value = debit.get("amount").and_then(|v| v.as_n().ok());
    value.and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// What the debit of `charge` decided on.
fn seen(charge: &Charge<'_>) -> Seen {
    Seen {
        status: charge.status_seen.clone(),
        period: charge.period,
        before: charge.before,
    }
}

#[async_trait]
impl Ledger for DynamoStore {
    async fn debit(&self, user: &UserId, charge: &Charge<'_>) -> Result<DebitOutcome, StoreError> {
        if charge.price < 1 {
            return Ok(DebitOutcome::Refused);
        }
        // One transaction: the debit item of this id (new, or the transaction fails), the
        // balance's decrement if it is still what was read, and the day's usage entry. A retry
        // of a charged debit fails on the debit item. A refunded item is replaced: the message
        // is retried, and charged anew.
        let mut item = debit_key(user, charge.debit_id.as_str());
        item.extend([
            ("entity".to_owned(), s("debit")),
            ("balance".to_owned(), s(balance_attribute(charge.balance))),
            ("period".to_owned(), n(charge.period)),
            ("amount".to_owned(), n(charge.price)),
            // Names this charge of the id: a refund gives back only the charge it read.
            (
                "charge".to_owned(),
                s(&uuid::Uuid::new_v4().simple().to_string()),
            ),
            (TTL.to_owned(), n(charge.at + DEBIT_RETENTION_SECS)),
        ]);
        let debit = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR attribute_exists(refunded_at)")
            .build()
            .map_err(|_| StoreError::Unavailable("build Put".into()))?;
        let step = DailyStep::new(
            EntryKind::Usage,
            charge.balance,
            charge.price,
            charge.before,
            charge.at,
        );
        // Never once the user's erasure began: its items may be gone already. A grant
        // meanwhile refuses a credit's debit (the caller reads again).
        // A balance below the price fails this item (nothing is taken), after the debit item
        // has answered whether this id was charged before.
        let decrement = self
            .set_balance(
                user,
                charge.balance,
                &seen(charge),
                step.balance_after,
                "#balance >= :price",
            )
            .expression_attribute_values(":price", n(charge.price))
            .update_expression("SET #balance = :after")
            .build()
            .map_err(|_| StoreError::Unavailable("build Update".into()))?;
        let items = vec![
            TransactWriteItem::builder().put(debit).build(),
            TransactWriteItem::builder().update(decrement).build(),
            self.add_to_day(user, &step)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(DebitOutcome::Charged),
            Err(err) => match (cancellation_code(&err, 0), cancellation_code(&err, 1)) {
                (Some("ConditionalCheckFailed"), _) => Ok(DebitOutcome::AlreadyCharged),
                (_, Some("ConditionalCheckFailed")) => Ok(DebitOutcome::Refused),
                // Conflicts beyond the retries: nothing was written; the caller reads again.
                _ if super::is_transaction_conflict(&err) => Ok(DebitOutcome::Refused),
                _ => Err(store_error("TransactWriteItems", err)),
            },
        }
    }

    async fn refund(&self, user: &UserId, debit_id: &DebitId) -> Result<RefundOutcome, StoreError> {
        let Some(debit) = self.get_item(debit_key(user, debit_id.as_str())).await? else {
            return Ok(RefundOutcome::NotCharged);
        };
        if debit.contains_key("refunded_at") {
            return Ok(RefundOutcome::AlreadyRefunded);
        }
        let Some(balance) = recorded_balance(&debit) else {
            return Ok(RefundOutcome::NotCharged);
        };
        let period = recorded_period(&debit);
        let price = recorded_price(&debit);
        // The charge read: a re-debit of the id after a concurrent refund is another charge,
        // which this refund must not touch (items from before charges were named have none).
        let charge = debit.get("charge").cloned();
        let key: Item = debit
            .into_iter()
            .filter(|(name, _)| name == PK || name == SK)
            .collect();
        let same_charge = match charge {
            Some(_) => "charge = :charge",
            None => "attribute_not_exists(charge)",
        };
        let mark_condition = format!("{NOT_REFUNDED} AND {same_charge}");
        let mut values = HashMap::from([
            (":now".to_owned(), n(crate::unix_now())),
            (":lapsed".to_owned(), AttributeValue::Bool(false)),
        ]);
        values.extend(charge.map(|charge| (":charge".to_owned(), charge)));
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression(MARK_REFUNDED)
            .condition_expression(&mark_condition)
            .set_expression_attribute_values(Some(values.clone()))
            .build()
            .map_err(|_| StoreError::Unavailable("build Update".into()))?;
        for pause in crate::race_pauses() {
            tokio::time::sleep(pause).await;
            let Some(record) = self.get_user(user).await? else {
                return Ok(RefundOutcome::NotCharged);
            };
            if record.refund_lapses(balance, period) {
                // The debit's period ended: nothing to give back; the debit counts as refunded.
                values.insert(":lapsed".to_owned(), AttributeValue::Bool(true));
                let lapse = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression(MARK_REFUNDED)
                    .condition_expression(&mark_condition)
                    .set_expression_attribute_values(Some(values))
                    .send()
                    .await;
                return match super::conditional("UpdateItem", lapse)? {
                    true => Ok(RefundOutcome::Lapsed),
                    false => Ok(RefundOutcome::AlreadyRefunded),
                };
            }
            let seen = Seen {
                status: record.subscription_status.clone(),
                period: record.last_grant_created,
                before: record.balance(balance),
            };
            let step = DailyStep::new(
                EntryKind::MessageRefund,
                balance,
                price,
                seen.before,
                crate::unix_now(),
            );
            // Not onto a record being erased: its items may be gone already.
            let give_back = self
                .set_balance(user, balance, &seen, step.balance_after, "")
                .update_expression("SET #balance = :after")
                .build()
                .map_err(|_| StoreError::Unavailable("build Update".into()))?;
            let items = vec![
                TransactWriteItem::builder().update(mark.clone()).build(),
                TransactWriteItem::builder().update(give_back).build(),
                self.add_to_day(user, &step)?,
            ];
            let err = match self.transact(items).await {
                Ok(()) => return Ok(RefundOutcome::Refunded(balance)),
                Err(err) => err,
            };
            match (cancellation_code(&err, 0), cancellation_code(&err, 1)) {
                // A concurrent refund marked it first (and the id may have been charged anew
                // since), or the item expired meanwhile.
                (Some("ConditionalCheckFailed"), _) => return Ok(RefundOutcome::AlreadyRefunded),
                // The record moved (or its erasure began): read it again.
                (_, Some("ConditionalCheckFailed")) => {
                    if record.erasing_since.is_some() {
                        return Err(StoreError::Erasing);
                    }
                }
                _ if super::is_transaction_conflict(&err) => {}
                _ => return Err(store_error("TransactWriteItems", err)),
            }
        }
        Err(StoreError::Unavailable(
            "refund kept racing other changes".into(),
        ))
    }

    async fn post(&self, user: &UserId, posting: &Posting) -> Result<PostOutcome, StoreError> {
        self.post_entry(user, posting).await
    }

    async fn entries(
        &self,
        user: &UserId,
        after: Option<&EntryKey>,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        self.entry_page(user, after, limit).await
    }
}
