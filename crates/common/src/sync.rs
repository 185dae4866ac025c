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

use stripe_billing::{Invoice, InvoiceLineItem, InvoiceStatus, Subscription};
use stripe_types::Expandable;

use crate::billing::sessions::PackPayment;
use crate::billing::{Billing, status_of};
use crate::config::StripeConfig;
use crate::credits::{GrantOutcome, grant_for_invoice, grant_pack};
use crate::domain::UserId;
use crate::domain::reconcile::{Standing, next_check};
use crate::domain::{
    Catalogue, CreditGrant, FREE_PLAN, PaidInvoice, Plan, SubscriptionView, UserRecord,
};
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

/// The paid invoices of `subscription` that may owe `record` credits, oldest period first and
/// within a period its own invoice before its plan changes. When its latest invoice (expanded)
/// was granted, nothing older can be owed: an older period's invoices are behind it, and a
/// plan change within its period could not be granted before the period's own invoice. Without
/// one, nothing is owed. Else the subscription's recent paid invoices are read too: a renewal
/// still being finalised when the plan changed is paid after that change's invoice, which is
/// then the latest.
async fn invoices_to_grant(
    billing: &Billing,
    subscription: &Subscription,
    record: &UserRecord,
) -> Result<Vec<PaidInvoice>, ApiError> {
    // Without an invoice, nothing was paid.
    let Some(Expandable::Object(latest)) = &subscription.latest_invoice else {
        return Ok(Vec::new());
    };
    let catalogue = &billing.config.catalogue;
    let granted = latest.id.as_ref();
    if granted.is_some_and(|id| record.granted_invoices.contains(id.as_str())) {
        return Ok(paid_invoice(latest, catalogue).into_iter().collect());
    }
    let recent = billing.paid_invoices(subscription.id.as_str()).await?;
    let mut paid: Vec<PaidInvoice> = recent
        .iter()
        .chain([latest.as_ref()])
        .filter_map(|invoice| paid_invoice(invoice, catalogue))
        .collect();
    // As periods are ordered: by start (a change's is its time, after its period's own).
    paid.sort_by_key(|invoice| {
        let period = invoice.period_start.unwrap_or(invoice.created);
        (period, !invoice.starts_a_period(), invoice.created)
    });
    paid.dedup_by(|a, b| a.id == b.id);
    Ok(paid)
}

/// `invoice` as far as credits are concerned, if it is paid: read from its lines of a price of
/// `catalogue` only (a line of another product on the same subscription, or a one-off fee,
/// never names the plan, its period, or whether the invoice starts one).
pub fn paid_invoice(invoice: &Invoice, catalogue: &Catalogue) -> Option<PaidInvoice> {
    if invoice.status != Some(InvoiceStatus::Paid) {
        return None;
    }
    let ours = |line: &&InvoiceLineItem| {
        price_of(line).is_some_and(|price| catalogue.for_price(price).is_some())
    };
    let lines: Vec<&InvoiceLineItem> = invoice.lines.data.iter().filter(ours).collect();
    let mut paid = PaidInvoice {
        id: invoice.id.as_ref()?.to_string(),
        created: invoice.created,
        billing_reason: invoice
            .billing_reason
            .as_ref()
            .map(|reason| reason.as_str().to_owned()),
        price_id: None,
        period_start: None,
        period_end: None,
        pays_a_whole_period: lines
            .iter()
            .any(|line| subscription_item(line) && !proration(line)),
        credits_unused_time: lines.iter().any(|line| proration(line) && line.amount < 0),
    };
    if let Some(line) = paid_line(&lines, paid.starts_a_period()) {
        paid.price_id = price_of(line).map(str::to_owned);
        paid.period_start = Some(line.period.start);
        paid.period_end = Some(line.period.end);
    }
    Some(paid)
}

/// The line of an invoice of `lines` that says what it paid for: of an invoice that starts a
/// period, its largest line that is not a proration (the period's price: prorations left over
/// from a change invoiced later never name the plan); of a plan change, its largest positive
/// line (the new plan's remaining time; the old plan's unused time is a negative line).
fn paid_line<'a>(
    lines: &[&'a InvoiceLineItem],
    starts_period: bool,
) -> Option<&'a InvoiceLineItem> {
    lines
        .iter()
        .copied()
        .filter(|line| match starts_period {
            true => !proration(line),
            false => line.amount > 0,
        })
        .max_by_key(|line| line.amount)
}

