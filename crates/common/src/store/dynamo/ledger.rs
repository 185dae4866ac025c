//! [`Ledger`] on DynamoDB: each debit is a ledger item (`DEBIT#<id>`, expiring after the
//! retention period, recording the balance and the paid period it took from) written in one
//! transaction with the balance's conditional decrement; a refund marks the item and gives the
//! message back in another, only within the debit's period.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::keys::{Item, PK, SK, TTL, debit_key, n, profile_key, s};
use super::{DynamoStore, cancellation_code, store_error};
use crate::domain::{
    Balance, Charge, DEBIT_RETENTION_SECS, DebitId, DebitOutcome, Period, RefundOutcome,
    SubscriptionStatus, UserId,
};
use crate::store::{Ledger, StoreError};

/// The profile attribute holding `balance`, as the ledger item records it.
fn attribute(balance: Balance) -> &'static str {
    match balance {
        Balance::Credits => "credits_remaining",
        Balance::FreeMessages => "free_messages_remaining",
    }
}

/// The balance a ledger item records; items written before refunds existed record none.
fn recorded_balance(ledger: &Item) -> Option<Balance> {
    let name = ledger.get("balance").and_then(|v| v.as_s().ok())?;
    [Balance::Credits, Balance::FreeMessages]
        .into_iter()
        .find(|balance| attribute(*balance) == name)
}

/// The profile attribute naming the paid period ([`Period`]).
const PERIOD: &str = "last_grant_created";
/// The condition that the profile's paid period is still `:period` (a record from before
/// grants has none: period 0).
const SAME_PERIOD: &str = "(attribute_not_exists(#period) OR #period = :period)";

/// Marks a ledger item refunded (`:lapsed`: with nothing given back), under [`NOT_REFUNDED`].
const MARK_REFUNDED: &str = "SET refunded_at = :now, lapsed = :lapsed";
const NOT_REFUNDED: &str = "attribute_exists(pk) AND attribute_not_exists(refunded_at)";

/// The paid period a ledger item records; items written before periods existed record none.
fn recorded_period(ledger: &Item) -> Option<Period> {
    let value = ledger.get("period").and_then(|v| v.as_n().ok())?;
    value.parse().ok()
}

/// `SET #balance = #balance <op> 1` on the profile of `user` (its condition set by the caller).
fn step_balance(table: &str, user: &UserId, balance: Balance, op: char) -> UpdateBuilder {
    Update::builder()
        .table_name(table)
        .set_key(Some(profile_key(user)))
        .update_expression(format!("SET #balance = #balance {op} :one"))
        .expression_attribute_names("#balance", attribute(balance))
        .expression_attribute_values(":one", n(1))
}

/// The update `builder` describes (it always has its key, expression and table).
fn built(builder: UpdateBuilder) -> Result<Update, StoreError> {
    builder
        .build()
        .map_err(|_| StoreError::Unavailable("build Update".into()))
}

