//! The credit rules (see `docs/api.md`, "Credits"): paid periods grant their plan's credits once
//! per invoice, and a paid upgrade the difference; subscribers pay a message with its model's
//! price in credits, everyone else with a free message (models priced at 1 credit only);
//! nothing goes below zero and nothing is spent twice. Every change is written with its ledger entry
//! ([`crate::domain::entries`]), decided on a read and applied only if the read still stands:
//! a change that meets another is decided again on a fresh read.
//!
//! [`debit_message`] is the primitive the chat service calls (from its own Lambda, linking this
//! crate, with the same table): see the README, "Debiting a message".

use crate::config::Rules;
use crate::domain::{
    Adjustment, AdjustmentRefusal, Balance, Caller, Charge, CreditGrant, DebitId, DebitOutcome,
    GrantRefusal, InvalidDebitId, PaidInvoice, Payment, Plan, PostOutcome, Posting, Purchase,
    RefundOutcome, UserId, UserRecord,
};
use crate::error::ApiError;
use crate::metrics::{self, Metric};
use crate::store::{Erasures, Ledger, Profiles, StoreError};
use crate::users;

/// A successful debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debit {
    /// The first balance that paid for the message (purchased credits pay the rest of a
    /// subscriber's message the plan's credits do not cover).
    pub paid_with: Balance,
    /// What is left to pay with, as the status shows it: the free messages, if one paid; else
    /// the credits, the plan's and the purchased.
    pub remaining: i64,
}

impl Debit {
    /// The debit of `payment`, with `record` as it stands after it.
    fn of(payment: &Payment, record: &UserRecord) -> Debit {
        let paid_with = payment.takes[0].balance;
        let remaining = match paid_with {
            Balance::FreeMessages => record.free_messages_remaining,
            _ => record.credits_shown(),
        };
        Debit {
            paid_with,
            remaining,
        }
    }
}

/// Why a debit or a refund changed nothing: the chat service's answer to act on, converted
/// into the API's error (and its status) only at an HTTP edge (`ApiError::from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DebitError {
    /// The message id is not 1 to 128 printable ASCII characters: a caller's bug, never worth a
    /// retry (400 `INVALID_DEBIT_ID`).
    #[error(transparent)]
    InvalidId(#[from] InvalidDebitId),
    /// Nothing left to pay the message with (402 `INSUFFICIENT_CREDITS`).
    #[error("no credits or free messages left")]
    Insufficient,
    /// The account's erasure began, or it was erased (410 `ACCOUNT_DELETED`).
    #[error("the account is being erased or was erased")]
    AccountDeleted,
    /// Storage failed, or the balance kept moving: nothing was charged; retry with the same id
    /// (503 `SERVICE_UNAVAILABLE`).
    #[error("storage unavailable; retry with the same id")]
    Unavailable,
}

impl From<StoreError> for DebitError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Erasing => DebitError::AccountDeleted,
            _ => DebitError::Unavailable,
        }
    }
}

impl From<DebitError> for ApiError {
    fn from(err: DebitError) -> Self {
        match err {
            DebitError::InvalidId(_) => ApiError::InvalidDebitId,
            DebitError::Insufficient => ApiError::InsufficientCredits,
            DebitError::AccountDeleted => ApiError::AccountDeleted,
            DebitError::Unavailable => ApiError::StorageUnavailable,
        }
    }
}

