//! The embedded, in-process store: for `cargo run -p local-api` and fast handler tests. The
//! record's operations are in `profiles.rs`, the ledger's in `ledger.rs`.

mod holdings;
mod ledger;
mod profiles;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{CallLimits, CustomerLinks, Erasures, Reconciliation, StoreError, WebhookEvents};
use crate::domain::reconcile::RECHECK_AFTER_SECS;
use crate::domain::{
    Balance, DailyStep, DuePosition, EVENT_LEASE_SECS, Entry, EntryKey, EntryKind, EventClaim,
    EventOutcome, EventState, Period, Purchase, ReconcileCursor, SubscriptionView, Tombstone,
    UserId, UserRecord,
};

/// What one debit took, and whether it was refunded.
#[derive(Debug, Clone)]
struct Taken {
    /// Each balance it took from, and how much.
    takes: Vec<(Balance, i64)>,
    period: Period,
    refunded: bool,
}

#[derive(Default)]
struct Tables {
    users: HashMap<UserId, UserRecord>,
    customers: HashMap<String, UserId>,
    /// Webhook events, by id.
    events: HashMap<String, EventState>,
    /// Charged debit ids per user (kept for the process's life: a local store needs no TTL).
    debits: HashMap<(UserId, String), Taken>,
    /// Tombstones of erased users, by the hash of their id.
    tombstones: HashMap<String, Tombstone>,
    /// The cursor of the reconciliation pass under way.
    cursor: Option<ReconcileCursor>,
    /// Stripe-calling requests per user and window start (on the record in DynamoDB).
    stripe_calls: HashMap<(UserId, i64), i64>,
    /// Each user's ledger entries, by key.
    entries: HashMap<UserId, BTreeMap<EntryKey, Entry>>,
    /// The once-only ids of postings done, per user.
    once: HashSet<(UserId, String)>,
    /// What each user's payments bought, by user and purchase key.
    purchases: HashMap<(UserId, String), Purchase>,
}

impl Tables {
    /// Adds `step` to its day's entry of `user`.
    fn add_to_day(&mut self, user: &UserId, step: &DailyStep) {
        let entries = self.entries.entry(user.clone()).or_default();
        let day = step.applied_to(entries.get(&step.key));
        entries.insert(step.key.clone(), day);
    }

    /// Writes `entry` of `user`.
    fn write_entry(&mut self, user: &UserId, entry: &Entry) {
        let entries = self.entries.entry(user.clone()).or_default();
        entries.insert(entry.key.clone(), entry.clone());
    }
}

/// `record` with `balance` set to `value`.
fn set_balance(record: &mut UserRecord, balance: Balance, value: i64) {
    match balance {
        Balance::Credits => record.credits_remaining = value,
        Balance::FreeMessages => record.free_messages_remaining = value,
        Balance::Purchased => record.purchased_credits = value,
    }
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
impl CustomerLinks for MemoryStore {
    async fn expect_customer(&self, user: &UserId) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let record = tables.users.get_mut(user).ok_or(StoreError::NoRecord)?;
        if record.erasing_since.is_some() {
            return Err(StoreError::Erasing);
        }
        record.stripe_customer_possible = true;
        Ok(())
    }

    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<String, StoreError> {
        let mut tables = self.tables();
        let record = tables.users.get(user).ok_or(StoreError::NoRecord)?;
        if record.erasing_since.is_some() {
            return Err(StoreError::Erasing);
        }
        let linked = record.stripe_customer_id.clone();
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
            record.customer_linked_at.get_or_insert(crate::unix_now());
            let soon = crate::unix_now() + RECHECK_AFTER_SECS;
            record.next_check.get_or_insert(soon);
        }
        Ok(customer.to_owned())
    }

    async fn unlink_customer(&self, user: &UserId, customer: &str) -> Result<(), StoreError> {
        let mut tables = self.tables();
        if tables.customers.get(customer) == Some(user) {
            tables.customers.remove(customer);
        }
        let linked = tables.users.get_mut(user).filter(|r| {
            r.stripe_customer_id.as_deref() == Some(customer) && r.erasing_since.is_none()
        });
        let mut ending = None;
        if let Some(record) = linked {
            let now = crate::unix_now();
            ending = record.paid_credits_end(EntryKind::CustomerDeleted, customer, now);
            let forgotten = SubscriptionView::none(crate::unix_now_ms());
            *record = record.clone().with_subscription(&forgotten);
            record.stripe_customer_id = None;
            record.customer_linked_at = None;
        }
        if let Some(posting) = ending {
            tables.write_entry(user, &posting.entry);
        }
        Ok(())
    }

    async fn user_for_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError> {
        Ok(self.tables().customers.get(customer).cloned())
    }
}

