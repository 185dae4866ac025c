//! GDPR erasure (see `docs/api.md`, "Erasure", and `docs/privacy.md`), step by step, in the order
//! that lets any failure be finished by the next call with the same token. Progress is kept in
//! the user's tombstone ([`ErasureStage`]), so a retry repeats no step that already succeeded.
//!
//! 1. [`close_stripe`]: every customer of the user (the linked one, and any other that Stripe's
//!    search finds with the user's id: created, never linked) has its live subscriptions
//!    canceled immediately, then is deleted. Nothing of ours is touched before: a Stripe failure
//!    is a 502, the user is intact, and the retry starts over (objects already gone count as done).
//! 2. [`advance`] to [`ErasureStage::StripeClosed`]: the tombstone, a hash of the id and times,
//!    from which moment no request (410) and no late webhook can bring the user back.
//! 3. [`erase_stored`]: every item of the user's partition, the customer mapping, and the profile
//!    last (it holds the customer id a retry after a failure midway still needs); then
//!    [`ErasureStage::StoredErased`].
//! 4. The login at the auth service ([`crate::login`]), last of all: until it is gone the person
//!    can sign in and retry an erasure that failed midway; after it nothing is left to retry.
//!    Then [`ErasureStage::LoginDeleted`]: a repeated call finds the erasure complete and makes
//!    no call at all.

use crate::billing::{Billing, status_of};
use crate::config::Rules;
use crate::domain::{ErasureStage, Tombstone, UserId};
use crate::error::ApiError;
use crate::store::{Erasures, Profiles};

/// Seconds in a day, for the tombstone's expiry.
const DAY_SECS: i64 = 24 * 3600;

/// Closes every Stripe customer of `user`: `linked` (the one on the profile, if any) and those
/// Stripe's search finds by `metadata.user_id`. Returns how many were closed. Without Stripe
/// settings (only the local API) there is nothing to close unless a customer is linked.
pub async fn close_stripe(
    billing: Result<&Billing, ApiError>,
    user: &UserId,
    linked: Option<&str>,
) -> Result<usize, ApiError> {
    let billing = match (billing, linked) {
        (Ok(billing), _) => billing,
        (Err(_), None) => return Ok(0),
        (Err(err), Some(_)) => return Err(err),
    };
    let mut customers: Vec<String> = linked.into_iter().map(str::to_owned).collect();
    for found in billing.customers_of(user).await? {
        if !customers.contains(&found) {
            customers.push(found);
        }
    }
    for customer in &customers {
        close_stripe_customer(billing, customer).await?;
    }
    Ok(customers.len())
}

/// Cancels the customer's live subscriptions, then deletes the customer, in that order.
async fn close_stripe_customer(billing: &Billing, customer: &str) -> Result<(), ApiError> {
    for subscription in billing.list_subscriptions(customer).await? {
        if !status_of(&subscription).ends_paid_credits() {
            billing
                .cancel_subscription(subscription.id.as_str())
                .await?;
        }
    }
    billing.delete_customer(customer).await
}

/// Records that the erasure of `user` reached `stage`, in the tombstone (written at the first
/// stage, overwritten after). `erased_at` is when the erasure began.
pub async fn advance<S: Erasures + ?Sized>(
    store: &S,
    user: &UserId,
    stage: ErasureStage,
    erased_at: i64,
    rules: &Rules,
) -> Result<ErasureStage, ApiError> {
    let tombstone = Tombstone {
        erased_at,
        expires_at: erased_at + rules.tombstone_days * DAY_SECS,
        stage,
    };
    store.write_tombstone(user, &tombstone).await?;
    Ok(stage)
}

/// Deletes everything stored for `user`: the items of its partition, the customer mapping, the
/// profile last. Returns how many items went. Safe to repeat.
pub async fn erase_stored<S>(store: &S, user: &UserId) -> Result<usize, ApiError>
where
    S: Profiles + Erasures + ?Sized,
{
    let profile = store.get_user(user).await?;
    let mut items = store.delete_owned_items(user).await?;
    if let Some(customer) = profile.as_ref().and_then(|p| p.stripe_customer_id.as_ref()) {
        store.delete_customer_link(customer).await?;
        items += 1;
    }
    store.delete_profile(user).await?;
    Ok(items + usize::from(profile.is_some()))
}
