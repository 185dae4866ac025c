//! [`Ledger`] on DynamoDB: each debit is a debit item (`DEBIT#<id>`, expiring after the
//! retention period, recording the balances, the amounts and the paid period it took from)
//! written in one transaction with the balances' conditional decrements and each one's day's
//! usage entry; a refund marks the item, gives the amounts back and adds to the days' refund
//! entries in another (the plan's credits only within the debit's period); every other change
//! is a posting (`entries.rs`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::entries::Move;
use super::keys::{Item, PK, SK, TTL, balance_attribute, debit_key, n, s};
use super::{DynamoStore, cancellation_code, store_error};
use crate::domain::{
    Balance, Charge, DEBIT_RETENTION_SECS, DailyStep, DebitId, DebitOutcome, Entry, EntryKey,
    EntryKind, Period, PostOutcome, Posting, Purchase, RefundOutcome, Take, UserId,
};
use crate::store::{Ledger, Profiles, StoreError};

/// Marks a debit item refunded (`:lapsed`: with nothing given back), under [`NOT_REFUNDED`].
const MARK_REFUNDED: &str = "SET refunded_at = :now, lapsed = :lapsed";
const NOT_REFUNDED: &str = "attribute_exists(pk) AND attribute_not_exists(refunded_at)";

/// The attributes of a debit item naming the balance and the amount of its first take, and of
/// its second (a message paid from two balances).
const TAKE_ATTRIBUTES: [(&str, &str); 2] = [("balance", "amount"), ("then_balance", "then_amount")];

/// What a debit item took, balance by balance (items written before prices took 1; before
/// refunds, nothing recorded).
pub(super) fn recorded_takes(debit: &Item) -> Vec<(Balance, i64)> {
    let number = |name: &str| debit.get(name).and_then(|v| v.as_n().ok()?.parse().ok());
    TAKE_ATTRIBUTES
        .iter()
        .map_while(|(balance, amount)| {
            let name = debit.get(*balance).and_then(|v| v.as_s().ok())?;
            let balance = Balance::ALL
                .into_iter()
                .find(|balance| balance_attribute(*balance) == name)?;
            Some((balance, number(amount).unwrap_or(1)))
        })
        .collect()
}

/// The paid period a debit item records; items written before periods existed record none.
fn recorded_period(debit: &Item) -> Option<Period> {
    let value = debit.get("period").and_then(|v| v.as_n().ok())?;
    value.parse().ok()
}

/// The profile changes of `takes` (a debit's, or a refund's: `sign` 1 gives back).
fn moves(takes: &[Take], sign: i64) -> Vec<Move> {
    let moves = takes.iter().map(|take| Move {
        balance: take.balance,
        before: take.before,
        after: take.before + sign * take.amount,
    });
    moves.collect()
}

#[async_trait]
impl Ledger for DynamoStore {
    async fn debit(&self, user: &UserId, charge: &Charge<'_>) -> Result<DebitOutcome, StoreError> {
        if !charge.is_payable() {
            return self.charged_before(user, charge.debit_id).await;
        }
        // One transaction: the debit item of this id (new, or the transaction fails), the
        // balances' decrements if they are still what was read, and each balance's day's usage
        // entry. A retry of a charged debit fails on the debit item. A refunded item is
        // replaced: the message is retried, and charged anew.
        let mut item = debit_key(user, charge.debit_id.as_str());
        item.extend([
            ("entity".to_owned(), s("debit")),
            ("period".to_owned(), n(charge.period)),
            // Names this charge of the id: a refund gives back only the charge it read.
            (
                "charge".to_owned(),
                s(&uuid::Uuid::new_v4().simple().to_string()),
            ),
            (TTL.to_owned(), n(charge.at + DEBIT_RETENTION_SECS)),
        ]);
        for ((balance, amount), take) in TAKE_ATTRIBUTES.iter().zip(charge.takes) {
            item.insert((*balance).to_owned(), s(balance_attribute(take.balance)));
            item.insert((*amount).to_owned(), n(take.amount));
        }
        let debit = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR attribute_exists(refunded_at)")
            .build()
            .map_err(|_| StoreError::Unavailable("build Put".into()))?;
        // Never once the user's erasure began: its items may be gone already. A grant
        // meanwhile refuses a debit of the plan's credits (the caller reads again).
        let (decrement, expression) = self.set_balances(
            user,
            charge.status_seen,
            charge.period,
            &moves(charge.takes, -1),
            "",
        );
        let decrement = decrement
            .update_expression(expression)
            .build()
            .map_err(|_| StoreError::Unavailable("build Update".into()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(debit).build(),
            TransactWriteItem::builder().update(decrement).build(),
        ];
        for step in DailyStep::of_message(EntryKind::Usage, charge.takes, charge.at) {
            items.push(self.add_to_day(user, &step)?);
        }
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
        let taken = recorded_takes(&debit);
        if taken.is_empty() {
            return Ok(RefundOutcome::NotCharged);
        }
        let period = recorded_period(&debit);
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
            let back = record.refund_of(&taken, period);
            if back.is_empty() {
                // Nothing to give back; the debit counts as refunded.
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
            // Not onto a record being erased: its items may be gone already.
            let status = &record.subscription_status;
            let (give_back, expression) = self.set_balances(
                user,
                status,
                record.last_grant_created,
                &moves(&back, 1),
                "",
            );
            let give_back = give_back
                .update_expression(expression)
                .build()
                .map_err(|_| StoreError::Unavailable("build Update".into()))?;
            let mut items = vec![
                TransactWriteItem::builder().update(mark.clone()).build(),
                TransactWriteItem::builder().update(give_back).build(),
            ];
            let now = crate::unix_now();
            for step in DailyStep::of_message(EntryKind::MessageRefund, &back, now) {
                items.push(self.add_to_day(user, &step)?);
            }
            let err = match self.transact(items).await {
                Ok(()) => return Ok(RefundOutcome::Refunded),
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

    async fn purchases(&self, user: &UserId) -> Result<Vec<Purchase>, StoreError> {
        self.purchase_items(user).await
    }
}

impl DynamoStore {
    /// The answer to a debit that cannot be applied as asked: charged before if this id's
    /// debit stands (a retry whose reply was lost), else refused; nothing is written.
    async fn charged_before(
        &self,
        user: &UserId,
        debit_id: &DebitId,
    ) -> Result<DebitOutcome, StoreError> {
        let debit = self.get_item(debit_key(user, debit_id.as_str())).await?;
        Ok(match debit {
            Some(debit) if !debit.contains_key("refunded_at") => DebitOutcome::AlreadyCharged,
            _ => DebitOutcome::Refused,
        })
    }
}
