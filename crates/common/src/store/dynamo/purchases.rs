//! What a user's payments bought, on DynamoDB: one item per purchase (`PURCHASE#<key>` under the
//! user's partition), written in the transaction of the grant or clawback that makes or changes
//! it, each write conditioned on the revision it was decided on, and expired by the table's TTL
//! once it can no longer be taken back.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::keys::{Item, PK, SK, TTL, n, s, user_pk};
use super::{DynamoStore, store_error};
use crate::domain::clawbacks::DisputeHold;
use crate::domain::{Balance, Purchase, UserId};
use crate::store::StoreError;

/// The sort-key prefix of every purchase.
pub(super) const PURCHASE: &str = "PURCHASE#";

/// The key of purchase `key` of `user`.
fn purchase_key(user: &UserId, key: &str) -> Item {
    Item::from([
        (PK.to_owned(), s(&user_pk(user))),
        (SK.to_owned(), s(&format!("{PURCHASE}{key}"))),
    ])
}

/// The item of `purchase` of `user`, keys and TTL included.
fn to_item(user: &UserId, purchase: &Purchase) -> Item {
    let mut item = purchase_key(user, &purchase.key);
    item.extend([
        ("entity".to_owned(), s("purchase")),
        ("balance".to_owned(), s(purchase.balance.as_str())),
        ("credits".to_owned(), n(purchase.credits)),
        ("at".to_owned(), n(purchase.at)),
        ("period".to_owned(), n(purchase.period)),
        ("refunded".to_owned(), n(purchase.refunded)),
        ("revision".to_owned(), n(purchase.revision)),
        (TTL.to_owned(), n(purchase.expires_at())),
    ]);
    if let Some(hold) = &purchase.dispute {
        item.extend([
            ("dispute".to_owned(), s(&hold.id)),
            ("dispute_taken".to_owned(), n(hold.taken)),
            (
                "dispute_refunded_before".to_owned(),
                n(hold.refunded_before),
            ),
            (
                "dispute_released".to_owned(),
                AttributeValue::Bool(hold.released),
            ),
        ]);
    }
    item
}

/// The purchase in `item`; `Corrupt` if it is not one.
pub(super) fn from_item(item: &Item) -> Result<Purchase, StoreError> {
    let corrupt = |name: &str| StoreError::Corrupt(format!("purchase attribute {name}"));
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    let number = |name: &str| {
        let value = item.get(name).and_then(|v| v.as_n().ok());
        value
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| corrupt(name))
    };
    let key = text(SK)
        .and_then(|sk| sk.strip_prefix(PURCHASE))
        .ok_or_else(|| corrupt(SK))?;
    let dispute = match text("dispute") {
        Some(id) => Some(DisputeHold {
            id: id.clone(),
            taken: number("dispute_taken")?,
            refunded_before: number("dispute_refunded_before")?,
            released: matches!(
                item.get("dispute_released"),
                Some(AttributeValue::Bool(true))
            ),
        }),
        None => None,
    };
    Ok(Purchase {
        key: key.to_owned(),
        balance: text("balance")
            .and_then(|balance| Balance::parse(balance))
            .ok_or_else(|| corrupt("balance"))?,
        credits: number("credits")?,
        at: number("at")?,
        period: number("period")?,
        refunded: number("refunded")?,
        dispute,
        revision: number("revision")?,
    })
}

impl DynamoStore {
    /// Puts `purchase` of `user` as it stands after a change, only if it is still at the revision
    /// before (the first: only if it does not exist).
    pub(super) fn put_purchase(
        &self,
        user: &UserId,
        purchase: &Purchase,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(user, purchase)));
        let put = match purchase.revision {
            ..=1 => put.condition_expression("attribute_not_exists(pk)"),
            revision => put
                .condition_expression("#revision = :revision")
                .expression_attribute_names("#revision", "revision")
                .expression_attribute_values(":revision", n(revision - 1)),
        };
        let put = put
            .build()
            .map_err(|_| StoreError::Unavailable("build Put".into()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// [`crate::store::Ledger::purchases`].
    pub(super) async fn purchase_items(&self, user: &UserId) -> Result<Vec<Purchase>, StoreError> {
        let mut purchases = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :purchase)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(&user_pk(user)))
                .expression_attribute_values(":purchase", s(PURCHASE))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| store_error("Query", err))?;
            for item in page.items() {
                purchases.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(purchases);
            }
        }
    }
}
