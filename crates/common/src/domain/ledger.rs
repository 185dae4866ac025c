//! Paid periods and the debits of messages: the balances, what a grant or a debit is, and
//! what came of it.

use super::plans::{Plan, PlanId};
use super::subscription::SubscriptionStatus;

/// The credits of one paid invoice: a period's, or a plan change's within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditGrant {
    /// The invoice (`in_...`): each is granted at most once.
    pub invoice_id: String,
    /// Its creation time, Unix seconds: an older invoice never resets a newer period.
    pub invoice_created: i64,
    /// The plan it pays for.
    pub plan: PlanId,
    /// That plan's credits per period.
    pub credits: i64,
    /// Whether it starts a period ([`PaidInvoice::starts_a_period`]); else it changes the
    /// plan within the current one ([`PaidInvoice::changes_plan`]).
    pub starts_period: bool,
    /// The start of the period it pays into ([`PaidInvoice::period_start`]), Unix seconds.
    pub period_start: Option<i64>,
    /// The end of the period it pays into ([`PaidInvoice::period_end`]), Unix seconds.
    pub period_end: Option<i64>,
    /// Whether it starts a period while crediting the unused time of the one before (a switch
    /// that resets the billing cycle): it grants only beyond the most granted in that period
    /// ([`PaidInvoice::switches_period`]).
    pub switches_period: bool,
}

impl CreditGrant {
    /// The period it pays into, start and end, when its invoice's line says both.
    pub fn period(&self) -> Option<(i64, i64)> {
        self.period_start.zip(self.period_end)
    }

    /// The grant `invoice` owes under `plan`, if it starts a period or changes the plan.
    pub fn of(invoice: &PaidInvoice, plan: &Plan) -> Option<CreditGrant> {
        (invoice.starts_a_period() || invoice.changes_plan()).then(|| CreditGrant {
            invoice_id: invoice.id.clone(),
            invoice_created: invoice.created,
            plan: plan.id.clone(),
            credits: plan.credits,
            starts_period: invoice.starts_a_period(),
            period_start: invoice.period_start,
            period_end: invoice.period_end,
            switches_period: invoice.switches_period(),
        })
    }
}

/// A paid invoice, as far as credits are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidInvoice {
    /// `in_...`.
    pub id: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Why Stripe issued it (`subscription_create`, `subscription_cycle`, `subscription_update`,
    /// `manual`, ...); see [`PaidInvoice::starts_a_period`].
    pub billing_reason: Option<String>,
    /// The price it paid for, if a line names one: of an invoice that starts a period, its
    /// largest line that is not a proration (the period's price); of a plan change, its largest
    /// positive line (the new plan's remaining time).
    pub price_id: Option<String>,
    /// The start of the period that line pays for, Unix seconds (of a plan change: the time of
    /// the change). A period starting later is a newer one.
    pub period_start: Option<i64>,
    /// The end of the period that line pays for, Unix seconds: the period the invoice pays
    /// into. Periods are told apart by their lines, not by when their invoices were created: a
    /// renewal finalised an hour late is created before a plan change made in that hour.
    pub period_end: Option<i64>,
    /// Whether a line credits unused time (a negative proration): the period before was paid
    /// for and is cut short.
    pub credits_unused_time: bool,
    /// Whether a line pays for a whole period of a subscription item (not a proration): a
    /// `subscription_update` invoice with one starts a period ([`PaidInvoice::starts_a_period`]).
    pub pays_a_whole_period: bool,
}

impl PaidInvoice {
    /// Whether the invoice starts a billing period, and so grants the plan's credits: the first
    /// invoice of a subscription (`subscription_create`), each renewal (`subscription_cycle`),
    /// and a `subscription_update` that charges a whole new period (a billing cycle reset by
    /// `billing_cycle_anchor=now`, a switch between monthly and yearly, a trial ended now).
    /// The others do not reset the balance mid-period: any other `subscription_update` (a
    /// prorated plan or quantity change: [`PaidInvoice::changes_plan`]),
    /// `subscription_threshold` (a usage threshold), `manual` (a one-off invoice),
    /// `quote_accept`, `upcoming`, and an invoice without a reason.
    pub fn starts_a_period(&self) -> bool {
        match self.billing_reason.as_deref() {
            Some("subscription_create" | "subscription_cycle") => true,
            Some("subscription_update") => self.pays_a_whole_period,
            _ => false,
        }
    }

    /// Whether the invoice starts a period by a switch that cuts the paid one before short (a
    /// `subscription_update` charging a whole period and crediting unused time): Stripe credits
    /// the unused time, so the switch grants only the new plan's credits beyond the most
    /// granted, as an upgrade does; switching back and forth grants nothing more. A trial ended
    /// early credits nothing and starts its first paid period in full.
    pub fn switches_period(&self) -> bool {
        self.starts_a_period()
            && self.billing_reason.as_deref() == Some("subscription_update")
            && self.credits_unused_time
    }

    /// Whether the invoice is the proration of a change of plan within a period (a
    /// `subscription_update` of prorations only): an upgrade grants the difference once it is
    /// paid.
    pub fn changes_plan(&self) -> bool {
        self.billing_reason.as_deref() == Some("subscription_update") && !self.pays_a_whole_period
    }
}

