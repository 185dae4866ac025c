//! Checkout and portal sessions, and where a user whose payment failed goes to fix it.

use std::collections::HashMap;

use stripe::{StripeError, StripeRequest};
use stripe_billing::InvoiceStatus;
use stripe_billing::billing_portal_session::{
    CreateBillingPortalSession, CreateBillingPortalSessionFlowData,
    CreateBillingPortalSessionFlowDataType,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionSubscriptionData, ExpireCheckoutSession, RetrieveCheckoutSession,
};
use stripe_checkout::{CheckoutSessionMode, CheckoutSessionPaymentStatus, CheckoutSessionStatus};
use stripe_core::PaymentIntentStatus;
use stripe_types::Expandable;

use super::Billing;
use super::client::new_key;
use super::failures::{failed, is_missing_customer};
use crate::domain::{OpenCheckout, Pack, PendingPack, Plan, UserId};
use crate::error::ApiError;

/// What became of a pack's Checkout session at Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackPayment {
    /// Paid: the pack is owed, once.
    Paid {
        /// The PaymentIntent that paid it (how a refund finds it).
        payment_intent: Option<String>,
    },
    /// Not paid yet: open, or a delayed payment method still processing.
    NotYet,
    /// It will never be paid: expired, its delayed payment failed, or gone at Stripe.
    Never,
}

/// How long a Checkout session stays payable (Stripe allows 30 minutes to 24 hours): a session
/// the user walked away from cannot be paid hours later, beside another.
pub const CHECKOUT_SESSION_TTL_SECS: i64 = 3600;

impl Billing {
    /// Expires the Checkout session `id`, so it can no longer be paid. One that is no longer
    /// open (paid, expired: Stripe answers 400) or unknown (404) needs nothing.
    pub async fn expire_checkout_session(&self, id: &str) -> Result<(), ApiError> {
        let request = ExpireCheckoutSession::new(id);
        let what = "expire checkout session";
        match self
            .retrying(what, || request.customize().send(&self.client))
            .await
        {
            Ok(_) => Ok(()),
            Err(StripeError::Stripe(_, 400 | 404)) => {
                tracing::info!(call = what, "checkout session no longer open");
                Ok(())
            }
            Err(err) => Err(failed(what, &err)),
        }
    }

    /// A Checkout session for `plan`'s price, payable for [`CHECKOUT_SESSION_TTL_SECS`];
    /// `None` when Stripe says `customer` does not exist (deleted, e.g. in the dashboard).
    pub async fn create_checkout_session(
        &self,
        user: &UserId,
        customer: &str,
        plan: &Plan,
    ) -> Result<Option<OpenCheckout>, ApiError> {
        let metadata = HashMap::from([("user_id".to_owned(), user.as_str().to_owned())]);
        let expires_at = crate::unix_now() + CHECKOUT_SESSION_TTL_SECS;
        let mut line_item = CreateCheckoutSessionLineItems::new();
        line_item.price = Some(plan.price_id.clone());
        line_item.quantity = Some(1);
        let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
        subscription_data.metadata = Some(metadata.clone());
        let request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(customer)
            .line_items(vec![line_item])
            .client_reference_id(user.as_str())
            .metadata(metadata)
            .subscription_data(subscription_data)
            .success_url(&self.config.checkout_success_url)
            .cancel_url(&self.config.checkout_cancel_url)
            .expires_at(expires_at);
        let what = "create checkout session";
        match self.send_raw(what, &request, Some(new_key())).await {
            Ok(session) => Ok(Some(OpenCheckout {
                url: url_of(session.url)?,
                id: session.id.to_string(),
                expires_at: session.expires_at,
                price_id: plan.price_id.clone(),
            })),
            Err(err) if is_missing_customer(&err) => Ok(None),
            Err(err) => Err(failed(what, &err)),
        }
    }