/// Takes one message's price from `caller` (the `Caller` the authenticator returns, which knows
/// an anonymous sign-in): the price of `model` in credits (`MESSAGE_PRICES`), all or nothing. A
/// subscriber (active or trialing) pays from the plan's credits, then from purchased credits;
/// anyone else with a free message (a model priced at 1 credit only), else from purchased
/// credits ([`UserRecord::payment_for`]). An account whose erasure began is refused
/// ([`DebitError::AccountDeleted`]). `debit_id` names the message (e.g. the chat service's
/// message id; 1 to 128 printable ASCII characters, else [`DebitError::InvalidId`], never worth
/// a retry): however often a debit with the same id is retried within a day, it is charged once,
/// so a caller may retry [`DebitError::Unavailable`] safely; after its refund, the same id is
/// charged anew (the message is retried). One conditional transaction, which also counts the
/// message and its price in each balance's day's `usage` entry; [`DebitError::Insufficient`]
/// when the balances cannot cover the price (nothing is taken). A user seen for the first time
/// gets the free allowance first.
pub async fn debit_message<S>(
    store: &S,
    caller: &Caller,
    rules: &Rules,
    debit_id: &str,
    model: &str,
) -> Result<Debit, DebitError>
where
    S: Profiles + Ledger + Erasures + ?Sized,
{
    let user = &caller.user;
    let debit_id = &DebitId::parse(debit_id)?;
    let price = rules.message_prices.price_of(model);
    // A debit whose balance, status or period changed under it (another debit of the same
    // user, a grant) reads again, up to RACE_ATTEMPTS times, then gives up with a 503.
    for pause in crate::race_pauses() {
        tokio::time::sleep(pause).await;
        let record = match users::load_or_create(store, caller, rules).await {
            Ok(record) => record,
            Err(ApiError::AccountDeleted) => return Err(DebitError::AccountDeleted),
            Err(_) => return Err(DebitError::Unavailable),
        };
        let payment = record.payment_for(price);
        // Asked even when the balances cannot cover the price: a retry of a debit whose reply
        // was lost finds it charged (the store takes nothing it cannot cover).
        let charge = Charge {
            debit_id,
            takes: &payment.takes,
            status_seen: &record.subscription_status,
            period: record.last_grant_created,
            at: crate::unix_now(),
        };
        let outcome = store.debit(user, &charge).await?;
        match outcome {
            DebitOutcome::Charged | DebitOutcome::AlreadyCharged => {
                if outcome == DebitOutcome::Charged {
                    metrics::count(Metric::Debits, 1);
                }
                let record = store.get_user(user).await?.ok_or(DebitError::Unavailable)?;
                return Ok(Debit::of(&payment, &record));
            }
            DebitOutcome::Refused if !payment.affordable => {
                metrics::count(Metric::InsufficientCredits, 1);
                return Err(DebitError::Insufficient);
            }
            // A balance, the status or the period changed meanwhile: look again.
            DebitOutcome::Refused => {}
        }
    }
    tracing::warn!(user = %user.hash(), "debit kept racing other changes");
    Err(DebitError::Unavailable)
}

/// Gives back what the debit of `debit_id` took (its price, to each balance it took from, or a
/// free message), when the chat service's model call failed after the debit: only if that
/// debit happened, at most once, under concurrency and retries (the refund is one transaction
/// that marks the debit's ledger item).
/// A caller may retry [`DebitError::Unavailable`] safely; once the erasure began,
/// [`DebitError::AccountDeleted`]. `Ok(RefundOutcome::NotCharged)` for an id that was never
/// charged (or whose debit is past its retention); `Ok(RefundOutcome::Lapsed)` for a credit of a
/// paid period that has ended since (nothing is given back: that period's credits are gone).
pub async fn refund_message<S: Ledger + ?Sized>(
    store: &S,
    user: &UserId,
    debit_id: &str,
) -> Result<RefundOutcome, DebitError> {
    let debit_id = DebitId::parse(debit_id)?;
    let outcome = store.refund(user, &debit_id).await?;
    tracing::info!(user = %user.hash(), ?outcome, "message refund");
    if outcome == RefundOutcome::Refunded {
        metrics::count(Metric::Refunds, 1);
    }
    Ok(outcome)
}

/// What [`grant_for_invoice`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    /// The invoice's credits were granted now.
    Granted,
    /// Nothing to do now: this invoice was granted before, a newer one was, it starts no period,
    /// it changes to a plan that adds nothing in this period, or it changes the plan in a period
    /// whose own invoice is not granted yet (the sync grants it after that one).
    NothingOwed,
}

