//! The Stripe client: built once at init, with a per-attempt timeout, an `Idempotency-Key` on
//! every create, retried and mapped to our errors by [`super::failures`].

use std::collections::HashMap;
use std::time::Duration;

use stripe::{ApiErrorsCode, Client, ClientBuilder, RequestStrategy, StripeError};
use stripe::{IdempotencyKey, StripeRequest};
use stripe_billing::invoice::ListInvoice;
use stripe_billing::invoice_payment::ListInvoicePayment;
use stripe_billing::subscription::{CancelSubscription, ListSubscription, ListSubscriptionStatus};
use stripe_billing::{Invoice, InvoiceStatus, Subscription};
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, RetrieveCustomer, RetrieveCustomerReturned, SearchCustomer,
};
use stripe_core::refund::CreateRefund;

use super::failures::{describe, failed, is_idempotency_conflict, is_transient};
use crate::config::{ConfigError, StripeConfig};
use crate::domain::UserId;
use crate::error::ApiError;

/// Waits for a twin request holding the same idempotency key to finish (409
/// `idempotency_error`), and the pause before each look: about 3 s in all.
const IDEMPOTENCY_WAITS: usize = 12;
const IDEMPOTENCY_WAIT: Duration = Duration::from_millis(250);
/// Pages of a customer search read at most (100 customers each).
const MAX_SEARCH_PAGES: usize = 10;
/// Pages of a list read at most (100 objects each): a customer never has 1,000 subscriptions.
pub(super) const MAX_LIST_PAGES: usize = 10;
/// The paid invoices of a subscription the sync reads: more than a period's renewal and plan
/// changes, so that none is missed between two syncs.
pub const RECENT_INVOICES: i64 = 10;

/// The Stripe client and the settings of the billing endpoints.
pub struct Billing {
    pub(super) client: Client,
    /// Validated Stripe settings.
    pub config: StripeConfig,
    /// The plans' prices read from Stripe.
    pub(super) prices: super::prices::PriceCache,
    /// The budget of calls per second, where one is set ([`Billing::pace`]).
    pub(super) pace: std::sync::OnceLock<super::pace::Pace>,
}

impl Billing {
    /// Builds the client once (at init).
    pub fn new(config: StripeConfig) -> Result<Self, ConfigError> {
        let mut builder = ClientBuilder::new(config.secret_key.clone())
            .timeout(Duration::from_millis(config.timeout_ms))
            .request_strategy(RequestStrategy::Once);
        if let Some(base) = &config.api_base {
            // async-stripe appends `v1/...` to the base, so it must end with a slash.
            builder = builder.url(format!("{}/", base.trim_end_matches('/')));
        }
        let client = builder.build().map_err(|_| ConfigError {
            variable: "STRIPE_SECRET_KEY",
            problem: "cannot be used as an HTTP header",
        })?;
        Ok(Billing {
            client,
            config,
            prices: Default::default(),
            pace: std::sync::OnceLock::new(),
        })
    }

    /// Holds every later call to `per_second` calls a second (reconciliation's budget), from
    /// now on: a 429 halves it, a new call of this sets it again.
    pub fn pace(&self, per_second: std::num::NonZeroU32) {
        match self.pace.get() {
            Some(pace) => pace.reset(per_second),
            None => {
                let _ = self.pace.set(super::pace::Pace::new(per_second));
            }
        }
    }

    /// The calls per second allowed now, where a budget is set.
    pub fn calls_per_second(&self) -> Option<u32> {
        self.pace.get().map(super::pace::Pace::per_second)
    }

    /// Creates the Stripe customer of `user`. The idempotency key is derived from the user id
    /// (and from the customer it replaces, if any: the old key would replay a deleted customer),
    /// so concurrent or repeated calls for one user create one customer at Stripe.
    pub async fn create_customer(
        &self,
        user: &UserId,
        replacing: Option<&str>,
    ) -> Result<String, ApiError> {
        let request = CreateCustomer::new().metadata(HashMap::from([(
            "user_id".to_owned(),
            user.as_str().to_owned(),
        )]));
        let key = idempotency_key(&match replacing {
            None => format!("customer-{}", user.as_str()),
            Some(gone) => format!("customer-{}-after-{gone}", user.as_str()),
        });
        let customer = self.send("create customer", &request, Some(key)).await?;
        Ok(customer.id.to_string())
    }