    /// A Checkout session in `payment` mode selling `pack` once to `customer`, payable for
    /// [`CHECKOUT_SESSION_TTL_SECS`], with `metadata.user_id` and `metadata.pack` on the session
    /// and its PaymentIntent: the pending pack to record, and where to pay. `None` when Stripe
    /// says `customer` does not exist (deleted, e.g. in the dashboard).
    pub async fn create_pack_session(
        &self,
        user: &UserId,
        customer: &str,
        pack: &Pack,
    ) -> Result<Option<(PendingPack, String)>, ApiError> {
        let metadata = HashMap::from([
            ("user_id".to_owned(), user.as_str().to_owned()),
            ("pack".to_owned(), pack.id.to_string()),
        ]);
        let mut line_item = CreateCheckoutSessionLineItems::new();
        line_item.price = Some(pack.price_id.clone());
        line_item.quantity = Some(1);
        let mut payment_intent_data = CreateCheckoutSessionPaymentIntentData::new();
        payment_intent_data.metadata = Some(metadata.clone());
        let request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .customer(customer)
            .line_items(vec![line_item])
            .client_reference_id(user.as_str())
            .metadata(metadata)
            .payment_intent_data(payment_intent_data)
            .success_url(&self.config.checkout_success_url)
            .cancel_url(&self.config.checkout_cancel_url)
            .expires_at(crate::unix_now() + CHECKOUT_SESSION_TTL_SECS);
        let what = "create pack checkout session";
        match self.send_raw(what, &request, Some(new_key())).await {
            Ok(session) => {
                let url = url_of(session.url)?;
                let pending = PendingPack {
                    session_id: session.id.to_string(),
                    pack: pack.id.clone(),
                    credits: pack.credits,
                    created_at: session.created,
                };
                Ok(Some((pending, url)))
            }
            Err(err) if is_missing_customer(&err) => Ok(None),
            Err(err) => Err(failed(what, &err)),
        }
    }

    /// What became of the payment of pack Checkout session `id`, as Stripe answers it now (with
    /// its PaymentIntent expanded).
    pub async fn pack_payment(&self, id: &str) -> Result<PackPayment, ApiError> {
        let request = RetrieveCheckoutSession::new(id).expand(vec!["payment_intent".to_owned()]);
        let Some(session) = self
            .send_unless_gone("retrieve checkout session", &request)
            .await?
        else {
            return Ok(PackPayment::Never);
        };
        let intent = match &session.payment_intent {
            Some(Expandable::Object(intent)) => Some(intent.as_ref()),
            _ => None,
        };
        let intent_id = session.payment_intent.as_ref().map(|i| i.id().to_string());
        Ok(match (&session.status, &session.payment_status) {
            (_, CheckoutSessionPaymentStatus::Paid) => PackPayment::Paid {
                payment_intent: intent_id,
            },
            (Some(CheckoutSessionStatus::Expired), _) => PackPayment::Never,
            (Some(CheckoutSessionStatus::Complete), _)
                if intent.is_some_and(|intent| {
                    matches!(
                        intent.status,
                        PaymentIntentStatus::Canceled | PaymentIntentStatus::RequiresPaymentMethod
                    )
                }) =>
            {
                PackPayment::Never
            }
            _ => PackPayment::NotYet,
        })
    }

    /// Where `customer` pays what Stripe is still collecting for a subscription that is live but
    /// not entitled (past due, unpaid, incomplete, paused): the hosted page of its latest invoice
    /// while that invoice is open (a new card pays it at once), else a portal session on its
    /// payment-method update. `None` when Stripe says the customer no longer exists.
    pub async fn payment_fix_url(&self, customer: &str) -> Result<Option<String>, ApiError> {
        let subscriptions = self.list_subscriptions(customer).await?;
        let open_invoice = subscriptions
            .iter()
            .filter(|s| super::status_of(s).awaits_payment())
            .filter_map(|s| match &s.latest_invoice {
                Some(Expandable::Object(invoice))
                    if invoice.status == Some(InvoiceStatus::Open) =>
                {
                    invoice.hosted_invoice_url.clone()
                }
                _ => None,
            })
            .next();
        match open_invoice {
            Some(url) => Ok(Some(url)),
            None => self.create_portal_session(customer, true).await,
        }
    }

    /// A customer-portal session of `customer`; returns its URL, or `None` when Stripe says
    /// `customer` does not exist (deleted, e.g. in the dashboard). With `fix_payment`, the
    /// session opens straight on the portal's payment-method update (`flow_data`), where a user
    /// whose payment failed puts in a card that works.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        fix_payment: bool,
    ) -> Result<Option<String>, ApiError> {
        let mut request = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(&self.config.portal_return_url);
        if fix_payment {
            request = request.flow_data(CreateBillingPortalSessionFlowData::new(
                CreateBillingPortalSessionFlowDataType::PaymentMethodUpdate,
            ));
        }
        let what = "create portal session";
        match self.send_raw(what, &request, Some(new_key())).await {
            Ok(session) => Ok(Some(session.url)),
            Err(err) if is_missing_customer(&err) => Ok(None),
            Err(err) => Err(failed(what, &err)),
        }
    }
}

/// The URL of a Checkout session Stripe created: one without is Stripe failing.
fn url_of(url: Option<String>) -> Result<String, ApiError> {
    url.ok_or_else(|| {
        tracing::error!("Stripe returned a checkout session without a URL");
        ApiError::StripeFailed
    })
}
