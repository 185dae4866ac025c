//! The credit rules (see `docs/api.md`, "Credits"): paid periods grant `PLAN_CREDITS` once per
//! invoice; subscribers pay a message with a credit, everyone else with a free message; nothing
//! goes below zero and nothing is spent twice.
//!
//! [`debit_message`] is the primitive the chat service calls (from its own Lambda, linking this
//! crate, with the same table): see the README, "Debiting a message".

use crate::config::Rules;
use crate::error::ApiError;
use crate::store::{Balance, CreditGrant, DebitOutcome, Store};
use crate::users::{self, UserId, is_subscribed};
use crate::webhook::event::PaidInvoice;

/// Reads-and-retries of a debit whose status changed under it, before giving up with a 503.
const DEBIT_TRIES: usize = 3;

/// A successful debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debit {
    /// What paid for the message.
    pub paid_with: Balance,
    /// What is left of that balance.
    pub remaining: i64,
}

/// Takes one message's price from `user`: a credit if subscribed (active or trialing), else a
/// free message. `debit_id` names the message (e.g. the chat service's message id): however often
/// a debit with the same id is retried within a day, it is charged once, so a caller may retry a
/// 503 safely. One conditional transaction; `ApiError::InsufficientCredits` (402) when nothing is
/// left. A user seen for the first time gets the free allowance first.
pub async fn debit_message(
    store: &dyn Store,
    user: &UserId,
    rules: &Rules,
    debit_id: &str,
) -> Result<Debit, ApiError> {
    for _ in 0..DEBIT_TRIES {
        let record = users::load_or_create(store, user, rules).await?;
        let (balance, available) = if is_subscribed(&record.subscription_status) {
            (Balance::Credits, record.credits_remaining)
        } else {
            (Balance::FreeMessages, record.free_messages_remaining)
        };
        let outcome = if available > 0 {
            let status = &record.subscription_status;
            let now = crate::unix_now();
            store.debit(user, balance, status, debit_id, now).await?
        } else {
            DebitOutcome::Refused
        };
        match outcome {
            DebitOutcome::Charged | DebitOutcome::AlreadyCharged => {
                let record = store
                    .get_user(user)
                    .await?
                    .ok_or(ApiError::StorageUnavailable)?;
                let remaining = match balance {
                    Balance::Credits => record.credits_remaining,
                    Balance::FreeMessages => record.free_messages_remaining,
                };
                return Ok(Debit {
                    paid_with: balance,
                    remaining,
                });
            }
            DebitOutcome::Refused if available <= 0 => return Err(ApiError::InsufficientCredits),
            // The balance reached 0 or the subscription status changed meanwhile: look again.
            DebitOutcome::Refused => {}
        }
    }
    tracing::warn!(user = %user.hash(), "debit kept racing a status change");
    Err(ApiError::StorageUnavailable)
}

/// Starts the period paid by `invoice`: credits set to `credits`, once per invoice, only while
/// subscribed. Returns whether credits were granted.
pub async fn grant_for_invoice(
    store: &dyn Store,
    user: &UserId,
    invoice: &PaidInvoice,
    credits: i64,
) -> Result<bool, ApiError> {
    let grant = CreditGrant {
        invoice_id: invoice.id.clone(),
        invoice_created: invoice.created,
        credits,
    };
    let granted = store.grant_credits(user, &grant).await?;
    tracing::info!(user = %user.hash(), invoice = %invoice.id, granted, "paid period credits");
    Ok(granted)
}
