//! [`Ledger`] on DynamoDB: each debit is a ledger item (`DEBIT#<id>`, expiring after the
//! retention period) written in one transaction with the balance's conditional decrement; a
//! refund marks the item and gives the message back in another.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::keys::{Item, PK, SK, TTL, debit_key, n, profile_key, s};
use super::{DynamoStore, cancellation_code, store_error};
use crate::domain::{Balance, Charge, DEBIT_RETENTION_SECS, DebitOutcome, RefundOutcome, UserId};
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

/// `SET #balance = #balance <op> 1` on the profile of `user`, under `condition`.
fn step_balance(
    table: &str,
    user: &UserId,
    balance: Balance,
    op: char,
    condition: &str,
) -> UpdateBuilder {
    Update::builder()
        .table_name(table)
        .set_key(Some(profile_key(user)))
        .update_expression(format!("SET #balance = #balance {op} :one"))
        .condition_expression(condition)
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
        let mut item = debit_key(user, charge.debit_id);
        item.extend([
            ("entity".to_owned(), s("debit")),
            ("balance".to_owned(), s(attribute(charge.balance))),
            (TTL.to_owned(), n(charge.at + DEBIT_RETENTION_SECS)),
        ]);
        let ledger = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|_| StoreError::Unavailable("build Put".into()))?;
        let decrement = step_balance(
            &self.table,
            user,
            charge.balance,
            '-',
            "attribute_exists(pk) AND #balance > :zero AND #status = :seen",
        )
        .expression_attribute_names("#status", "subscription_status")
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":seen", s(charge.status_seen.as_str()));
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

    async fn refund(&self, user: &UserId, debit_id: &str) -> Result<RefundOutcome, StoreError> {
        let Some(ledger) = self.get_item(debit_key(user, debit_id)).await? else {
            return Ok(RefundOutcome::NotCharged);
        };
        if ledger.contains_key("refunded_at") {
            return Ok(RefundOutcome::AlreadyRefunded);
        }
        let Some(balance) = recorded_balance(&ledger) else {
            return Ok(RefundOutcome::NotCharged);
        };
        let key = ledger
            .into_iter()
            .filter(|(name, _)| name == PK || name == SK)
            .collect();
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET refunded_at = :now")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(refunded_at)")
            .expression_attribute_values(":now", n(crate::unix_now()));
        let give_back = step_balance(&self.table, user, balance, '+', "attribute_exists(pk)");
        let items = vec![
            TransactWriteItem::builder().update(built(mark)?).build(),
            TransactWriteItem::builder()
                .update(built(give_back)?)
                .build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(RefundOutcome::Refunded(balance)),
            Err(err) => match (cancellation_code(&err, 0), cancellation_code(&err, 1)) {
                // A concurrent refund marked it first, or the item expired meanwhile.
                (Some("ConditionalCheckFailed"), _) => Ok(RefundOutcome::AlreadyRefunded),
                (_, Some("ConditionalCheckFailed")) => Ok(RefundOutcome::NotCharged),
                _ => Err(store_error("TransactWriteItems", err)),
            },
        }
    }
}
