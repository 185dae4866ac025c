//! [`Holdings`] on DynamoDB: the user's partition, one consistent `Query` per page, each item
//! read by the codec of its kind (its sort key's prefix).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::{DEBIT, Item, ONCE, PK, PROFILE, SK, s, user_pk};
use super::{DynamoStore, codec, entries, ledger, purchases, store_error};
use crate::domain::holdings::kind_of;
use crate::domain::{Held, HeldDebit, HeldKey, UserId};
use crate::store::{Holdings, StoreError};

#[async_trait]
impl Holdings for DynamoStore {
    async fn holdings(
        &self,
        user: &UserId,
        after: Option<&HeldKey>,
        limit: usize,
    ) -> Result<(Vec<Held>, Option<HeldKey>), StoreError> {
        let pk = user_pk(user);
        let start =
            after.map(|after| Item::from([(PK.to_owned(), s(&pk)), (SK.to_owned(), s(&after.0))]));
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(&pk))
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| store_error("Query", err))?;
        let held = page
            .items()
            .iter()
            .map(|item| read_held(user, item))
            .collect::<Result<_, _>>()?;
        let next = page.last_evaluated_key().and_then(|key| match key.get(SK) {
            Some(AttributeValue::S(sk)) => Some(HeldKey(sk.clone())),
            _ => None,
        });
        Ok((held, next))
    }
}

/// One item of the partition of `user`, by its sort key.
fn read_held(user: &UserId, item: &Item) -> Result<Held, StoreError> {
    let Some(AttributeValue::S(sk)) = item.get(SK) else {
        return Err(StoreError::Corrupt("an item without a sort key".into()));
    };
    Ok(if sk == PROFILE {
        Held::Profile(Box::new(codec::from_item(user, item)?))
    } else if sk.starts_with(entries::LEDGER) {
        Held::Entry(entries::from_item(item)?)
    } else if let Some(id) = sk.strip_prefix(DEBIT) {
        Held::Debit(HeldDebit {
            id: id.to_owned(),
            takes: ledger::recorded_takes(item),
            refunded: item.contains_key("refunded_at"),
        })
    } else if let Some(id) = sk.strip_prefix(ONCE) {
        Held::Marker { id: id.to_owned() }
    } else if sk.starts_with(purchases::PURCHASE) {
        Held::Purchase(purchases::from_item(item)?)
    } else {
        Held::Other {
            kind: kind_of(sk).to_owned(),
        }
    })
}
