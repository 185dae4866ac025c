//! [`Profiles`] on the embedded store: the record, its subscription view, its open Checkout
//! session and its pending pack sessions, each under the one lock.

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::reconcile::RECHECK_AFTER_SECS;
use crate::domain::{EntryKind, OpenCheckout, PendingPack, SubscriptionView, UserId, UserRecord};
use crate::store::{Profiles, StoreError};

#[async_trait]
impl Profiles for MemoryStore {
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
        // An erasure deletes the credits with their entries: an ending writes none.
        let erasing = record.erasing_since.is_some();
        let ending = (view.status.ends_paid_credits() && !erasing).then(|| {
            let cause = view
                .subscription_id
                .as_ref()
                .or(record.subscription_id.as_ref());
            let cause = cause.map_or("subscription", String::as_str);
            record.paid_credits_end(EntryKind::SubscriptionEnded, cause, crate::unix_now())
        });
        let credits = record.credits_remaining;
        *record = record.clone().with_subscription(view);
        if erasing {
            record.credits_remaining = credits;
        }
        if let Some(posting) = ending.flatten() {
            tables.write_entry(user, &posting.entry);
        }
        Ok(true)
    }

    async fn set_open_checkout(
        &self,
        user: &UserId,
        previous: Option<&str>,
        session: Option<&OpenCheckout>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let record = tables.users.get_mut(user).ok_or(StoreError::NoRecord)?;
        if record.erasing_since.is_some() {
            return Err(StoreError::Erasing);
        }
        if record.open_checkout.as_ref().map(|o| o.id.as_str()) != previous {
            return Ok(false);
        }
        record.open_checkout = session.cloned();
        if session.is_some() {
            record.next_check = Some(crate::unix_now() + RECHECK_AFTER_SECS);
        }
        Ok(true)
    }

    async fn add_pending_pack(
        &self,
        user: &UserId,
        pending: &PendingPack,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let record = tables.users.get_mut(user).ok_or(StoreError::NoRecord)?;
        if record.erasing_since.is_some() {
            return Err(StoreError::Erasing);
        }
        if record.stripe_customer_id.is_none() {
            return Err(StoreError::NoRecord);
        }
        record
            .pending_packs
            .retain(|kept| kept.session_id != pending.session_id);
        record.pending_packs.push(pending.clone());
        record
            .pending_packs
            .sort_by(|a, b| a.order().cmp(&b.order()));
        record.next_check = Some(crate::unix_now() + RECHECK_AFTER_SECS);
        Ok(())
    }

    async fn drop_pending_pack(&self, user: &UserId, session: &str) -> Result<(), StoreError> {
        let mut tables = self.tables();
        if let Some(record) = tables.users.get_mut(user) {
            record
                .pending_packs
                .retain(|kept| kept.session_id != session);
        }
        Ok(())
    }
}
