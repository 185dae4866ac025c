//! The catalogue as the app shows it: each sold plan with its Stripe price's amount, currency
//! and interval, read from Stripe at most once per container and price an hour, and never a
//! reason to fail (a price Stripe cannot give now is shown without its details).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use stripe_product::price::RetrievePrice;

use super::Billing;

/// How long a price read from Stripe is kept.
pub const PRICE_TTL: Duration = Duration::from_secs(3600);
/// How long a price Stripe could not give is not asked again: a Stripe outage slows no
/// request beyond the first in this time.
pub const PRICE_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What Stripe says a price costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceDetails {
    /// In the currency's smallest unit (cents).
    pub amount: i64,
    /// ISO currency code, lower case.
    pub currency: String,
    /// `day`, `week`, `month` or `year`.
    pub interval: String,
    /// How many intervals a period is.
    pub interval_count: u64,
}

/// The prices read, by price id, with when each was read (`None`: Stripe could not say).
#[derive(Debug, Default)]
pub struct PriceCache {
    read: tokio::sync::Mutex<HashMap<String, (Instant, Option<PriceDetails>)>>,
}

impl Billing {
    /// The details of `price`, from the cache while fresh, else from Stripe (one read per
    /// price at a time: concurrent requests wait for it). `None` when Stripe cannot say.
    pub async fn price_details(&self, price: &str) -> Option<PriceDetails> {
        let mut read = self.prices.read.lock().await;
        if let Some((at, details)) = read.get(price) {
            let ttl = if details.is_some() {
                PRICE_TTL
            } else {
                PRICE_RETRY_AFTER
            };
            if at.elapsed() < ttl {
                return details.clone();
            }
        }
        let details = match self
            .send("retrieve price", &RetrievePrice::new(price), None)
            .await
        {
            Ok(found) => found.unit_amount.map(|amount| PriceDetails {
                amount,
                currency: found.currency.to_string(),
                interval: found
                    .recurring
                    .as_ref()
                    .map_or("once", |r| r.interval.as_str())
                    .to_owned(),
                interval_count: found.recurring.as_ref().map_or(1, |r| r.interval_count),
            }),
            Err(_) => None,
        };
        read.insert(price.to_owned(), (Instant::now(), details.clone()));
        details
    }
}