/// The price `line` bills, if it names one.
fn price_of(line: &InvoiceLineItem) -> Option<&str> {
    let details = line.pricing.as_ref()?.price_details.as_ref()?;
    Some(details.price.id().as_str())
}

/// Whether `line` is a proration (of a subscription item, or an invoice item).
fn proration(line: &InvoiceLineItem) -> bool {
    let parent = line.parent.as_ref();
    let item = parent.and_then(|p| p.subscription_item_details.as_ref());
    let invoice_item = parent.and_then(|p| p.invoice_item_details.as_ref());
    item.is_some_and(|d| d.proration) || invoice_item.is_some_and(|d| d.proration)
}

/// Whether `line` bills a subscription item (not a one-off invoice item).
fn subscription_item(line: &InvoiceLineItem) -> bool {
    use stripe_billing::BillingBillResourceInvoicingLinesParentsInvoiceLineItemParentType as Parent;
    let parent = line.parent.as_ref();
    parent.is_some_and(|p| p.type_ == Parent::SubscriptionItemDetails)
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

/// The subscription that matters among `subscriptions`: the best
/// [`crate::domain::SubscriptionStatus::rank`], the newest first within a rank.
pub fn pick(subscriptions: &[Subscription]) -> Option<&Subscription> {
    subscriptions
        .iter()
        .min_by_key(|s| (status_of(s).rank(), std::cmp::Reverse(s.created)))
}

/// The state to store for a customer's `subscriptions`, observed at `observed_at_ms`, over the
/// record as it stood (`previous`: since when its status holds, whether its period is paid),
/// with when reconciliation should look again ([`recheck`]).
pub fn decide(
    subscriptions: &[Subscription],
    config: &StripeConfig,
    observed_at_ms: i64,
    previous: &UserRecord,
) -> SubscriptionView {
    let mut view = match pick(subscriptions) {
        None => SubscriptionView::none(observed_at_ms),
        Some(subscription) => {
            let status = status_of(subscription);
            let items = &subscription.items.data;
            // The item of a catalogue price ([`ours`] kept only subscriptions with one).
            let plan = items
                .iter()
                .find_map(|item| config.catalogue.for_price(item.price.id.as_str()));
            SubscriptionView {
                plan: match plan {
                    Some(plan) if status.is_entitled() => plan.id.to_string(),
                    _ => FREE_PLAN.to_owned(),
                },
                subscription_id: Some(subscription.id.to_string()),
                price_id: plan
                    .map(|plan| plan.price_id.clone())
                    .or_else(|| items.first().map(|item| item.price.id.to_string())),
                current_period_end: items.iter().map(|item| item.current_period_end).max(),
                cancel_at_period_end: subscription.cancel_at_period_end,
                status,
                observed_at_ms,
                status_since: observed_at_ms / 1000,
                next_check: None,
                charges_listed_at: None,
            }
        }
    };
    view.status_since = match previous.subscription_status == view.status {
        true => previous.status_since.unwrap_or(view.status_since),
        false => view.status_since,
    };
    view.charges_listed_at = previous.charges_listed_at;
    let paid = previous.period_paid(view.current_period_end);
    view.next_check = recheck(&view, previous, paid, config);
    view
}

/// When reconciliation should next re-sync the user of `view` over `record` ([`next_check`]):
/// `paid` whether its current period's invoice is granted; a Checkout session of `record` that
/// may still be paid, or a purchase that may still be refunded, keeps the user watched.
pub fn recheck(
    view: &SubscriptionView,
    record: &UserRecord,
    paid: bool,
    config: &StripeConfig,
) -> Option<i64> {
    let now = view.observed_at_ms / 1000;
    let checkout_open = record
        .open_checkout
        .as_ref()
        .is_some_and(|o| o.payable_at(now));
    let standing = Standing {
        status: view.status.clone(),
        current_period_end: view.current_period_end,
        // Since the period paid last ended, or the status began if later (a new subscription
        // after an old one's grants).
        renewal_unpaid_since: (view.status.is_entitled() && !paid).then(|| {
            record
                .granted_period_end
                .map_or(view.status_since, |end| end.max(view.status_since))
        }),
        status_since: view.status_since,
        payment_pending: !record.pending_packs.is_empty() || checkout_open,
        refundable_until: record.refundable_until,
    };
    next_check(&standing, now, config.max_sync_age_secs)
}
