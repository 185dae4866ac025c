//! The embedded, in-process store: for `cargo run -p local-api` and fast handler tests.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Store, StoreError, UserRecord};
use crate::users::UserId;

/// Records in a map behind a mutex; every operation is atomic, like its DynamoDB counterpart.
#[derive(Default)]
pub struct MemoryStore {
    users: Mutex<HashMap<UserId, UserRecord>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, UserRecord>> {
        // A panic while holding the lock cannot leave a half-written record: every write is
        // one `insert`, so the map is still consistent.
        self.users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get_user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.users().get(user).cloned())
    }

    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        let mut users = self.users();
        if users.contains_key(&record.user_id) {
            return Ok(false);
        }
        users.insert(record.user_id.clone(), record.clone());
        Ok(true)
    }
}
