//! A store wrapper for fault injection and call tracing: every call is recorded in a shared log,
//! chosen operations fail (as a storage outage) a chosen number of times — after, or instead
//! of, reaching the real store — and a chosen call can be held until the test lets it go, to
//! interleave two flows at an exact step without any timing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::domain::{
    Charge, DebitId, DebitOutcome, DuePosition, Entry, EntryKey, EventClaim, EventOutcome,
    EventState, Held, HeldKey, OpenCheckout, PendingPack, PostOutcome, Posting, Purchase,
    ReconcileCursor, RefundOutcome, SubscriptionView, Tombstone, UserId, UserRecord,
};
use common::store::{
    CallLimits, CustomerLinks, Erasures, Holdings, Ledger, Profiles, Reconciliation, Store,
    StoreError, WebhookEvents,
};

/// A shared, ordered log of calls (`store:<operation>`), which other fakes can write to too.
pub type CallLog = Arc<Mutex<Vec<String>>>;

/// When an injected failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strike {
    /// Fail without touching the store.
    Before,
    /// Let the store do the work, then report a failure (the reply was lost).
    After,
}

/// A call held by [`FaultyStore::pause_at`]: it has not reached the store yet.
#[derive(Clone, Default)]
pub struct Pause {
    reached: Arc<tokio::sync::Notify>,
    resume: Arc<tokio::sync::Notify>,
}

impl Pause {
    /// Waits until the held call arrives.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the held call go on to the store.
    pub fn resume(&self) {
        self.resume.notify_one();
    }
}

/// Wraps a store; see the module docs.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    failures: Mutex<HashMap<&'static str, (usize, Strike)>>,
    pause: Mutex<Option<(usize, Pause)>>,
    /// Every call, in order.
    pub log: CallLog,
}

impl FaultyStore {
    /// Wraps `inner`, logging into `log`.
    pub fn new(inner: Arc<dyn Store>, log: CallLog) -> Self {
        FaultyStore {
            inner,
            failures: Mutex::new(HashMap::new()),
            pause: Mutex::new(None),
            log,
        }
    }

    /// Holds the call that comes `calls` calls from now (0: the next one) before it reaches the
    /// store, until [`Pause::resume`].
    pub fn pause_at(&self, calls: usize) -> Pause {
        let at = self.log.lock().unwrap().len() + calls;
        let pause = Pause::default();
        *self.pause.lock().unwrap() = Some((at, pause.clone()));
        pause
    }

    /// Makes the next `times` calls of `operation` fail.
    pub fn fail(&self, operation: &'static str, times: usize, strike: Strike) {
        self.failures
            .lock()
            .unwrap()
            .insert(operation, (times, strike));
    }

    /// Logs the call; returns the pause that holds it, if it is the one to hold.
    fn arrive(&self, operation: &'static str) -> Option<Pause> {
        let index = {
            let mut log = self.log.lock().unwrap();
            log.push(format!("store:{operation}"));
            log.len() - 1
        };
        let mut pause = self.pause.lock().unwrap();
        match pause.take() {
            Some((at, held)) if at == index => Some(held),
            other => {
                *pause = other;
                None
            }
        }
    }

    fn strike(&self, operation: &'static str) -> Option<Strike> {
        let mut failures = self.failures.lock().unwrap();
        let (left, strike) = failures.get_mut(operation)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(*strike)
    }

    async fn run<T, F>(&self, operation: &'static str, call: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        let outage = || StoreError::Unavailable(format!("injected {operation} failure"));
        if let Some(pause) = self.arrive(operation) {
            pause.reached.notify_one();
            pause.resume.notified().await;
        }
        match self.strike(operation) {
            Some(Strike::Before) => Err(outage()),
            Some(Strike::After) => call.await.and(Err(outage())),
            None => call.await,
        }
    }
}

#[async_trait]
impl Profiles for FaultyStore {
    async fn get_user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError> {
        self.run("get_user", self.inner.get_user(user)).await
    }
    async fn create_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        self.run("create_user", self.inner.create_user(record))
            .await
    }
    async fn apply_subscription(
        &self,
        user: &UserId,
        view: &SubscriptionView,
    ) -> Result<bool, StoreError> {
        let call = self.inner.apply_subscription(user, view);
        self.run("apply_subscription", call).await
    }
    async fn set_open_checkout(
        &self,
        user: &UserId,
        previous: Option<&str>,
        session: Option<&OpenCheckout>,
    ) -> Result<bool, StoreError> {
        let call = self.inner.set_open_checkout(user, previous, session);
        self.run("set_open_checkout", call).await
    }
    async fn add_pending_pack(
        &self,
        user: &UserId,
        pending: &PendingPack,
    ) -> Result<(), StoreError> {
        let call = self.inner.add_pending_pack(user, pending);
        self.run("add_pending_pack", call).await
    }
    async fn drop_pending_pack(&self, user: &UserId, session: &str) -> Result<(), StoreError> {
        let call = self.inner.drop_pending_pack(user, session);
        self.run("drop_pending_pack", call).await
    }
}

