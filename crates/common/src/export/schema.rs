//! The export's document, part by part: what `GET /v1/user/export` answers (`schema_version`
//! [`super::SCHEMA_VERSION`]; described in `docs/api.md`, "Export", and `openapi.yaml`).

use serde::Serialize;

use crate::history::EntryView;

/// The document.
#[derive(Debug, Clone, Serialize)]
pub struct UserExport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When it was made, RFC 3339 UTC.
    pub exported_at: String,
    /// The account's id (the token's `sub`).
    pub user_id: String,
    /// The profile and billing record; `null` if the account was never seen here.
    pub profile: Option<ProfileExport>,
    /// The Stripe customers linked to the account.
    pub stripe_customers: Vec<LinkedCustomer>,
    /// Every ledger entry, oldest first.
    pub ledger: Vec<EntryExport>,
    /// The messages charged in the last 24 hours (kept so a retry is not charged twice).
    pub debits: Vec<DebitExport>,
    /// What each payment of the last 180 days bought (kept so a refund can take it back).
    pub purchases: Vec<PurchaseExport>,
    /// The ids of operator adjustments done once (a retry changes nothing).
    pub adjustment_ids: Vec<String>,
    /// The erasure under way, if one began and has not finished.
    pub erasure: Option<ErasureExport>,
    /// The rules that applied to the account.
    pub rules: RulesExport,
    /// Items other services keep under the account, by kind: they export them.
    pub held_by_other_services: Vec<KindCount>,
}

/// The profile and billing record.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileExport {
    /// When the account was first seen, RFC 3339.
    pub created_at: String,
    /// `free` or the plan's id.
    pub plan: String,
    /// Stripe's subscription status, or `none`.
    pub subscription_status: String,
    /// The subscription the status reflects.
    pub subscription_id: Option<String>,
    /// Its Stripe price.
    pub price_id: Option<String>,
    /// The end of its current period, RFC 3339.
    pub current_period_end: Option<String>,
    /// Whether it ends then.
    pub cancel_at_period_end: bool,
    /// The plan's credits left in this period.
    pub plan_credits: i64,
    /// The purchased credits left.
    pub purchased_credits: i64,
    /// The free messages granted, and left.
    pub free_messages_total: i64,
    /// See `free_messages_total`.
    pub free_messages_remaining: i64,
    /// The invoices whose credits were granted.
    pub granted_invoices: Vec<String>,
    /// The paid period last granted: its start and end, RFC 3339.
    pub paid_period_start: Option<String>,
    /// See `paid_period_start`.
    pub paid_period_end: Option<String>,
    /// When Stripe was last read for the account, RFC 3339.
    pub last_synced_at: Option<String>,
    /// When the account is next re-read from Stripe, RFC 3339.
    pub next_check_at: Option<String>,
    /// The subscription Checkout session that may still be open.
    pub open_checkout_session: Option<String>,
    /// The credit-pack Checkout sessions opened and not granted yet.
    pub pending_packs: Vec<PendingPackExport>,
    /// Until when a purchase may still be refunded or disputed, RFC 3339.
    pub refundable_until: Option<String>,
}

/// A pack Checkout session opened and not granted yet.
#[derive(Debug, Clone, Serialize)]
pub struct PendingPackExport {
    /// `cs_...`.
    pub session_id: String,
    /// The pack.
    pub pack: String,
    /// The credits it grants once paid.
    pub credits: i64,
    /// When it was opened, RFC 3339.
    pub created_at: String,
}

/// A Stripe customer linked to the account.
#[derive(Debug, Clone, Serialize)]
pub struct LinkedCustomer {
    /// `cus_...`.
    pub id: String,
    /// When it was linked, RFC 3339 (`null` for links older than the record of it).
    pub linked_at: Option<String>,
}

/// A ledger entry: what the history shows, and what caused it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryExport {
    /// As `GET /v1/user/credits` shows it.
    #[serde(flatten)]
    pub entry: EntryView,
    /// What caused it: the invoice, subscription, customer, session, charge, adjustment or day.
    pub cause: String,
    /// The plan of a period grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The end of a granted period, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_end: Option<String>,
    /// An adjustment's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The pack a purchase granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
    /// The Stripe PaymentIntent that paid it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<String>,
}

/// A charged message.
#[derive(Debug, Clone, Serialize)]
pub struct DebitExport {
    /// The message's debit id, as the chat service named it.
    pub id: String,
    /// Each balance it took from, and how much.
    pub takes: Vec<TakeExport>,
    /// Whether it was refunded.
    pub refunded: bool,
}

/// What a debit took from one balance.
#[derive(Debug, Clone, Serialize)]
pub struct TakeExport {
    /// `credits`, `purchased` or `free_messages`.
    pub balance: &'static str,
    /// How much.
    pub amount: i64,
}

/// What one payment bought.
#[derive(Debug, Clone, Serialize)]
pub struct PurchaseExport {
    /// The PaymentIntent (`pi_...`) of a pack, or the invoice (`in_...`).
    pub payment: String,
    /// `purchased` or `credits`.
    pub balance: &'static str,
    /// The credits it granted.
    pub credits: i64,
    /// When, RFC 3339.
    pub at: String,
    /// The credits its refunds accounted for.
    pub refunded: i64,
    /// Its dispute (`du_...`), if one was opened.
    pub dispute: Option<String>,
}

/// An erasure under way.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureExport {
    /// When it began, RFC 3339.
    pub began_at: String,
    /// `started`, or the last stage done: `stripe_closed`.
    pub stage: &'static str,
}

/// The rules that applied to the account.
#[derive(Debug, Clone, Serialize)]
pub struct RulesExport {
    /// The free messages a new signed-in account is given here.
    pub free_messages_per_account: i64,
    /// The plan's credits of the current period (the most granted in it); `null` before any.
    pub plan_credits_per_period: Option<i64>,
}

/// How many items of one kind another service keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindCount {
    /// The kind (the item's sort-key prefix).
    pub kind: String,
    /// How many.
    pub count: usize,
}
