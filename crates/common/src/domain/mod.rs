//! The domain: what a user, a subscription, a paid period, a debit, a webhook event and an
//! erasure are, and the rules that hold for them alone. The leaf of the crate: it knows nothing
//! of storage, HTTP, Stripe or configuration, and everything else builds on it.
//!
//! | module | holds |
//! |---|---|
//! | [`user`] | [`UserId`] and the stored [`UserRecord`] |
//! | [`subscription`] | the typed [`SubscriptionStatus`] with its rules, and a [`SubscriptionView`] |
//! | [`ledger`] | paid periods ([`CreditGrant`]) and debits of messages: balances and outcomes |
//! | [`entries`] | the credit ledger: its [`Entry`]s, their keys and the day's entries |
//! | [`postings`] | the rules that decide each change of a balance: a [`Posting`], or why none |
//! | [`events`] | the processing of a webhook event: claims, outcomes, leases |
//! | [`plans`] | what is sold: the [`Catalogue`] of plans, and [`MessagePrices`] per model |
//! | [`packs`] | credit packs sold once ([`Packs`]), the sessions opened for them, their grant |
//! | [`clawbacks`] | what a payment bought ([`Purchase`]), taken back when its money goes back |
//! | [`limits`] | limits per caller: the Stripe calls one user may cause per window |
//! | [`reconcile`] | when billing may have moved without a webhook, and how far a pass got |
//! | [`erasure`] | how far an erasure got ([`ErasureStage`]) and what it leaves ([`Tombstone`]) |
//! | [`holdings`] | what this service holds of a user, item by item ([`Held`]): what an export is made of |

pub mod clawbacks;
pub mod entries;
pub mod erasure;
pub mod events;
pub mod holdings;
pub mod ledger;
pub mod limits;
pub mod packs;
pub mod plans;
pub mod postings;
pub mod reconcile;
pub mod subscription;
pub mod user;

pub use clawbacks::{ClawbackRefusal, DisputeStatus, MoneyBack, Purchase};
pub use entries::{DailyStep, Entry, EntryKey, EntryKind};
pub use erasure::{ErasureStage, Tombstone};
pub use events::{EVENT_LEASE_SECS, EVENT_RETENTION_SECS, EventClaim, EventOutcome, EventState};
pub use holdings::{Held, HeldDebit, HeldKey};
pub use ledger::{
    Balance, Charge, CreditGrant, DEBIT_RETENTION_SECS, DebitId, DebitOutcome, InvalidDebitId,
    PaidInvoice, Payment, Period, RefundOutcome, Take,
};
pub use limits::StripeAllowance;
pub use packs::{Pack, PackId, PackRefusal, Packs, PendingPack, UnknownPack};
pub use plans::{Catalogue, MessagePrices, Plan, PlanId};
pub use postings::{Adjustment, AdjustmentRefusal, GrantRefusal, PostOutcome, Posting, Seen};
pub use reconcile::{DuePosition, ReconcileCursor};
pub use subscription::{FREE_PLAN, SubscriptionStatus, SubscriptionView};
pub use user::{Caller, OpenCheckout, UserId, UserRecord};
