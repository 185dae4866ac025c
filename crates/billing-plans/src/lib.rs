//! `GET /v1/billing/plans`: authenticate → each plan sold, in the catalogue's order (the first
//! is the default), with its credits per period, and each credit pack sold with its credits →
//! each one's Stripe price (amount, currency, interval), from the container's cache or Stripe
//! (`null` when Stripe cannot say: the list is answered all the same).

use common::ApiError;
use common::App;
use common::billing::prices::PriceDetails;
use common::endpoint::{access_logged, bearer_request, respond, time_budget};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// The API Gateway route this function serves.
pub const ROUTE: &str = "GET /v1/billing/plans";

/// The response body.
#[derive(Debug, Serialize)]
pub struct Plans {
    /// The plan a checkout without a `plan` sells.
    pub default_plan: String,
    /// The plans sold, in order.
    pub plans: Vec<PlanView>,
    /// The credit packs sold, in order (empty when none is).
    pub packs: Vec<PackView>,
}

/// One plan as the app shows it.
#[derive(Debug, Serialize)]
pub struct PlanView {
    /// What checkout's `{"plan": id}` names, and `current_plan` shows.
    pub id: String,
    /// Credits granted each paid period.
    pub credits_per_period: i64,
    /// What Stripe charges for it; `null` when Stripe could not say just now.
    pub price: Option<PriceDetails>,
}

/// One credit pack as the app shows it.
#[derive(Debug, Serialize)]
pub struct PackView {
    /// What `POST /v1/stripe/create-credit-pack-session`'s `{"pack": id}` names.
    pub id: String,
    /// The purchased credits it grants, once.
    pub credits: i64,
    /// What Stripe charges for it (`interval` `once`); `null` when Stripe could not say.
    pub price: Option<PriceDetails>,
}

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    access_logged(ROUTE, &req, async { respond(plans(app, &req).await) }).await
}

async fn plans(app: &App, req: &Request) -> Result<Plans, ApiError> {
    bearer_request(app, req, http::Method::GET).await?;
    let billing = app.billing()?;
    let catalogue = &billing.config.catalogue;
    let sold: Vec<_> = catalogue.sold().collect();
    let packs: Vec<_> = billing.config.packs.sold().collect();
    // Half the time left at most: the list is answered even if Stripe hangs.
    let reads = sold
        .iter()
        .map(|plan| plan.price_id.as_str())
        .chain(packs.iter().map(|pack| pack.price_id.as_str()))
        .map(|price| billing.price_details(price));
    let wait = time_budget(req) / 2;
    let count = sold.len() + packs.len();
    let mut prices = tokio::time::timeout(wait, futures_util::future::join_all(reads))
        .await
        .unwrap_or_else(|_| vec![None; count])
        .into_iter();
    Ok(Plans {
        default_plan: catalogue.default_plan().id.to_string(),
        plans: sold
            .into_iter()
            .zip(prices.by_ref())
            .map(|(plan, price)| PlanView {
                id: plan.id.to_string(),
                credits_per_period: plan.credits,
                price,
            })
            .collect(),
        packs: packs
            .into_iter()
            .zip(prices)
            .map(|(pack, price)| PackView {
                id: pack.id.to_string(),
                credits: pack.credits,
                price,
            })
            .collect(),
    })
}
