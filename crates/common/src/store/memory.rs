//! The embedded, in-process store: for `cargo run -p local-api` and fast handler tests.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Store, StoreError, SubscriptionView, UserRecord};
use crate::users::UserId;

#[derive(Default)]
struct Tables {
    users: HashMap<UserId, UserRecord>,
    customers: HashMap<String, UserId>,
}

/// Records in maps behind one mutex; every operation is atomic, like its DynamoDB counterpart.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // Every operation checks before it writes, and writes with single inserts, so a panic
        // while holding the lock cannot leave a half-applied change.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get_user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.tables().users.get(user).cloned())
    }

    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        if tables.users.contains_key(&record.user_id) {
            return Ok(false);
        }
        tables.users.insert(record.user_id.clone(), record.clone());
        Ok(true)
    }

    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<String, StoreError> {
        let mut tables = self.tables();
        let linked = tables
            .users
            .get(user)
            .ok_or(StoreError::NoRecord)?
            .stripe_customer_id
            .clone();
        if let Some(existing) = linked.filter(|existing| existing != customer) {
            return Ok(existing);
        }
        if tables
            .customers
            .get(customer)
            .is_some_and(|owner| owner != user)
        {
            return Err(StoreError::Corrupt(
                "customer is linked to another user".into(),
            ));
        }
        tables.customers.insert(customer.to_owned(), user.clone());
        if let Some(record) = tables.users.get_mut(user) {
            record.stripe_customer_id = Some(customer.to_owned());
        }
        Ok(customer.to_owned())
    }

    async fn user_for_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError> {
        Ok(self.tables().customers.get(customer).cloned())
    }

    async fn apply_subscription(
        &self,
        user: &UserId,
        view: &SubscriptionView,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let record = tables.users.get_mut(user).ok_or(StoreError::NoRecord)?;
        if record.synced_at_ms >= view.observed_at_ms {
            return Ok(false);
        }
        *record = record.clone().with_subscription(view);
        Ok(true)
    }
}
