//! [`Holdings`] on the embedded store: the user's items from every table, each under the sort
//! key it has in DynamoDB, so that both stores page alike.

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::{Held, HeldDebit, HeldKey, UserId};
use crate::store::{Holdings, StoreError};

#[async_trait]
impl Holdings for MemoryStore {
    async fn holdings(
        &self,
        user: &UserId,
        after: Option<&HeldKey>,
        limit: usize,
    ) -> Result<(Vec<Held>, Option<HeldKey>), StoreError> {
        let tables = self.tables();
        let mut held: Vec<(String, Held)> = Vec::new();
        if let Some(record) = tables.users.get(user) {
            held.push(("PROFILE".into(), Held::Profile(Box::new(record.clone()))));
        }
        for entry in tables
            .entries
            .get(user)
            .into_iter()
            .flat_map(|e| e.values())
        {
            let key = format!("LEDGER#{}", entry.key.as_str());
            held.push((key, Held::Entry(entry.clone())));
        }
        for ((owner, id), taken) in &tables.debits {
            if owner == user {
                let debit = HeldDebit {
                    id: id.clone(),
                    takes: taken.takes.clone(),
                    refunded: taken.refunded,
                };
                held.push((format!("DEBIT#{id}"), Held::Debit(debit)));
            }
        }
        for (owner, id) in &tables.once {
            if owner == user {
                held.push((format!("ONCE#{id}"), Held::Marker { id: id.clone() }));
            }
        }
        for ((owner, key), purchase) in &tables.purchases {
            if owner == user {
                held.push((format!("PURCHASE#{key}"), Held::Purchase(purchase.clone())));
            }
        }
        held.sort_by(|a, b| a.0.cmp(&b.0));
        held.retain(|(key, _)| after.is_none_or(|after| key > &after.0));
        let more = held.len() > limit;
        held.truncate(limit);
        let next = held
            .last()
            .filter(|_| more)
            .map(|(key, _)| HeldKey(key.clone()));
        Ok((held.into_iter().map(|(_, item)| item).collect(), next))
    }
}
