//! The view a sync stores: the subscription that matters, its plan and status, since when, and
//! when reconciliation should look again.

use stripe_billing::Subscription;

use crate::billing::status_of;
use crate::config::StripeConfig;
use crate::domain::reconcile::{Standing, next_check};
use crate::domain::{FREE_PLAN, SubscriptionView, UserRecord};

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
            // The item of a catalogue price ([`super::ours`] kept only subscriptions with one).
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
