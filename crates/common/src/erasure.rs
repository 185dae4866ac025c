//! GDPR erasure (see `docs/api.md`, "Erasure"), in two halves:
//!
//! 1. [`close_stripe_customer`]: cancel every subscription that has not ended, immediately and
//!    without proration, then delete the customer. If Stripe fails, nothing of ours was touched
//!    (502) and a retry starts over; objects already gone at Stripe count as done.
//! 2. [`erase_stored`]: tombstone first, so that from this moment no request or late webhook can
//!    bring the user back; then every item of the user's partition but the profile; then the
//!    customer→user mapping; the profile last, so a retry after a failure midway (503) still
//!    finds the customer id and finishes the job.

use stripe_billing::SubscriptionStatus;

use crate::billing::Billing;
use crate::config::Rules;
use crate::error::ApiError;
use crate::store::Store;
use crate::users::UserId;

/// Seconds in a day, for the tombstone's expiry.
const DAY_SECS: i64 = 24 * 3600;

/// Cancels the customer's live subscriptions, then deletes the customer, in that order.
pub async fn close_stripe_customer(billing: &Billing, customer: &str) -> Result<(), ApiError> {
    for subscription in billing.list_subscriptions(customer).await? {
        let ended = matches!(
            subscription.status,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        );
        if !ended {
            billing
                .cancel_subscription(subscription.id.as_str())
                .await?;
        }
    }
    billing.delete_customer(customer).await
}

/// Deletes everything stored for `user` and leaves a tombstone. Returns how many items went.
pub async fn erase_stored(
    store: &dyn Store,
    user: &UserId,
    customer: Option<&str>,
    rules: &Rules,
) -> Result<usize, ApiError> {
    let now = crate::unix_now();
    store
        .write_tombstone(user, now, now + rules.tombstone_days * DAY_SECS)
        .await?;
    let mut items = store.delete_owned_items(user).await?;
    if let Some(customer) = customer {
        store.delete_customer_link(customer).await?;
        items += 1;
    }
    store.delete_profile(user).await?;
    Ok(items + 1)
}
