//! GDPR erasure (see `docs/api.md`, "Erasure", and `docs/privacy.md`), step by step, in the order
//! that lets any failure be finished by the next call with the same token. Progress is kept in
//! the user's tombstone ([`ErasureStage`]), so a retry repeats no step that already succeeded,
//! but the Stripe step, which is idempotent and runs again until the stored items are gone.
//!
//! 1. [`Erasures::mark_erasing`]: the record is marked, so that from now on no endpoint serves
//!    the user (410) and no customer can be linked (a checkout racing the erasure gets 410).
//! 2. [`close_stripe`]: the user's open Checkout session is expired, and every customer of the
//!    user (the linked one, and any other that Stripe's search finds with the user's id:
//!    created, never linked) has its live subscriptions canceled immediately, then is deleted.
//!    Stripe is asked only if a customer may exist ([`UserRecord::may_have_stripe_customer`]):
//!    a user who never opened a checkout is erased with Stripe down. A Stripe failure is a 502;
//!    the retry runs the step again (objects already gone count as done).
//! 3. [`advance`] to [`ErasureStage::StripeClosed`]: the tombstone, a hash of the id and times,
//!    from which moment no request (410) and no late webhook can bring the user back.
//! 4. [`erase_stored`]: every item of the user's partition, the mapping of every customer the
//!    Stripe step closed, and the profile last (it holds the customer id a retry after a failure
//!    midway still needs); then [`ErasureStage::StoredErased`].
//! 5. The login at the auth service ([`crate::login`]), last of all: until it is gone the person
//!    can sign in and retry an erasure that failed midway; after it nothing is left to retry.
//!    Then [`ErasureStage::LoginDeleted`]: a repeated call finds the erasure complete and makes
//!    no call at all.
//!
//! A customer created for the user while the erasure ran (never linked: the link is refused) is
//! closed by [`close_if_erased`] when Stripe's webhook about it arrives.

use crate::billing::{Billing, status_of};
use crate::config::Rules;
use crate::domain::{ErasureStage, Tombstone, UserId, UserRecord};
use crate::error::ApiError;
use crate::metrics::{self, Metric};
use crate::store::{Erasures, Profiles};

/// Seconds in a day, for the tombstone's expiry.
const DAY_SECS: i64 = 24 * 3600;

/// Closes what Stripe holds of `user`: expires the open Checkout session of `profile`, and
/// closes every customer (the linked one, and those Stripe's search finds by
/// `metadata.user_id`). Returns the customers closed. In a first attempt (`resumed` false)
/// Stripe is not asked at all when no customer can exist: no profile (customers are only made
/// for one), or one that [`UserRecord::may_have_stripe_customer`] denies. A resumed erasure
/// always asks.
pub async fn close_stripe(
    billing: Result<&Billing, ApiError>,
    user: &UserId,
    profile: Option<&UserRecord>,
    resumed: bool,
) -> Result<Vec<String>, ApiError> {
    let may_exist = resumed || profile.is_some_and(UserRecord::may_have_stripe_customer);
    if !may_exist {
        return Ok(Vec::new());
    }
    let linked = profile.and_then(|p| p.stripe_customer_id.as_deref());
    let billing = match (billing, linked) {
        (Ok(billing), _) => billing,
        // Without Stripe settings (only the local API) nothing can have been created there.
        (Err(_), None) => return Ok(Vec::new()),
        (Err(err), Some(_)) => return Err(err),
    };
    if let Some(session) = profile.and_then(|p| p.open_checkout.as_ref()) {
        billing.expire_checkout_session(&session.id).await?;
    }
    let mut customers: Vec<String> = linked.into_iter().map(str::to_owned).collect();
    for found in billing.customers_of(user).await? {
        if !customers.contains(&found) {
            customers.push(found);
        }
    }
    for customer in &customers {
        close_stripe_customer(billing, customer).await?;
    }
    Ok(customers)
}

/// Closes `customer` at Stripe if it belongs (by its own `metadata.user_id`, read from Stripe)
/// to a user who is erased or being erased: a customer created while the erasure ran, which no
/// erasure step saw. Returns whether it did. Idempotent: a customer gone already is left alone.
pub async fn close_if_erased<S>(
    billing: &Billing,
    store: &S,
    customer: &str,
) -> Result<bool, ApiError>
where
    S: Profiles + Erasures + ?Sized,
{
    let Some(owner) = billing.customer_owner(customer).await? else {
        return Ok(false);
    };
    let erasing = match store.get_user(&owner).await? {
        Some(record) => record.erasing_since.is_some(),
        None => store.tombstone(&owner).await?.is_some(),
    };
    if !erasing {
        return Ok(false);
    }
    close_stripe_customer(billing, customer).await?;
    tracing::warn!(user = %owner.hash(), "closed a Stripe customer of an erased user");
    metrics::count(Metric::ErasedCustomersClosed, 1);
    Ok(true)
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

/// Deletes everything stored for `user`: the items of its partition, the mapping of the linked
/// customer and of every customer in `closed` (the Stripe step's), the profile last. Returns
/// how many items went. Safe to repeat.
pub async fn erase_stored<S>(store: &S, user: &UserId, closed: &[String]) -> Result<usize, ApiError>
where
    S: Profiles + Erasures + ?Sized,
{
    let profile = store.get_user(user).await?;
    let mut items = store.delete_owned_items(user).await?;
    let linked = profile.as_ref().and_then(|p| p.stripe_customer_id.clone());
    let mut mapped: Vec<&String> = closed.iter().collect();
    if let Some(linked) = linked.as_ref().filter(|l| !closed.contains(l)) {
        mapped.push(linked);
    }
    for customer in mapped {
        store.delete_customer_link(customer).await?;
        items += 1;
    }
    store.delete_profile(user).await?;
    Ok(items + usize::from(profile.is_some()))
}
