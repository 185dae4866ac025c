//! One Stripe customer per user.

use crate::billing::Billing;
use crate::domain::{UserId, UserRecord};
use crate::error::ApiError;
use crate::store::CustomerLinks;

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
    let linked = store.link_customer(&record.user_id, &created).await;
    let linked = linked.map_err(ApiError::erased_if_missing)?;
    if linked != created {
        tracing::warn!(
            user = %record.user_id.hash(),
            "a different Stripe customer was already linked; using it"
        );
    }
    Ok(linked)
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
    let linked = store.link_customer(user, &created).await;
    linked.map_err(ApiError::erased_if_missing)
}
