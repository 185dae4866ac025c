//! One Stripe customer per user.

use crate::billing::Billing;
use crate::domain::{UserId, UserRecord};
use crate::error::ApiError;
use crate::store::{CustomerLinks, StoreError};

/// The Stripe customer of the user of `record`, created and linked on first need.
///
/// Before the first creation the record notes that a customer may exist (so that an erasure
/// knows to ask Stripe), and is refused once an erasure began. Concurrent first calls all reach
/// Stripe with the same idempotency key (derived from the user id), so Stripe creates one
/// customer and answers each with it; the conditional link then stores it once, both ways
/// (user→customer and customer→user), unless an erasure began meanwhile (410: the customer,
/// never linked, is closed by the erasure or by the webhook of its creation).
pub async fn ensure_customer<S: CustomerLinks + ?Sized>(
    billing: &Billing,
    store: &S,
    record: &UserRecord,
) -> Result<String, ApiError> {
    if let Some(customer) = &record.stripe_customer_id {
        return Ok(customer.clone());
    }
    if !record.stripe_customer_possible {
        let expected = store.expect_customer(&record.user_id).await;
        expected.map_err(ApiError::erased_if_missing)?;
    }
    let created = billing.create_customer(&record.user_id, None).await?;
    let linked = link_or_close(billing, store, &record.user_id, &created).await?;
    if linked != created {
        tracing::warn!(
            user = %record.user_id.hash(),
            "a different Stripe customer was already linked; using it"
        );
    }
    Ok(linked)
}

/// Replacements of a customer Stripe no longer has, before giving up: a concurrent request may
/// re-link the deleted one once (its first key replays it) before the new one stands.
const CUSTOMER_REPLACEMENTS: usize = 3;

/// What `create` makes at Stripe on `customer`, the customer of `user`: when Stripe says that
/// customer no longer exists (`create` answers `None`), it is replaced ([`replace_customer`])
/// and `create` asked again on the new one, a few times.
pub async fn on_live_customer<S, T, F, Fut>(
    billing: &Billing,
    store: &S,
    user: &UserId,
    mut customer: String,
    create: F,
) -> Result<T, ApiError>
where
    S: CustomerLinks + ?Sized,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, ApiError>>,
{
    for _ in 0..CUSTOMER_REPLACEMENTS {
        if let Some(created) = create(customer.clone()).await? {
            return Ok(created);
        }
        // The customer was deleted at Stripe (e.g. in the dashboard): a new one, then again.
        customer = replace_customer(billing, store, user, &customer).await?;
    }
    Err(ApiError::StripeFailed)
}

/// Replaces `gone`, the user's customer that Stripe says no longer exists (deleted, e.g. in the
/// dashboard), by a new one: forgets it both ways with its subscription state, creates the new
/// customer under a key derived from the gone one (concurrent replacements make one customer),
/// and links it.
pub async fn replace_customer<S: CustomerLinks + ?Sized>(
    billing: &Billing,
    store: &S,
    user: &UserId,
    gone: &str,
) -> Result<String, ApiError> {
    tracing::warn!(user = %user.hash(), "the Stripe customer was deleted at Stripe; replacing it");
    store.unlink_customer(user, gone).await?;
    let created = billing.create_customer(user, Some(gone)).await?;
    link_or_close(billing, store, user, &created).await
}

/// Links `created` to `user`; if the user's erasure began meanwhile (the link is refused, or the
/// record is gone), deletes the customer at Stripe before answering 410, so nothing billable is
/// left behind whatever Stripe's search shows the erasure.
async fn link_or_close<S: CustomerLinks + ?Sized>(
    billing: &Billing,
    store: &S,
    user: &UserId,
    created: &str,
) -> Result<String, ApiError> {
    match store.link_customer(user, created).await {
        Ok(linked) => Ok(linked),
        Err(StoreError::Erasing | StoreError::NoRecord) => {
            tracing::warn!(user = %user.hash(), "erasure began during checkout; the new customer is deleted");
            billing.delete_customer(created).await?;
            Err(ApiError::AccountDeleted)
        }
        Err(err) => Err(err.into()),
    }
}