/// Grants what `invoice`, paid for `plan`, owes: a period's credits (what was left expires, as
/// its `period_grant` entry says), or an upgrade's difference within the period
/// (`plan_upgrade`); once per invoice, only while subscribed. The rule is
/// [`crate::domain::UserRecord::grant`]. A grant refused although it is owed while the
/// subscription may still become active (`incomplete`: Stripe's `invoice.paid` overtook the
/// activation) is an error, `ApiError::SubscriptionNotActive`, so that a webhook fails and
/// Stripe's redelivery retries it: a paid period is never dropped silently. In any other status
/// (ended, past due, ...) no redelivery can change the answer: nothing is owed, and the event is
/// acknowledged.
pub async fn grant_for_invoice<S: Profiles + Ledger + ?Sized>(
    store: &S,
    user: &UserId,
    invoice: &PaidInvoice,
    plan: &Plan,
) -> Result<GrantOutcome, ApiError> {
    let Some(grant) = CreditGrant::of(invoice, plan) else {
        let reason = invoice.billing_reason.as_deref().unwrap_or("none");
        tracing::info!(user = %user.hash(), invoice = %invoice.id, reason, "paid invoice starts no period and changes no plan; no grant");
        return Ok(GrantOutcome::NothingOwed);
    };
    for pause in crate::race_pauses() {
        tokio::time::sleep(pause).await;
        let record = store
            .get_user(user)
            .await?
            .ok_or(ApiError::StorageUnavailable)?;
        let posting = match record.grant(&grant) {
            Ok(posting) => posting,
            Err(
                GrantRefusal::AlreadyGranted | GrantRefusal::Superseded | GrantRefusal::NoUpgrade,
            ) => {
                return Ok(GrantOutcome::NothingOwed);
            }
            Err(GrantRefusal::PeriodNotGranted) => {
                tracing::info!(user = %user.hash(), invoice = %invoice.id, "plan change in a period whose own invoice is not paid yet; granted after it");
                return Ok(GrantOutcome::NothingOwed);
            }
            Err(GrantRefusal::NotEntitled) if !record.subscription_status.may_become_entitled() => {
                tracing::warn!(user = %user.hash(), invoice = %invoice.id, status = %record.subscription_status, "paid invoice of a subscription that is not active and will not become so; no grant");
                metrics::count(Metric::UnentitledPaidInvoices, 1);
                return Ok(GrantOutcome::NothingOwed);
            }
            Err(GrantRefusal::NotEntitled) => {
                tracing::warn!(user = %user.hash(), invoice = %invoice.id, status = %record.subscription_status, "paid period owed but the subscription is not active yet");
                return Err(ApiError::SubscriptionNotActive);
            }
        };
        let posted = match store.post(user, &posting).await {
            // The account is being erased: its credits go with it, nothing is owed.
            Err(crate::store::StoreError::Erasing) => return Ok(GrantOutcome::NothingOwed),
            posted => posted?,
        };
        match posted {
            PostOutcome::Posted => {
                let kind = posting.entry.kind.as_str();
                tracing::info!(user = %user.hash(), invoice = %invoice.id, kind, plan = %plan.id, amount = posting.entry.amount, "credits granted");
                metrics::count(Metric::Grants, 1);
                return Ok(GrantOutcome::Granted);
            }
            PostOutcome::AlreadyPosted => return Ok(GrantOutcome::NothingOwed),
            PostOutcome::Moved => {}
        }
    }
    tracing::warn!(user = %user.hash(), "grant kept racing other changes");
    Err(ApiError::StorageUnavailable)
}

/// Grants pending pack session `session` of `user`, paid by `payment_intent`: the pack's
/// credits onto the purchased balance with its `pack_purchase` entry, once, only for a session
/// this service opened ([`crate::domain::UserRecord::pack_purchase`]). Returns whether it was
/// granted now (`false`: granted before, or not a session of ours, or the user is being erased).
pub async fn grant_pack<S: Profiles + Ledger + ?Sized>(
    store: &S,
    user: &UserId,
    session: &str,
    payment_intent: Option<&str>,
) -> Result<bool, ApiError> {
    let decide =
        |record: &UserRecord, _: &[Purchase]| record.pack_purchase(session, payment_intent).ok();
    let Some(posting) = post_decided(store, user, Reads::Record, decide).await? else {
        return Ok(false);
    };
    let pack = posting.entry.pack.as_deref().unwrap_or_default();
    tracing::info!(user = %user.hash(), pack, amount = posting.entry.amount, "pack granted");
    metrics::count(Metric::PacksGranted, 1);
    Ok(true)
}

