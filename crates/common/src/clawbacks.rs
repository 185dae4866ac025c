//! Money that went back at Stripe: a refund or a dispute of a charge takes back the credits of
//! the purchase the charge paid for, by the rules of [`crate::domain::clawbacks`]. The webhook
//! (`charge.refunded`, `charge.dispute.*`: an inquiry that becomes a chargeback withdraws its
//! funds without a new `created`) and the sync both
//! re-read the charge from Stripe and settle it here: no event's body decides anything, and a
//! lost or repeated event changes nothing the next sync would not.
//!
//! A charge is matched to a purchase kept here: a pack by its PaymentIntent; an invoice through
//! the invoice payment of that PaymentIntent (asked only when the user has plan credits a
//! refund could take). A charge of anything else (not sold here, of a past period, or of an
//! erased user) takes nothing and is acknowledged.

use crate::billing::Billing;
use crate::billing::charges::ChargeSeen;
use crate::credits::{Reads, post_decided};
use crate::domain::clawbacks::KEPT_SECS;
use crate::domain::{Balance, Purchase, UserId, UserRecord};
use crate::error::ApiError;
use crate::metrics::{self, Metric};
use crate::store::{CustomerLinks, Ledger, Profiles};

/// The events that say a charge's money moved: each re-reads the charge.
pub const CHARGE_EVENTS: [&str; 5] = [
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
    "charge.dispute.closed",
];

/// Settles charge `charge` (an event's, re-read here) for the user its customer is linked to.
/// A charge Stripe does not hold, of no customer, or of a customer linked to no one (never
/// ours, or erased) changes nothing.
pub async fn settle_charge_event<S>(
    billing: &Billing,
    store: &S,
    charge: &str,
) -> Result<(), ApiError>
where
    S: Profiles + Ledger + CustomerLinks + ?Sized,
{
    let Some(charge) = billing.charge(charge).await? else {
        tracing::info!("event for a charge Stripe does not hold; ignored");
        return Ok(());
    };
    let customer = charge.customer.as_deref();
    let user = match customer {
        Some(customer) => store.user_for_customer(customer).await?,
        None => None,
    };
    let Some(user) = user else {
        tracing::info!("charge of a customer linked to no one; nothing to take back");
        return Ok(());
    };
    settle_charge(billing, store, &user, &charge)
        .await
        .map(drop)
}

/// For the sync, when it lists charges ([`crate::domain::clawbacks::charges_to_list`] at `now`):
/// settles each charge of `record`'s customer of the last [`KEPT_SECS`] whose money went back.
/// Returns whether a balance moved.
pub async fn settle_charges<S: Profiles + Ledger + ?Sized>(
    billing: &Billing,
    store: &S,
    record: &UserRecord,
    now: i64,
) -> Result<bool, ApiError> {
    let Some(customer) = &record.stripe_customer_id else {
        return Ok(false);
    };
    let charges = billing.charges_since(customer, now - KEPT_SECS).await?;
    let mut moved = false;
    for charge in charges.iter().filter(|charge| charge.money_went_back()) {
        moved |= settle_charge(billing, store, &record.user_id, charge).await?;
    }
    Ok(moved)
}

/// [`settle_charges`] as the sync runs it: best effort. Returns whether a balance moved, or
/// `None` when it failed: the failure is logged and leaves the charges to the next sync (which
/// lists them again, since this listing is not recorded) or their webhook; the subscription's
/// state is answered all the same.
pub async fn settle_charges_in_sync<S: Profiles + Ledger + ?Sized>(
    billing: &Billing,
    store: &S,
    record: &UserRecord,
    now: i64,
) -> Option<bool> {
    match settle_charges(billing, store, record, now).await {
        Ok(moved) => Some(moved),
        Err(err) => {
            tracing::warn!(user = %record.user_id.hash(), %err, "money that went back not settled now; the next sync tries again");
            None
        }
    }
}

/// Takes back what the refunds and the dispute of `charge` owe from the purchase it paid for
/// (once per cumulative refunded amount, once per dispute), or gives back a won dispute's hold.
/// Returns whether a balance moved.
async fn settle_charge<S: Profiles + Ledger + ?Sized>(
    billing: &Billing,
    store: &S,
    user: &UserId,
    charge: &ChargeSeen,
) -> Result<bool, ApiError> {
    if !charge.money_went_back() {
        return Ok(false);
    }
    let Some(key) = purchase_of(billing, store, user, charge).await? else {
        tracing::info!(user = %user.hash(), "money went back on a charge of nothing kept here; nothing taken");
        return Ok(false);
    };
    let now = crate::unix_now();
    let money = &charge.money;
    let mut moved = false;
    if money.amount_refunded > 0 {
        let refund = |record: &UserRecord, purchases: &[Purchase]| {
            record.refund_clawback(purchases, &key, money, now).ok()
        };
        moved |= posted(store, user, refund).await?;
    }
    let dispute = match charge.disputed {
        true => billing.dispute_of(&money.charge).await?,
        false => None,
    };
    if let Some((dispute, status)) = dispute {
        let hold = |record: &UserRecord, purchases: &[Purchase]| {
            let rule = record.dispute_clawback(purchases, &key, &dispute, status, money, now);
            rule.ok()
        };
        moved |= posted(store, user, hold).await?;
    }
    Ok(moved)
}

/// Posts the clawback `decide` makes, logging and counting it; whether one was posted.
async fn posted<S, D>(store: &S, user: &UserId, decide: D) -> Result<bool, ApiError>
where
    S: Profiles + Ledger + ?Sized,
    D: Fn(&UserRecord, &[Purchase]) -> Option<crate::domain::Posting>,
{
    let Some(posting) = post_decided(store, user, Reads::RecordAndPurchases, decide).await? else {
        return Ok(false);
    };
    let entry = &posting.entry;
    tracing::info!(user = %user.hash(), kind = %entry.kind, amount = entry.amount, spent = entry.spent.unwrap_or(0), "credits moved by money that went back");
    metrics::count(Metric::Clawbacks, 1);
    Ok(true)
}

/// The key of the purchase `charge` paid for among those kept for `user`: its PaymentIntent (a
/// pack), or the invoice that PaymentIntent paid (asked of Stripe only when an invoice
/// purchase is kept).
async fn purchase_of<S: Ledger + ?Sized>(
    billing: &Billing,
    store: &S,
    user: &UserId,
    charge: &ChargeSeen,
) -> Result<Option<String>, ApiError> {
    let Some(intent) = charge.payment_intent.as_deref() else {
        return Ok(None);
    };
    let purchases = store.purchases(user).await?;
    if purchases.iter().any(|purchase| purchase.key == intent) {
        return Ok(Some(intent.to_owned()));
    }
    if !purchases.iter().any(|p| p.balance == Balance::Credits) {
        return Ok(None);
    }
    let invoice = billing.invoice_paid_by(intent).await?;
    Ok(invoice.filter(|invoice| purchases.iter().any(|p| &p.key == invoice)))
}
