//! [`Ledger`] on the embedded store: every change and its entry under the one lock.

use async_trait::async_trait;

use super::{MemoryStore, Taken, set_balance};
use crate::domain::{
    Balance, Charge, DailyStep, DebitId, DebitOutcome, Entry, EntryKey, EntryKind, PostOutcome,
    Posting, RefundOutcome, UserId,
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
        if charge.price < 1 || charge.before < charge.price {
            return Ok(DebitOutcome::Refused);
        }
        let Some(record) = tables.users.get_mut(user) else {
            return Ok(DebitOutcome::Refused);
        };
        let period_moved =
            charge.balance == Balance::Credits && record.last_grant_created != charge.period;
        let erasing = record.erasing_since.is_some();
        let moved = record.balance(charge.balance) != charge.before;
        if &record.subscription_status != charge.status_seen || period_moved || erasing || moved {
            return Ok(DebitOutcome::Refused);
        }
        let step = DailyStep::new(
            EntryKind::Usage,
            charge.balance,
            charge.price,
            charge.before,
            charge.at,
        );
        set_balance(record, charge.balance, step.balance_after);
        tables.add_to_day(user, &step);
        let taken = Taken {
            balance: charge.balance,
            price: charge.price,
            period: charge.period,
            refunded: false,
        };
        tables.debits.insert(ledger_key, taken);
        Ok(DebitOutcome::Charged)
    }

    async fn refund(&self, user: &UserId, debit_id: &DebitId) -> Result<RefundOutcome, StoreError> {
        let mut tables = self.tables();
        let ledger_key = (user.clone(), debit_id.as_str().to_owned());
        let Some(taken) = tables.debits.get(&ledger_key).copied() else {
            return Ok(RefundOutcome::NotCharged);
        };
        let (balance, period) = (taken.balance, taken.period);
        if taken.refunded {
            return Ok(RefundOutcome::AlreadyRefunded);
        }
        let Some(record) = tables.users.get_mut(user) else {
            return Ok(RefundOutcome::NotCharged);
        };
        if record.erasing_since.is_some() {
            return Err(StoreError::Erasing);
        }
        let outcome = if record.refund_lapses(balance, Some(period)) {
            RefundOutcome::Lapsed
        } else {
            let now = crate::unix_now();
            let step = DailyStep::new(
                EntryKind::MessageRefund,
                balance,
                taken.price,
                record.balance(balance),
                now,
            );
            set_balance(record, balance, step.balance_after);
            tables.add_to_day(user, &step);
            RefundOutcome::Refunded(balance)
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
        {
            return Ok(PostOutcome::Moved);
        }
        set_balance(record, entry.balance, entry.balance_after);
        if let Some(grant) = &posting.grant {
            if grant.starts_period {
                record.last_grant_created = grant.invoice_created;
            }
            record.period_credits = Some(grant.credits);
            record.granted_invoices.insert(grant.invoice_id.clone());
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
}