#[async_trait]
impl Ledger for DynamoStore {
    async fn debit(&self, user: &UserId, charge: &Charge<'_>) -> Result<DebitOutcome, StoreError> {
        // One transaction: the ledger item of this debit id (new, or the transaction fails),
        // and the conditional decrement. A retry of a charged debit fails on the ledger item.
        // A refunded item is replaced: the message is retried, and charged anew.
        let mut item = debit_key(user, charge.debit_id.as_str());
        item.extend([
            ("entity".to_owned(), s("debit")),
            ("balance".to_owned(), s(attribute(charge.balance))),
            ("period".to_owned(), n(charge.period)),
            // Names this charge of the id: a refund gives back only the charge it read.
            (
                "charge".to_owned(),
                s(&uuid::Uuid::new_v4().simple().to_string()),
            ),
            (TTL.to_owned(), n(charge.at + DEBIT_RETENTION_SECS)),
        ]);
        let ledger = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR attribute_exists(refunded_at)")
            .build()
            .map_err(|_| StoreError::Unavailable("build Put".into()))?;
        // Never once the user's erasure began: its items may be gone already.
        let mut condition = "attribute_exists(pk) AND attribute_not_exists(erasing_since) \
             AND #balance > :zero AND #status = :seen"
            .to_owned();
        let mut decrement = step_balance(&self.table, user, charge.balance, '-')
            .expression_attribute_names("#status", "subscription_status")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":seen", s(charge.status_seen.as_str()));
        if charge.balance == Balance::Credits {
            // A credit of the period the caller read: a grant meanwhile refuses it (re-read).
            condition.push_str(&format!(" AND {SAME_PERIOD}"));
            decrement = decrement
                .expression_attribute_names("#period", PERIOD)
                .expression_attribute_values(":period", n(charge.period));
        }
        let decrement = decrement.condition_expression(condition);
        let items = vec![
            TransactWriteItem::builder().put(ledger).build(),
            TransactWriteItem::builder()
                .update(built(decrement)?)
                .build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(DebitOutcome::Charged),
            Err(err) => match (cancellation_code(&err, 0), cancellation_code(&err, 1)) {
                (Some("ConditionalCheckFailed"), _) => Ok(DebitOutcome::AlreadyCharged),
                (_, Some("ConditionalCheckFailed")) => Ok(DebitOutcome::Refused),
                // Conflicts beyond the retries: nothing was written; a 503 to retry.
                _ => Err(store_error("TransactWriteItems", err)),
            },
        }
    }

    async fn refund(&self, user: &UserId, debit_id: &DebitId) -> Result<RefundOutcome, StoreError> {
        let Some(ledger) = self.get_item(debit_key(user, debit_id.as_str())).await? else {
            return Ok(RefundOutcome::NotCharged);
        };
        if ledger.contains_key("refunded_at") {
            return Ok(RefundOutcome::AlreadyRefunded);
        }
        let Some(balance) = recorded_balance(&ledger) else {
            return Ok(RefundOutcome::NotCharged);
        };
        let period = recorded_period(&ledger);
        // The charge read: a re-debit of the id after a concurrent refund is another charge,
        // which this refund must not touch (items from before charges were named have none).
        let charge = ledger.get("charge").cloned();
        let key: Item = ledger
            .into_iter()
            .filter(|(name, _)| name == PK || name == SK)
            .collect();
        let same_charge = match charge {
            Some(_) => "charge = :charge",
            None => "attribute_not_exists(charge)",
        };
        let mark_condition = format!("{NOT_REFUNDED} AND {same_charge}");
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression(MARK_REFUNDED)
            .condition_expression(&mark_condition)
            .expression_attribute_values(":now", n(crate::unix_now()))
            .expression_attribute_values(":lapsed", AttributeValue::Bool(false));
        let mark = match &charge {
            Some(charge) => mark.expression_attribute_values(":charge", charge.clone()),
            None => mark,
        };
        let give_back = match balance {
            Balance::FreeMessages => step_balance(&self.table, user, balance, '+')
                .condition_expression("attribute_exists(pk)"),
            Balance::Credits => {
                // Only within the debit's period, and never onto a subscription that ended.
                let mut condition = "attribute_exists(pk)".to_owned();
                let mut update = step_balance(&self.table, user, balance, '+')
                    .expression_attribute_names("#status", "subscription_status");
                for (i, ended) in SubscriptionStatus::ENDED.iter().enumerate() {
                    condition.push_str(&format!(" AND #status <> :ended{i}"));
                    update =
                        update.expression_attribute_values(format!(":ended{i}"), s(ended.as_str()));
                }
                if let Some(period) = period {
                    condition.push_str(&format!(" AND {SAME_PERIOD}"));
                    update = update
                        .expression_attribute_names("#period", PERIOD)
                        .expression_attribute_values(":period", n(period));
                }
                update.condition_expression(condition)
            }
        };
        let items = vec![
            TransactWriteItem::builder().update(built(mark)?).build(),
            TransactWriteItem::builder()
                .update(built(give_back)?)
                .build(),
        ];
        let err = match self.transact(items).await {
            Ok(()) => return Ok(RefundOutcome::Refunded(balance)),
            Err(err) => err,
        };
        match (cancellation_code(&err, 0), cancellation_code(&err, 1)) {
            // A concurrent refund marked it first (and the id may have been charged anew since),
            // or the item expired meanwhile.
            (Some("ConditionalCheckFailed"), _) => Ok(RefundOutcome::AlreadyRefunded),
            (_, Some("ConditionalCheckFailed")) => {
                if self.get_item(profile_key(user)).await?.is_none() {
                    return Ok(RefundOutcome::NotCharged);
                }
                // The debit's period ended: nothing to give back; the debit counts as refunded.
                let mut lapse = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression(MARK_REFUNDED)
                    .condition_expression(&mark_condition)
                    .expression_attribute_values(":now", n(crate::unix_now()))
                    .expression_attribute_values(":lapsed", AttributeValue::Bool(true));
                if let Some(charge) = charge {
                    lapse = lapse.expression_attribute_values(":charge", charge);
                }
                let marked = lapse.send().await;
                match super::conditional("UpdateItem", marked)? {
                    true => Ok(RefundOutcome::Lapsed),
                    false => Ok(RefundOutcome::AlreadyRefunded),
                }
            }
            _ => Err(store_error("TransactWriteItems", err)),
        }
    }
}
