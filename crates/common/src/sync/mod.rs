//! The subscription sync: one function, used by `POST /v1/stripe/sync-subscription`, the
//! webhook, checkout and reconciliation, that re-reads Stripe and writes what it finds. Because
//! it always writes Stripe's current state, stamped with when it was observed, the order and
//! repetition of calls cannot corrupt the record, and an older view never overwrites a newer
//! one. It is also the one place credits are granted: the paid period the record has not had
//! yet, and a plan change's difference, from the subscription's invoices as Stripe answers them
//! (its latest, and its recent paid ones when the latest was not granted: once per invoice id,
//! oldest period first), so a payer whose `invoice.paid` never arrived is repaired by the next
//! sync, and no event's body can grant anything.
//!
//! It also settles the credit packs: each pack Checkout session this service opened and has
//! not granted is re-read by id, and granted once paid ([`settle_packs`]); and, while a purchase
//! may still be refunded, once a week, the customer's charges whose money went back are settled
//! ([`crate::clawbacks::settle_charges`], [`crate::domain::clawbacks::charges_to_list`]).
//!
//! Only subscriptions to a price of this service's catalogue count ([`ours`]): any other
//! subscription of the customer (sold elsewhere on the same Stripe account) is ignored for
//! status and grants. The plan shown and granted is the one of the subscription's price (of an
//! invoice, the price it paid for), decided here alone. Of
//! ours, one may be live: a second (opened through the dashboard or a race) is refunded and
//! canceled at once, the older kept ([`close_duplicates`]).

mod invoices;
mod view;

pub use invoices::paid_invoice;
pub use view::{decide, pick, recheck};

use stripe_billing::Subscription;

use self::invoices::invoices_to_grant;
use crate::billing::sessions::PackPayment;
use crate::billing::{Billing, status_of};
use crate::config::StripeConfig;
use crate::credits::{GrantOutcome, grant_for_invoice, grant_pack};
use crate::domain::UserId;
use crate::domain::{CreditGrant, PaidInvoice, Plan, SubscriptionView, UserRecord};
use crate::error::ApiError;
use crate::metrics::{self, Metric};
use crate::store::{CustomerLinks, Ledger, Profiles};

/// Pulls the subscriptions of the customer of `record` from Stripe, writes the one that matters,
/// and grants its latest paid period if owed. Returns the record as it now stands. A user
/// without a customer keeps the free status.
pub async fn sync_subscription<S: Profiles + Ledger + ?Sized>(
    billing: &Billing,
    store: &S,
    record: UserRecord,
) -> Result<UserRecord, ApiError> {
    let Some(customer) = record.stripe_customer_id.clone() else {
        return Ok(record);
    };
    let observed_at_ms = crate::unix_now_ms();
    let listed = billing.list_subscriptions(&customer).await?;
    let subscriptions = ours(listed, &billing.config, &record.user_id);
    let subscriptions = close_duplicates(billing, subscriptions, &record.user_id).await?;
    let mut view = decide(&subscriptions, &billing.config, observed_at_ms, &record);
    // The charges are listed at most weekly: the view records a listing that succeeded.
    let now = observed_at_ms / 1000;
    let list_charges = crate::domain::clawbacks::charges_to_list(
        record.refundable_until,
        record.charges_listed_at,
        now,
    );
    // On the record as read: a purchase granted by this very sync is looked after from the next
    // listing (or by its charge's events), which keeps a grant's sync to its own calls.
    let clawed = match list_charges {
        true => crate::clawbacks::settle_charges_in_sync(billing, store, &record, now).await,
        false => None,
    };
    if clawed.is_some() {
        view.charges_listed_at = Some(now);
    }
    let entitled = pick(&subscriptions).filter(|_| view.status.is_entitled());
    let paid = match entitled {
        Some(subscription) => invoices_to_grant(billing, subscription, &record).await?,
        None => Vec::new(),
    };
    let catalogue = &billing.config.catalogue;
    let grants: Vec<(PaidInvoice, &Plan)> = paid
        .into_iter()
        .filter_map(|invoice| {
            // A plan change names its plan by a line of its own, or grants nothing.
            let fallback = view
                .price_id
                .as_deref()
                .filter(|_| invoice.starts_a_period());
            // A period without a line of ours is the subscription's own plan's.
            let plan = catalogue.for_price(invoice.price_id.as_deref().or(fallback)?)?;
            Some((invoice, plan))
        })
        .collect();
    // While a grant is owed the user stays due as they were, so that a sync stopped between
    // the view and the grant (a reconciliation run's deadline) is visited again by the pass;
    // the view's own next check is written once the grant is done.
    let owed = grants.iter().any(|(invoice, plan)| {
        CreditGrant::of(invoice, plan).is_some_and(|grant| record.lacks_grant(&grant))
    });
    let first = SubscriptionView {
        next_check: match owed {
            true => record.next_check.or(view.next_check),
            false => view.next_check,
        },
        ..view.clone()
    };
    let applied = store.apply_subscription(&record.user_id, &first).await?;
    if applied {
        tracing::info!(user = %record.user_id.hash(), status = %view.status, "subscription synced");
    }
    // Oldest period first, each period's own invoice before its plan changes: each grant is
    // decided on the record the one before it left.
    let mut granted = false;
    for (invoice, plan) in &grants {
        match grant_for_invoice(store, &record.user_id, invoice, plan).await {
            Ok(outcome) => granted |= outcome == GrantOutcome::Granted,
            // A newer view (not active) was stored meanwhile: nothing is owed now.
            Err(ApiError::SubscriptionNotActive) => {}
            Err(err) => return Err(err),
        }
    }
    if owed {
        // Granted: the period is paid, so the next check is the paid period's.
        let settled = SubscriptionView {
            observed_at_ms: view.observed_at_ms + 1,
            next_check: recheck(&view, &record, true, &billing.config),
            ..view.clone()
        };
        store.apply_subscription(&record.user_id, &settled).await?;
    }
    let packs_moved = settle_packs(billing, store, &record).await?;
    if applied && !granted && !owed && !packs_moved && clawed != Some(true) {
        return Ok(record.with_subscription(&view));
    }
    // A grant, or a newer view written meanwhile: read what stands.
    let user = record.user_id;
    store.get_user(&user).await?.ok_or(ApiError::Internal)
}

