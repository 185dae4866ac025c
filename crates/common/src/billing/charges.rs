//! Charges as Stripe answers them, for the money that went back: refunds (`amount_refunded`,
//! cumulative), the dispute of a charge, and the invoice a charge's PaymentIntent paid (since API
//! version 2025-03-31 an invoice names no charge or PaymentIntent; its invoice payments do).

use stripe_billing::invoice_payment::{
    ListInvoicePayment, ListInvoicePaymentPayment, ListInvoicePaymentPaymentType,
};
use stripe_core::charge::{ListCharge, RetrieveCharge};
use stripe_core::dispute::ListDispute;
use stripe_core::{Charge, DisputeStatus as StripeDisputeStatus};
use stripe_types::RangeQueryTs;

use super::Billing;
use super::client::MAX_LIST_PAGES;
use crate::domain::{DisputeStatus, MoneyBack};
use crate::error::ApiError;

/// A charge, as far as its money going back is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeSeen {
    /// Its amounts, charged and refunded so far.
    pub money: MoneyBack,
    /// The customer it charged, if any.
    pub customer: Option<String>,
    /// The PaymentIntent it belongs to: a pack's, or an invoice's (through its payments).
    pub payment_intent: Option<String>,
    /// Whether it was disputed (it stays so once the dispute closes).
    pub disputed: bool,
}

impl ChargeSeen {
    fn of(charge: Charge) -> ChargeSeen {
        ChargeSeen {
            money: MoneyBack {
                charge: charge.id.to_string(),
                amount: charge.amount,
                amount_refunded: charge.amount_refunded,
            },
            customer: charge.customer.map(|c| c.id().to_string()),
            payment_intent: charge.payment_intent.map(|p| p.id().to_string()),
            disputed: charge.disputed,
        }
    }

    /// Whether any of its money went back (refunded in part, or disputed).
    pub fn money_went_back(&self) -> bool {
        self.money.amount_refunded > 0 || self.disputed
    }
}

impl Billing {
    /// Charge `id` as Stripe holds it now; `None` if Stripe has no such charge.
    pub async fn charge(&self, id: &str) -> Result<Option<ChargeSeen>, ApiError> {
        let found = self
            .send_unless_gone("retrieve charge", &RetrieveCharge::new(id))
            .await?;
        Ok(found.map(ChargeSeen::of))
    }

    /// The charges of `customer` created since `since` (Unix seconds), newest first, following
    /// Stripe's pages.
    pub async fn charges_since(
        &self,
        customer: &str,
        since: i64,
    ) -> Result<Vec<ChargeSeen>, ApiError> {
        let mut all: Vec<ChargeSeen> = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let mut request = ListCharge::new()
                .customer(customer)
                .created(RangeQueryTs::gte(since))
                .limit(100);
            if let Some(last) = all.last() {
                request = request.starting_after(last.money.charge.as_str());
            }
            let page = self.send("list charges", &request, None).await?;
            let more = page.has_more && !page.data.is_empty();
            all.extend(page.data.into_iter().map(ChargeSeen::of));
            if !more {
                return Ok(all);
            }
        }
        tracing::error!(
            pages = MAX_LIST_PAGES,
            "Stripe kept answering has_more; giving up"
        );
        Err(ApiError::StripeFailed)
    }

    /// The invoice PaymentIntent `payment_intent` paid, if it paid one (its invoice payment).
    pub async fn invoice_paid_by(&self, payment_intent: &str) -> Result<Option<String>, ApiError> {
        let mut payment =
            ListInvoicePaymentPayment::new(ListInvoicePaymentPaymentType::PaymentIntent);
        payment.payment_intent = Some(payment_intent.to_owned());
        let request = ListInvoicePayment::new().payment(payment).limit(1);
        let page = self.send("list invoice payments", &request, None).await?;
        let invoice = page
            .data
            .first()
            .and_then(|paid| paid.invoice.id().as_ref());
        Ok(invoice.map(|id| id.to_string()))
    }

    /// The dispute of charge `charge` (a charge has at most one), with where it stands.
    pub async fn dispute_of(
        &self,
        charge: &str,
    ) -> Result<Option<(String, DisputeStatus)>, ApiError> {
        let request = ListDispute::new().charge(charge).limit(1);
        let page = self.send("list disputes", &request, None).await?;
        Ok(page.data.first().map(|dispute| {
            let status = match &dispute.status {
                StripeDisputeStatus::Won => DisputeStatus::Won,
                StripeDisputeStatus::Lost => DisputeStatus::Lost,
                StripeDisputeStatus::NeedsResponse | StripeDisputeStatus::UnderReview => {
                    DisputeStatus::Open
                }
                _ => DisputeStatus::NoFundsMoved,
            };
            (dispute.id.to_string(), status)
        }))
    }
}