#[async_trait]
impl WebhookEvents for MemoryStore {
    async fn begin_event(&self, event_id: &str, now: i64) -> Result<EventClaim, StoreError> {
        let mut tables = self.tables();
        match tables.events.get(event_id) {
            Some(EventState::Done) => Ok(EventClaim::AlreadyDone),
            Some(EventState::Processing { lease_until }) if *lease_until >= now => {
                Ok(EventClaim::InProgress)
            }
            _ => {
                let lease_until = now + EVENT_LEASE_SECS;
                let processing = EventState::Processing { lease_until };
                tables.events.insert(event_id.to_owned(), processing);
                Ok(EventClaim::Claimed)
            }
        }
    }

    async fn finish_event(
        &self,
        event_id: &str,
        outcome: EventOutcome,
        _now: i64,
    ) -> Result<(), StoreError> {
        let state = match outcome {
            EventOutcome::Done => EventState::Done,
            EventOutcome::Failed => EventState::Failed,
        };
        self.tables().events.insert(event_id.to_owned(), state);
        Ok(())
    }

    async fn event_state(&self, event_id: &str) -> Result<Option<EventState>, StoreError> {
        Ok(self.tables().events.get(event_id).copied())
    }
}

#[async_trait]
impl Erasures for MemoryStore {
    async fn tombstone(&self, user: &UserId) -> Result<Option<Tombstone>, StoreError> {
        Ok(self.tables().tombstones.get(&user.full_hash()).copied())
    }

    async fn mark_erasing(&self, user: &UserId, at: i64) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let record = tables.users.entry(user.clone()).or_insert_with(|| {
            // No record yet: a marked one, so no first request can create one meanwhile.
            UserRecord::new_free(user.clone(), 0, at)
        });
        record.erasing_since.get_or_insert(at);
        Ok(())
    }

    async fn write_tombstone(
        &self,
        user: &UserId,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        self.tables()
            .tombstones
            .insert(user.full_hash(), *tombstone);
        Ok(())
    }

    async fn delete_owned_items(&self, user: &UserId) -> Result<usize, StoreError> {
        // Of the user's items, the embedded store holds the profile (deleted last, elsewhere)
        // and the debit ledger; no other service writes here.
        let mut tables = self.tables();
        let before = tables.debits.len() + tables.once.len();
        tables.debits.retain(|(owner, _), _| owner != user);
        tables.stripe_calls.retain(|(owner, _), _| owner != user);
        tables.once.retain(|(owner, _)| owner != user);
        let purchases = tables.purchases.len();
        tables.purchases.retain(|(owner, _), _| owner != user);
        let purchases = purchases - tables.purchases.len();
        let entries = tables
            .entries
            .remove(user)
            .map_or(0, |entries| entries.len());
        Ok(before - tables.debits.len() - tables.once.len() + entries + purchases)
    }

    async fn delete_customer_link(&self, customer: &str) -> Result<(), StoreError> {
        self.tables().customers.remove(customer);
        Ok(())
    }

    async fn delete_profile(&self, user: &UserId) -> Result<(), StoreError> {
        self.tables().users.remove(user);
        Ok(())
    }
}

#[async_trait]
impl Reconciliation for MemoryStore {
    async fn due_users(
        &self,
        due_by: i64,
        after: Option<&DuePosition>,
        limit: usize,
    ) -> Result<(Vec<DuePosition>, bool), StoreError> {
        let key = |p: &DuePosition| (p.due_at, p.user.as_str().to_owned());
        let tables = self.tables();
        let mut due: Vec<DuePosition> = tables
            .users
            .values()
            .filter_map(|record| {
                let due_at = record.next_check.filter(|at| *at <= due_by)?;
                let user = record.user_id.clone();
                Some(DuePosition { due_at, user })
            })
            .filter(|position| after.is_none_or(|after| key(position) > key(after)))
            .collect();
        due.sort_by_key(key);
        let more = due.len() > limit;
        due.truncate(limit);
        Ok((due, more))
    }

    async fn reconcile_cursor(&self) -> Result<Option<ReconcileCursor>, StoreError> {
        Ok(self.tables().cursor.clone())
    }

    async fn save_reconcile_cursor(
        &self,
        cursor: Option<&ReconcileCursor>,
    ) -> Result<(), StoreError> {
        self.tables().cursor = cursor.cloned();
        Ok(())
    }
}

#[async_trait]
impl CallLimits for MemoryStore {
    async fn count_stripe_call(
        &self,
        user: &UserId,
        window: i64,
        limit: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let record = tables.users.get(user).ok_or(StoreError::NoRecord)?;
        if record.erasing_since.is_some() {
            return Err(StoreError::Erasing);
        }
        let calls = tables
            .stripe_calls
            .entry((user.clone(), window))
            .or_default();
        if *calls >= limit {
            return Ok(false);
        }
        *calls += 1;
        Ok(true)
    }
}