/// What a posting rule decides on ([`post_decided`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reads {
    /// The record alone.
    Record,
    /// The record and the user's purchases (a clawback).
    RecordAndPurchases,
}

/// Posts what `decide` makes of the record of `user` as it stands (and of their purchases, as
/// `reads` says), deciding again on a fresh read while the record moves under it, up to
/// `RACE_ATTEMPTS` times. `Ok(Some(posting))` when it was posted now; `Ok(None)` when the rule
/// owes nothing, it was posted before, or the user has no record or is being erased.
pub(crate) async fn post_decided<S, D>(
    store: &S,
    user: &UserId,
    reads: Reads,
    decide: D,
) -> Result<Option<Posting>, ApiError>
where
    S: Profiles + Ledger + ?Sized,
    D: Fn(&UserRecord, &[Purchase]) -> Option<Posting>,
{
    for pause in crate::race_pauses() {
        tokio::time::sleep(pause).await;
        let Some(record) = store.get_user(user).await? else {
            return Ok(None);
        };
        let purchases = match reads {
            Reads::Record => Vec::new(),
            Reads::RecordAndPurchases => store.purchases(user).await?,
        };
        let Some(posting) = decide(&record, &purchases) else {
            return Ok(None);
        };
        match store.post(user, &posting).await {
            Ok(PostOutcome::Posted) => return Ok(Some(posting)),
            Ok(PostOutcome::AlreadyPosted) | Err(StoreError::Erasing | StoreError::NoRecord) => {
                return Ok(None);
            }
            Ok(PostOutcome::Moved) => {}
            Err(err) => return Err(err.into()),
        }
    }
    tracing::warn!(user = %user.hash(), "posting kept racing other changes");
    Err(ApiError::StorageUnavailable)
}

/// What [`adjust`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustOutcome {
    /// Applied now; the balance is now this.
    Adjusted(i64),
    /// An adjustment with this id was applied before: nothing was done now.
    AlreadyApplied,
}

/// Why [`adjust`] changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdjustError {
    /// The rule refused it ([`crate::domain::UserRecord::adjustment`]).
    #[error(transparent)]
    Refused(#[from] AdjustmentRefusal),
    /// The user has no record (never seen, or erased).
    #[error("no such user")]
    NoUser,
    /// Storage failed, or the record kept moving: nothing was written; retry with the same id.
    #[error("storage unavailable: {0}")]
    Unavailable(#[from] StoreError),
}

/// An operator's grant (`amount > 0`) or removal of `amount` from `balance` of `user`, with an
/// `adjustment` entry that names `operator` and `reason`: never below zero, at most once per
/// `id` (the operator tool's: a retry with the same id changes nothing).
pub async fn adjust<S: Profiles + Ledger + ?Sized>(
    store: &S,
    user: &UserId,
    balance: Balance,
    amount: i64,
    reason: &str,
    operator: &str,
    id: &str,
) -> Result<AdjustOutcome, AdjustError> {
    let adjustment = Adjustment {
        id,
        balance,
        amount,
        reason,
        operator,
        at: crate::unix_now(),
    };
    for pause in crate::race_pauses() {
        tokio::time::sleep(pause).await;
        let record = store.get_user(user).await?.ok_or(AdjustError::NoUser)?;
        let posting = record.adjustment(&adjustment)?;
        match store.post(user, &posting).await {
            Ok(PostOutcome::Posted) => {
                tracing::info!(user = %user.hash(), operator, amount, balance = balance.as_str(), "credits adjusted");
                return Ok(AdjustOutcome::Adjusted(posting.entry.balance_after));
            }
            Ok(PostOutcome::AlreadyPosted) => return Ok(AdjustOutcome::AlreadyApplied),
            Ok(PostOutcome::Moved) => {}
            Err(StoreError::NoRecord | StoreError::Erasing) => return Err(AdjustError::NoUser),
            Err(err) => return Err(err.into()),
        }
    }
    Err(StoreError::Unavailable("the record kept moving".into()).into())
}