/// A balance of a user's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Balance {
    /// The plan's credits of the current period, for subscribers: reset by each paid period.
    Credits,
    /// Lifetime free messages (`free_messages_remaining`), for everyone else.
    FreeMessages,
    /// Credits bought in packs: never reset; spent after the plan's credits (subscribers) or
    /// the free messages (everyone else), lost only with the account.
    Purchased,
}

/// One balance's part of a message's price: what a debit takes from it, and what it stood at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    /// The balance.
    pub balance: Balance,
    /// What is taken from it (at least 1).
    pub amount: i64,
    /// The balance as read: the debit is refused if it moved meanwhile.
    pub before: i64,
}

/// How a message is paid ([`crate::domain::UserRecord::payment_for`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The balances it takes from, in order (one or two).
    pub takes: Vec<Take>,
    /// Whether they cover the price; if not, `takes` asks for more than there is, so that a
    /// store takes nothing (and still answers a debit charged before as charged).
    pub affordable: bool,
}

/// How long a debit id is remembered (its ledger item's TTL): a retry within it is charged once.
pub const DEBIT_RETENTION_SECS: i64 = 24 * 3600;

/// The id that names one message's debit (the chat service's message id), parsed once: 1 to
/// [`DebitId::MAX_LEN`] printable ASCII characters. An empty or constant id would make every
/// message a retry of the first (free for a day); an over-long one would not fit in a key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DebitId(String);

/// Why a debit id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a debit id is 1 to 128 printable ASCII characters")]
pub struct InvalidDebitId;

impl DebitId {
    /// The longest debit id accepted.
    pub const MAX_LEN: usize = 128;

    /// Accepts `raw` if it is 1 to [`DebitId::MAX_LEN`] printable ASCII characters (space to `~`).
    pub fn parse(raw: &str) -> Result<DebitId, InvalidDebitId> {
        let printable = raw.bytes().all(|b| (b' '..=b'~').contains(&b));
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !printable {
            return Err(InvalidDebitId);
        }
        Ok(DebitId(raw.to_owned()))
    }

    /// The id itself, for storage keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Debug shows the length only: a message id is the chat service's, not for our logs.
impl std::fmt::Debug for DebitId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DebitId(len {})", self.0.len())
    }
}

/// One message's debit, as a store applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge<'a> {
    /// Names the message: a debit with an id charged within [`DEBIT_RETENTION_SECS`] is not
    /// charged again, unless it was refunded (then it is charged anew: the message is retried).
    pub debit_id: &'a DebitId,
    /// What it takes from which balance (one or two distinct balances, each at least 1), all
    /// or nothing: refused if a balance moved meanwhile or is below its part (nothing is taken;
    /// a debit of this id charged before is still answered as charged). The day's usage entry
    /// of each balance records the exact balance after it.
    pub takes: &'a [Take],
    /// The subscription status the balances were chosen under: the debit is refused if it
    /// changed, so the payer cannot change under it.
    pub status_seen: &'a SubscriptionStatus,
    /// The paid period the plan's credits were read in ([`Period`]): a debit taking from them is
    /// refused if a new one began meanwhile, and its refund gives them back only within it.
    pub period: Period,
    /// When, Unix seconds.
    pub at: i64,
}

impl Charge<'_> {
    /// Whether a store can apply it as asked: one or two distinct balances, each part at least
    /// 1 and covered by its balance as read.
    pub fn is_payable(&self) -> bool {
        let distinct = match self.takes {
            [_] => true,
            [first, second] => first.balance != second.balance,
            _ => false,
        };
        distinct
            && self
                .takes
                .iter()
                .all(|take| take.amount >= 1 && take.before >= take.amount)
    }
}

/// Which paid period a credit belongs to: the creation time of the invoice that started it
/// (the record's `last_grant_created`; 0 before any grant). Free messages have no periods.
pub type Period = i64;

/// What a store's debit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebitOutcome {
    /// Charged now.
    Charged,
    /// This debit id was charged before; nothing was charged now.
    AlreadyCharged,
    /// The balance, the status or the period is no longer what was read, the user is being
    /// erased, or there is no record: nothing was written.
    Refused,
}

/// What a store's refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    /// What the debit took was given back now, to the balances it took from (but the plan's
    /// credits of a period that has ended since, which are gone).
    Refunded,
    /// The debit took only credits of a paid period that has ended since (renewed, or the
    /// subscription ended): nothing was given back, since that period's credits are gone; the
    /// debit counts as refunded (a retry of the message is charged anew).
    Lapsed,
    /// This debit was refunded before; nothing was given now.
    AlreadyRefunded,
    /// No debit with this id was charged (in the retention period): nothing to give back.
    NotCharged,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debit_ids_are_one_to_128_printable_ascii_characters() {
        for good in ["m", "msg_01J9Z#retry-2", &"x".repeat(128), "a b~"] {
            assert_eq!(DebitId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", &"x".repeat(129), "tab\there", "é", "line\n", "nul\0"] {
            assert_eq!(DebitId::parse(bad), Err(InvalidDebitId), "{bad:?}");
        }
        assert!(!format!("{:?}", DebitId::parse("secret-msg").unwrap()).contains("secret"));
    }
}
