//! Which of a subscription's invoices grant credits: its latest, and its recent paid ones when
//! the latest was not granted, each read from its lines of a catalogue price only.

use stripe_billing::{Invoice, InvoiceLineItem, InvoiceStatus, Subscription};
use stripe_types::Expandable;

use crate::billing::Billing;
use crate::domain::{Catalogue, PaidInvoice, UserRecord};
use crate::error::ApiError;

/// The paid invoices of `subscription` that may owe `record` credits, oldest period first and
/// within a period its own invoice before its plan changes. When its latest invoice (expanded)
/// was granted, nothing older can be owed: an older period's invoices are behind it, and a
/// plan change within its period could not be granted before the period's own invoice. Without
/// one, nothing is owed. Else the subscription's recent paid invoices are read too: a renewal
/// still being finalised when the plan changed is paid after that change's invoice, which is
/// then the latest.
pub(super) async fn invoices_to_grant(
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