    /// The customers Stripe finds with `metadata.user_id` = `user` (every customer this service
    /// creates carries it), following pages. Stripe's search is eventually consistent: a customer
    /// created a moment ago may be missing. Deleted customers are never found.
    pub async fn customers_of(&self, user: &UserId) -> Result<Vec<String>, ApiError> {
        let query = format!("metadata['user_id']:'{}'", user.as_str());
        let mut found = Vec::new();
        let mut page = None;
        for _ in 0..MAX_SEARCH_PAGES {
            let mut request = SearchCustomer::new(query.as_str()).limit(100);
            if let Some(next) = page.take() {
                request = request.page(next);
            }
            let result = self.send("search customers", &request, None).await?;
            found.extend(
                result
                    .data
                    .into_iter()
                    .map(|customer| customer.id.to_string()),
            );
            match result.next_page {
                Some(next) if result.has_more => page = Some(next),
                _ => break,
            }
        }
        Ok(found)
    }

    /// The user `customer` was created for, by its own `metadata.user_id` as Stripe holds it;
    /// `None` for a customer that is deleted, unknown, or carries no user id.
    pub async fn customer_owner(&self, customer: &str) -> Result<Option<UserId>, ApiError> {
        let request = RetrieveCustomer::new(customer);
        let found = self.send_unless_gone("retrieve customer", &request).await?;
        Ok(match found {
            Some(RetrieveCustomerReturned::Customer(customer)) => customer
                .metadata
                .as_ref()
                .and_then(|metadata| metadata.get("user_id"))
                .and_then(|id| UserId::parse(id)),
            _ => None,
        })
    }

