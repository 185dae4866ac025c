//! [`Reconciliation`] on DynamoDB: the sparse `due` index (only profiles with a Stripe customer
//! carry its keys), read page by page; the cursor of a pass is one item.

use async_trait::async_trait;

use super::keys::{
    DUE, DUE_AT, DUE_INDEX, DUE_SHARD, Item, PK, PROFILE, SK, cursor_key, n, profile_key, s,
};
use super::{DynamoStore, store_error};
use crate::domain::{DuePosition, ReconcileCursor, UserId};
use crate::store::{Reconciliation, StoreError};

/// The index's key of the profile at `position`: where the next page starts.
fn start_key(position: &DuePosition) -> Item {
    let mut key = profile_key(&position.user);
    key.extend([
        (DUE_SHARD.to_owned(), s(DUE)),
        (DUE_AT.to_owned(), n(position.due_at)),
    ]);
    key
}

/// The position of an item of the index.
fn position(item: &Item) -> Result<DuePosition, StoreError> {
    let corrupt = || StoreError::Corrupt("due index item".into());
    let user = item
        .get(PK)
        .and_then(|pk| pk.as_s().ok())
        .and_then(|pk| pk.strip_prefix("USER#"))
        .and_then(UserId::parse)
        .ok_or_else(corrupt)?;
    let due_at = item
        .get(DUE_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(corrupt)?;
    Ok(DuePosition { due_at, user })
}

#[async_trait]
impl Reconciliation for DynamoStore {
    async fn due_users(
        &self,
        due_by: i64,
        after: Option<&DuePosition>,
        limit: usize,
    ) -> Result<(Vec<DuePosition>, bool), StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("#shard = :due AND #at <= :by")
            .expression_attribute_names("#shard", DUE_SHARD)
            .expression_attribute_names("#at", DUE_AT)
            .expression_attribute_values(":due", s(DUE))
            .expression_attribute_values(":by", n(due_by))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(start_key))
            .send()
            .await
            .map_err(|err| store_error("Query", err))?;
        let users = page
            .items
            .unwrap_or_default()
            .iter()
            .filter(|item| {
                item.get(SK)
                    .and_then(|sk| sk.as_s().ok())
                    .map(String::as_str)
                    == Some(PROFILE)
            })
            .map(position)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((users, page.last_evaluated_key.is_some()))
    }

    async fn reconcile_cursor(&self) -> Result<Option<ReconcileCursor>, StoreError> {
        let Some(item) = self.get_item(cursor_key()).await? else {
            return Ok(None);
        };
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let corrupt = || StoreError::Corrupt("reconciliation cursor".into());
        let after = match (number("after_due_at"), item.get("after_user")) {
            (Some(due_at), Some(user)) => Some(DuePosition {
                due_at,
                user: user
                    .as_s()
                    .ok()
                    .and_then(|u| UserId::parse(u))
                    .ok_or_else(corrupt)?,
            }),
            _ => None,
        };
        Ok(Some(ReconcileCursor {
            pass_started_at: number("pass_started_at").ok_or_else(corrupt)?,
            after,
        }))
    }

    async fn save_reconcile_cursor(
        &self,
        cursor: Option<&ReconcileCursor>,
    ) -> Result<(), StoreError> {
        let Some(cursor) = cursor else {
            return self.delete_item(cursor_key()).await;
        };
        let mut item = cursor_key();
        item.extend([
            ("entity".to_owned(), s("reconcile_cursor")),
            ("pass_started_at".to_owned(), n(cursor.pass_started_at)),
        ]);
        if let Some(after) = &cursor.after {
            item.extend([
                ("after_due_at".to_owned(), n(after.due_at)),
                ("after_user".to_owned(), s(after.user.as_str())),
            ]);
        }
        self.put_item(item).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::user_pk;
    use super::*;

    #[test]
    fn a_start_key_names_the_profile_and_its_index_keys_and_reads_back() {
        let position = DuePosition {
            due_at: 1_700_000_000,
            user: UserId::parse("4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10").unwrap(),
        };
        let key = start_key(&position);
        assert_eq!(key[PK], s(&user_pk(&position.user)));
        assert_eq!(key[SK], s(PROFILE));
        assert_eq!(key.len(), 4);
        assert_eq!(super::position(&key).unwrap(), position);
    }
}