/// Asks Stripe what became of each pack session this service opened for `record` and has not
/// granted: a paid one is granted (once), one that will never be paid is forgotten, as is one
/// kept past [`crate::domain::PendingPack::KEPT_SECS`]. Returns whether the record changed.
async fn settle_packs<S: Profiles + Ledger + ?Sized>(
    billing: &Billing,
    store: &S,
    record: &UserRecord,
) -> Result<bool, ApiError> {
    let mut moved = false;
    let now = crate::unix_now();
    for pending in &record.pending_packs {
        let session = pending.session_id.as_str();
        match billing.pack_payment(session).await? {
            PackPayment::Paid { payment_intent } => {
                let user = &record.user_id;
                moved |= grant_pack(store, user, session, payment_intent.as_deref()).await?;
            }
            PackPayment::NotYet if !pending.stale_at(now) => {}
            PackPayment::NotYet | PackPayment::Never => {
                tracing::info!(user = %record.user_id.hash(), pack = %pending.pack, "pack session will not be paid; forgotten");
                store.drop_pending_pack(&record.user_id, session).await?;
                moved = true;
            }
        }
    }
    Ok(moved)
}

/// The subscriptions to a price of this service's catalogue (sold or retired) among `listed`;
/// each other one is logged and counted, and ignored.
pub fn ours(listed: Vec<Subscription>, config: &StripeConfig, user: &UserId) -> Vec<Subscription> {
    let (ours, foreign): (Vec<_>, Vec<_>) = listed.into_iter().partition(|subscription| {
        let items = &subscription.items.data;
        items
            .iter()
            .any(|item| config.catalogue.for_price(item.price.id.as_str()).is_some())
    });
    if !foreign.is_empty() {
        tracing::warn!(user = %user.hash(), ignored = foreign.len(), "subscriptions to a price this service does not sell; ignored");
        metrics::count(Metric::ForeignSubscriptionsIgnored, foreign.len() as u64);
    }
    ours
}

/// Keeps one live subscription of `subscriptions` (not ended): the one that matters most, by
/// [`crate::domain::SubscriptionStatus::rank`] (a paying one before one in dunning), the oldest
/// within a rank. Each other live one has its latest invoice's payment refunded, then is
/// canceled at once (refund first, so that a failure in between is finished by the next sync,
/// which sees it live again; both steps are idempotent). Returns the subscriptions without
/// those canceled.
pub async fn close_duplicates(
    billing: &Billing,
    mut subscriptions: Vec<Subscription>,
    user: &UserId,
) -> Result<Vec<Subscription>, ApiError> {
    let oldest_live = subscriptions
        .iter()
        .filter(|s| !status_of(s).ends_paid_credits())
        .min_by_key(|s| (status_of(s).rank(), s.created, s.id.to_string()))
        .map(|s| s.id.clone());
    let Some(kept) = oldest_live else {
        return Ok(subscriptions);
    };
    let duplicates: Vec<Subscription> = subscriptions
        .extract_if(.., |s| s.id != kept && !status_of(s).ends_paid_credits())
        .collect();
    for duplicate in &duplicates {
        let invoice = duplicate
            .latest_invoice
            .as_ref()
            .and_then(|i| i.id().clone());
        let refunded = match invoice {
            Some(invoice) => billing.refund_invoice(invoice.as_str()).await?,
            None => 0,
        };
        billing.cancel_subscription(duplicate.id.as_str()).await?;
        tracing::warn!(user = %user.hash(), refunded, "a second live subscription: refunded and canceled; the older one kept");
        metrics::count(Metric::DuplicateSubscriptionsCanceled, 1);
    }
    Ok(subscriptions)
}

/// [`sync_subscription`] for the user linked to `customer` (webhooks). A customer we don't know,
/// or whose user is gone (erased), changes nothing: `Ok(None)`. Never creates a record.
pub async fn sync_customer<S>(
    billing: &Billing,
    store: &S,
    customer: &str,
) -> Result<Option<UserRecord>, ApiError>
where
    S: Profiles + CustomerLinks + Ledger + ?Sized,
{
    let Some(user) = store.user_for_customer(customer).await? else {
        tracing::info!("event for an unknown customer; ignored");
        return Ok(None);
    };
    let Some(record) = store.get_user(&user).await? else {
        tracing::info!(user = %user.hash(), "event for a user without a record; ignored");
        return Ok(None);
    };
    sync_subscription(billing, store, record).await.map(Some)
}