#[async_trait]
impl CustomerLinks for FaultyStore {
    async fn expect_customer(&self, user: &UserId) -> Result<(), StoreError> {
        self.run("expect_customer", self.inner.expect_customer(user))
            .await
    }
    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<String, StoreError> {
        self.run("link_customer", self.inner.link_customer(user, customer))
            .await
    }
    async fn unlink_customer(&self, user: &UserId, customer: &str) -> Result<(), StoreError> {
        let call = self.inner.unlink_customer(user, customer);
        self.run("unlink_customer", call).await
    }
    async fn user_for_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError> {
        self.run("user_for_customer", self.inner.user_for_customer(customer))
            .await
    }
}

#[async_trait]
impl Ledger for FaultyStore {
    async fn debit(&self, user: &UserId, charge: &Charge<'_>) -> Result<DebitOutcome, StoreError> {
        self.run("debit", self.inner.debit(user, charge)).await
    }
    async fn refund(&self, user: &UserId, debit_id: &DebitId) -> Result<RefundOutcome, StoreError> {
        self.run("refund", self.inner.refund(user, debit_id)).await
    }
    async fn post(&self, user: &UserId, posting: &Posting) -> Result<PostOutcome, StoreError> {
        self.run("post", self.inner.post(user, posting)).await
    }
    async fn entries(
        &self,
        user: &UserId,
        after: Option<&EntryKey>,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        self.run("entries", self.inner.entries(user, after, limit))
            .await
    }
    async fn purchases(&self, user: &UserId) -> Result<Vec<Purchase>, StoreError> {
        self.run("purchases", self.inner.purchases(user)).await
    }
}

#[async_trait]
impl WebhookEvents for FaultyStore {
    async fn begin_event(&self, event_id: &str, now: i64) -> Result<EventClaim, StoreError> {
        self.run("begin_event", self.inner.begin_event(event_id, now))
            .await
    }
    async fn finish_event(
        &self,
        event_id: &str,
        outcome: EventOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        let call = self.inner.finish_event(event_id, outcome, now);
        self.run("finish_event", call).await
    }

    async fn event_state(&self, event_id: &str) -> Result<Option<EventState>, StoreError> {
        let call = self.inner.event_state(event_id);
        self.run("event_state", call).await
    }
}

#[async_trait]
impl Erasures for FaultyStore {
    async fn tombstone(&self, user: &UserId) -> Result<Option<Tombstone>, StoreError> {
        self.run("tombstone", self.inner.tombstone(user)).await
    }
    async fn mark_erasing(&self, user: &UserId, at: i64) -> Result<(), StoreError> {
        self.run("mark_erasing", self.inner.mark_erasing(user, at))
            .await
    }
    async fn write_tombstone(
        &self,
        user: &UserId,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        let call = self.inner.write_tombstone(user, tombstone);
        self.run("write_tombstone", call).await
    }
    async fn delete_owned_items(&self, user: &UserId) -> Result<usize, StoreError> {
        self.run("delete_owned_items", self.inner.delete_owned_items(user))
            .await
    }
    async fn delete_customer_link(&self, customer: &str) -> Result<(), StoreError> {
        let call = self.inner.delete_customer_link(customer);
        self.run("delete_customer_link", call).await
    }
    async fn delete_profile(&self, user: &UserId) -> Result<(), StoreError> {
        self.run("delete_profile", self.inner.delete_profile(user))
            .await
    }
}

#[async_trait]
impl Reconciliation for FaultyStore {
    async fn due_users(
        &self,
        due_by: i64,
        after: Option<&DuePosition>,
        limit: usize,
    ) -> Result<(Vec<DuePosition>, bool), StoreError> {
        let call = self.inner.due_users(due_by, after, limit);
        self.run("due_users", call).await
    }
    async fn reconcile_cursor(&self) -> Result<Option<ReconcileCursor>, StoreError> {
        self.run("reconcile_cursor", self.inner.reconcile_cursor())
            .await
    }
    async fn save_reconcile_cursor(
        &self,
        cursor: Option<&ReconcileCursor>,
    ) -> Result<(), StoreError> {
        let call = self.inner.save_reconcile_cursor(cursor);
        self.run("save_reconcile_cursor", call).await
    }
}

#[async_trait]
impl CallLimits for FaultyStore {
    async fn count_stripe_call(
        &self,
        user: &UserId,
        window: i64,
        limit: i64,
    ) -> Result<bool, StoreError> {
        let call = self.inner.count_stripe_call(user, window, limit);
        self.run("count_stripe_call", call).await
    }
}

#[async_trait]
impl Holdings for FaultyStore {
    async fn holdings(
        &self,
        user: &UserId,
        after: Option<&HeldKey>,
        limit: usize,
    ) -> Result<(Vec<Held>, Option<HeldKey>), StoreError> {
        let call = self.inner.holdings(user, after, limit);
        self.run("holdings", call).await
    }
}
