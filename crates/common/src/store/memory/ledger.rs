//! [`Ledger`] on the embedded store: every change and its entry under the one lock.

use async_trait::async_trait;

use super::{MemoryStore, Taken, set_balance};
use crate::domain::{
    Balance, Charge, DailyStep, DebitId, DebitOutcome, Entry, EntryKey, EntryKind, PostOutcome,
    Posting, Purchase, RefundOutcome, UserId,
};
use crate::store::{Ledger, StoreError};

#[async_trait]
impl Ledger for MemoryStore {
    async fn debit(&self, user: &UserId, charge: &Charge<'_>) -> Result<DebitOutcome, StoreError> {
        let mut tables = self.tables();
        let ledger_key = (user.clone(), charge.debit_id.as_str().to_owned());
        if tables
            .debits
            .get(&ledger_key)
            .is_some_and(|taken| !taken.refunded)
        {
            return Ok(DebitOutcome::AlreadyCharged);
        }
        if !charge.is_payable() {
            return Ok(DebitOutcome::Refused);
        }
        let Some(record) = tables.users.get_mut(user) else {
            return Ok(DebitOutcome::Refused);
        };
        let takes_credits = charge.takes.iter().any(|t| t.balance == Balance::Credits);
        let period_moved = takes_credits && record.last_grant_created != charge.period;
        let erasing = record.erasing_since.is_some();
        let moved = charge
            .takes
            .iter()
            .any(|take| record.balance(take.balance) != take.before);
        if &record.subscription_status != charge.status_seen || period_moved || erasing || moved {
            return Ok(DebitOutcome::Refused);
        }
        let steps = DailyStep::of_message(EntryKind::Usage, charge.takes, charge.at);
        for step in &steps {
            set_balance(record, step.balance, step.balance_after);
        }
        for step in &steps {
            tables.add_to_day(user, step);
        }
        let taken = Taken {
            takes: charge.takes.iter().map(|t| (t.balance, t.amount)).collect(),
            period: charge.period,
            refunded: false,
        };
        tables.debits.insert(ledger_key, taken);
        Ok(DebitOutcome::Charged)
    }

    async fn refund(&self, user: &UserId, debit_id: &DebitId) -> Result<RefundOutcome, StoreError> {
        let mut tables = self.tables();
        let ledger_key = (user.clone(), debit_id.as_str().to_owned());
        let Some(taken) = tables.debits.get(&ledger_key).cloned() else {
            return Ok(RefundOutcome::NotCharged);
        };
        if taken.refunded {
            return Ok(RefundOutcome::AlreadyRefunded);
        }
        let Some(record) = tables.users.get_mut(user) else {
            return Ok(RefundOutcome::NotCharged);
        };
        if record.erasing_since.is_some() {
            return Err(StoreError::Erasing);
        }
        let back = record.refund_of(&taken.takes, Some(taken.period));
        let outcome = if back.is_empty() {
            RefundOutcome::Lapsed
        } else {
            let steps = DailyStep::of_message(EntryKind::MessageRefund, &back, crate::unix_now());
            for step in &steps {
                set_balance(record, step.balance, step.balance_after);
            }
            for step in &steps {
                tables.add_to_day(user, step);
            }
            RefundOutcome::Refunded
        };
        let refunded = Taken {
            refunded: true,
            ..taken
        };
        tables.debits.insert(ledger_key, refunded);
        Ok(outcome)
    }

    async fn post(&self, user: &UserId, posting: &Posting) -> Result<PostOutcome, StoreError> {
        let mut tables = self.tables();
        let entry = &posting.entry;
        let once = posting.once.clone().map(|id| (user.clone(), id));
        let posted = tables
            .entries
            .get(user)
            .is_some_and(|entries| entries.contains_key(&entry.key));
        if posted || once.as_ref().is_some_and(|once| tables.once.contains(once)) {
            return Ok(PostOutcome::AlreadyPosted);
        }
        // A purchase changes only from the revision it was decided on (a new one: none).
        let purchase_key = |p: &Purchase| (user.clone(), p.key.clone());
        let purchase_moved = posting.purchase.as_ref().is_some_and(|purchase| {
            let stored = tables.purchases.get(&purchase_key(purchase));
            stored.map_or(0, |stored| stored.revision) != (purchase.revision - 1).max(0)
        });
        let record = tables.users.get_mut(user).ok_or(StoreError::NoRecord)?;
        if record.erasing_since.is_some() {
            return Err(StoreError::Erasing);
        }
        let seen = &posting.seen;
        let period_moved =
            entry.balance == Balance::Credits && record.last_grant_created != seen.period;
        if record.subscription_status != seen.status
            || period_moved
            || record.balance(entry.balance) != seen.before
            || posting
                .grant
                .as_ref()
                .is_some_and(|grant| record.granted_invoices.contains(&grant.invoice_id))
            || posting.settles.as_ref().is_some_and(|session| {
                !record
                    .pending_packs
                    .iter()
                    .any(|p| &p.session_id == session)
            })
            || purchase_moved
            || posting
                .refundable_until
                .is_some_and(|until| record.refundable_until > Some(until))
        {
            return Ok(PostOutcome::Moved);
        }
        set_balance(record, entry.balance, entry.balance_after);
        if let Some(grant) = &posting.grant {
            if grant.starts_period {
                record.last_grant_created = grant.invoice_created;
                (record.granted_period_start, record.granted_period_end) = grant.period().unzip();
            }
            record.period_credits = Some(grant.credits);
            record.granted_invoices.insert(grant.invoice_id.clone());
        }
        if let Some(session) = &posting.settles {
            record.pending_packs.retain(|p| &p.session_id != session);
        }
        if let Some(until) = posting.refundable_until {
            record.refundable_until = Some(until);
        }
        if let Some(purchase) = &posting.purchase {
            tables
                .purchases
                .insert(purchase_key(purchase), purchase.clone());
        }
        tables.write_entry(user, entry);
        tables.once.extend(once);
        Ok(PostOutcome::Posted)
    }

    async fn entries(
        &self,
        user: &UserId,
        after: Option<&EntryKey>,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        let tables = self.tables();
        let Some(entries) = tables.entries.get(user) else {
            return Ok((Vec::new(), false));
        };
        let mut page: Vec<Entry> = entries
            .values()
            .rev()
            .filter(|entry| after.is_none_or(|after| &entry.key < after))
            .take(limit + 1)
            .cloned()
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }

    async fn purchases(&self, user: &UserId) -> Result<Vec<Purchase>, StoreError> {
        let tables = self.tables();
        let of_user = tables
            .purchases
            .iter()
            .filter(|((owner, _), _)| owner == user);
        Ok(of_user.map(|(_, purchase)| purchase.clone()).collect())
    }
}