    /// Every subscription of `customer`, whatever its status, with its latest invoice expanded,
    /// following Stripe's pages (`has_more`, continued with `starting_after` the last id; at most
    /// 100 per page).
    pub async fn list_subscriptions(&self, customer: &str) -> Result<Vec<Subscription>, ApiError> {
        let mut all: Vec<Subscription> = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            // Each with its latest invoice inline: the sync grants a paid period from it
            // without another call.
            let mut request = ListSubscription::new()
                .customer(customer)
                .status(ListSubscriptionStatus::All)
                .expand(vec!["data.latest_invoice".to_owned()])
                .limit(100);
            if let Some(last) = all.last() {
                request = request.starting_after(last.id.as_str());
            }
            let page = self.send("list subscriptions", &request, None).await?;
            let more = page.has_more && !page.data.is_empty();
            all.extend(page.data);
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

    /// The paid invoices of subscription `subscription`, newest first, at most
    /// [`RECENT_INVOICES`]: what the sync grants from when the latest invoice is not the whole
    /// story (a renewal finalised after a plan change made in its first hour).
    pub async fn paid_invoices(&self, subscription: &str) -> Result<Vec<Invoice>, ApiError> {
        let request = ListInvoice::new()
            .subscription(subscription)
            .status(InvoiceStatus::Paid)
            .limit(RECENT_INVOICES);
        let page = self.send("list paid invoices", &request, None).await?;
        Ok(page.data)
    }

    /// Cancels subscription `id` immediately, without proration or a final invoice. One that is
    /// already gone at Stripe (404) counts as canceled.
    pub async fn cancel_subscription(&self, id: &str) -> Result<(), ApiError> {
        let request = CancelSubscription::new(id)
            .prorate(false)
            .invoice_now(false);
        self.send_unless_gone("cancel subscription", &request)
            .await
            .map(drop)
    }

    /// Refunds each payment that paid invoice `invoice` (as `GET /v1/invoice_payments` lists
    /// them), for the amount it paid, each under a key derived from the payment, so that a repeat
    /// refunds nothing more (Stripe replays the key, or answers `charge_already_refunded`).
    /// Returns how many payments it refunded now or before. A refund Stripe refuses for good
    /// (a disputed charge, an expired refund window) is logged and skipped: only a transient
    /// failure fails the call.
    pub async fn refund_invoice(&self, invoice: &str) -> Result<usize, ApiError> {
        let request = ListInvoicePayment::new().invoice(invoice).limit(100);
        let payments = self.send("list invoice payments", &request, None).await?;
        let mut refunded = 0;
        for payment in payments.data.iter().filter(|p| p.status == "paid") {
            let mut refund = match (&payment.payment.payment_intent, &payment.payment.charge) {
                (Some(intent), _) => CreateRefund::new().payment_intent(intent.id().as_str()),
                (None, Some(charge)) => CreateRefund::new().charge(charge.id().as_str()),
                (None, None) => continue,
            };
            if let Some(paid) = payment.amount_paid {
                refund = refund.amount(paid);
            }
            let key = idempotency_key(&format!("refund-{}", payment.id));
            let what = "refund invoice payment";
            match self.send_raw(what, &refund, Some(key)).await {
                Ok(_) => {}
                Err(StripeError::Stripe(api, 400))
                    if api.code == Some(ApiErrorsCode::ChargeAlreadyRefunded) => {}
                Err(err) if is_transient(&err) => return Err(failed(what, &err)),
                Err(err) => {
                    tracing::error!(call = what, error = %describe(&err), "refund refused for good; the duplicate is canceled all the same");
                    crate::metrics::count(crate::metrics::Metric::StripeFailures, 1);
                    continue;
                }
            }
            refunded += 1;
        }
        Ok(refunded)
    }

    /// Deletes customer `id`. One that is already gone at Stripe (404) counts as deleted.
    pub async fn delete_customer(&self, id: &str) -> Result<(), ApiError> {
        self.send_unless_gone("delete customer", &DeleteCustomer::new(id))
            .await
            .map(drop)
    }

    /// [`Billing::send`] for deletions: `Ok(None)` when the object does not exist (any more).
    pub(super) async fn send_unless_gone<R>(
        &self,
        what: &'static str,
        request: &R,
    ) -> Result<Option<R::Output>, ApiError>
    where
        R: StripeRequest,
        R: Sync,
        R::Output: miniserde::Deserialize + Send,
    {
        match self
            .retrying(what, || request.customize().send(&self.client))
            .await
        {
            Ok(output) => Ok(Some(output)),
            Err(StripeError::Stripe(_, 404)) => {
                tracing::info!(call = what, "already gone at Stripe");
                Ok(None)
            }
            Err(err) => Err(failed(what, &err)),
        }
    }

    /// Sends `request`, retrying what Stripe documents as transient (429, 5xx, connection
    /// failures, timeouts) with exponential backoff. Every attempt of a create carries the
    /// same idempotency key, so a retry can never create twice.
    pub(super) async fn send<R>(
        &self,
        what: &'static str,
        request: &R,
        key: Option<IdempotencyKey>,
    ) -> Result<R::Output, ApiError>
    where
        R: StripeRequest,
        R: Sync,
        R::Output: miniserde::Deserialize + Send,
    {
        self.send_raw(what, request, key)
            .await
            .map_err(|err| failed(what, &err))
    }

    /// [`Billing::send`], leaving Stripe's final error to the caller.
    pub(super) async fn send_raw<R>(
        &self,
        what: &'static str,
        request: &R,
        key: Option<IdempotencyKey>,
    ) -> Result<R::Output, StripeError>
    where
        R: StripeRequest,
        R: Sync,
        R::Output: miniserde::Deserialize + Send,
    {
        let strategy = key.map_or(RequestStrategy::Once, RequestStrategy::Idempotent);
        let mut waited = 0;
        loop {
            let result = self
                .retrying(what, || {
                    request
                        .customize()
                        .request_strategy(strategy.clone())
                        .send(&self.client)
                })
                .await;
            match result {
                // A twin request with the same key is still executing at Stripe (a double tap):
                // once it finishes, the same key replays its result.
                Err(err) if is_idempotency_conflict(&err) && waited < IDEMPOTENCY_WAITS => {
                    waited += 1;
                    tracing::info!(
                        call = what,
                        "twin request in progress at Stripe; waiting for its result"
                    );
                    tokio::time::sleep(IDEMPOTENCY_WAIT).await;
                }
                result => return result,
            }
        }
    }
}

fn idempotency_key(value: &str) -> IdempotencyKey {
    IdempotencyKey::new(value).expect("keys built here are short and non-empty")
}

pub(super) fn new_key() -> IdempotencyKey {
    idempotency_key(&uuid::Uuid::new_v4().to_string())
}
