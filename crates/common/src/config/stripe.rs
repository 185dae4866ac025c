//! The Stripe settings of the billing functions, and the reconciliation's.

use std::fmt;

use super::{ConfigError, Vars, env};
use crate::domain::packs::Packs;
use crate::domain::plans::Catalogue;
use crate::domain::reconcile::DEFAULT_MAX_SYNC_AGE_SECS;

/// Default page Checkout returns to after a successful payment.
pub const DEFAULT_CHECKOUT_SUCCESS_URL: &str = "https://chuk.chat/subscription?success=true";
/// Default page Checkout returns to when the user cancels.
pub const DEFAULT_CHECKOUT_CANCEL_URL: &str = "https://chuk.chat/subscription?canceled=true";
/// Default page the customer portal returns to.
pub const DEFAULT_PORTAL_RETURN_URL: &str = "https://chuk.chat/subscription";
/// Default per-attempt timeout of a Stripe call.
pub const DEFAULT_STRIPE_TIMEOUT_MS: u64 = 3000;

/// Stripe settings of the billing endpoints.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeConfig {
    /// Secret API key (`STRIPE_SECRET_KEY`, `sk_...` or restricted `rk_...`).
    pub secret_key: String,
    /// The plans sold and retired (`PLANS`, `RETIRED_PLANS`, or the one-plan form of
    /// `STRIPE_PRICE_ID`, `PLAN_CREDITS`, `PLAN_NAME` and `STRIPE_RETIRED_PRICE_IDS`).
    pub catalogue: Catalogue,
    /// The credit packs sold (`CREDIT_PACKS`; none when unset).
    pub packs: Packs,
    /// Checkout success page (`CHECKOUT_SUCCESS_URL`).
    pub checkout_success_url: String,
    /// Checkout cancel page (`CHECKOUT_CANCEL_URL`).
    pub checkout_cancel_url: String,
    /// Customer portal return page (`PORTAL_RETURN_URL`).
    pub portal_return_url: String,
    /// API base override for local Stripe servers and tests (`STRIPE_API_BASE`).
    pub api_base: Option<String>,
    /// Per-attempt timeout of a Stripe call (`STRIPE_TIMEOUT_MS`).
    pub timeout_ms: u64,
    /// Webhook signing secret (`STRIPE_WEBHOOK_SECRET`, `whsec_...`); required by the webhook only.
    pub webhook_secret: Option<String>,
    /// The most time between two syncs of a user with a Stripe customer, after which
    /// reconciliation re-syncs it (`RECONCILE_MAX_AGE_HOURS`, in seconds here).
    pub max_sync_age_secs: i64,
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"<redacted>")
            .field("catalogue", &self.catalogue)
            .field("packs", &self.packs)
            .field("api_base", &self.api_base)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl StripeConfig {
    /// Reads the Stripe settings of the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads the Stripe settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        let url_or = |name: &'static str, default: &str| {
            Ok::<_, ConfigError>(vars.http_url(name)?.unwrap_or_else(|| default.to_owned()))
        };
        let secret_key = vars.required("STRIPE_SECRET_KEY")?;
        if !(secret_key.starts_with("sk_") || secret_key.starts_with("rk_")) {
            return Err(ConfigError {
                variable: "STRIPE_SECRET_KEY",
                problem: "must be a Stripe secret key (sk_...) or restricted key (rk_...)",
            });
        }
        let timeout_ms = vars.integer(
            "STRIPE_TIMEOUT_MS",
            DEFAULT_STRIPE_TIMEOUT_MS as i64,
            50..=30_000,
            "must be an integer between 50 and 30000",
        )? as u64;
        let catalogue = super::plans::catalogue(&vars)?;
        Ok(StripeConfig {
            secret_key,
            packs: super::plans::packs(&vars, &catalogue)?,
            catalogue,
            checkout_success_url: url_or("CHECKOUT_SUCCESS_URL", DEFAULT_CHECKOUT_SUCCESS_URL)?,
            checkout_cancel_url: url_or("CHECKOUT_CANCEL_URL", DEFAULT_CHECKOUT_CANCEL_URL)?,
            portal_return_url: url_or("PORTAL_RETURN_URL", DEFAULT_PORTAL_RETURN_URL)?,
            api_base: vars.http_url("STRIPE_API_BASE")?,
            timeout_ms,
            webhook_secret: vars.get("STRIPE_WEBHOOK_SECRET"),
            max_sync_age_secs: vars.integer(
                "RECONCILE_MAX_AGE_HOURS",
                DEFAULT_MAX_SYNC_AGE_SECS / 3600,
                1..=720,
                "must be an integer between 1 and 720",
            )? * 3600,
        })
    }
}

/// Default number of users the reconciliation re-syncs at once (`RECONCILE_CONCURRENCY`).
pub const DEFAULT_RECONCILE_CONCURRENCY: usize = 8;
/// Default budget of a reconciliation run's Stripe calls per second (`RECONCILE_STRIPE_RPS`).
pub const DEFAULT_RECONCILE_STRIPE_RPS: u32 = 20;
/// Time a reconciliation run keeps back from its deadline: a batch started later could run past
/// it (each re-sync may retry Stripe for several seconds).
pub const RECONCILE_RESERVE: std::time::Duration = std::time::Duration::from_secs(20);

/// Settings of the scheduled reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// Users re-synced at once (`RECONCILE_CONCURRENCY`): a run waits for the slowest of each
    /// batch, so its rate is the lower of `stripe_rps` and this over a sync's latency (a sync
    /// makes one to three Stripe calls); 8 at about 0.35 s a sync reaches the default budget.
    pub concurrency: usize,
    /// Time kept back from the deadline to store the cursor: no batch starts within it, and a
    /// batch still running when it begins is stopped.
    pub reserve: std::time::Duration,
    /// The run's budget of Stripe calls per second (`RECONCILE_STRIPE_RPS`, default 20): every
    /// function shares the account's rate limit (about 100 reads a second in live mode).
    pub stripe_rps: std::num::NonZeroU32,
}

impl ReconcileConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads the reconciliation settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let concurrency = Vars(&lookup).integer(
            "RECONCILE_CONCURRENCY",
            DEFAULT_RECONCILE_CONCURRENCY as i64,
            1..=32,
            "must be an integer between 1 and 32",
        )? as usize;
        let stripe_rps = Vars(&lookup).integer(
            "RECONCILE_STRIPE_RPS",
            DEFAULT_RECONCILE_STRIPE_RPS as i64,
            1..=100,
            "must be an integer between 1 and 100",
        )?;
        Ok(ReconcileConfig {
            concurrency,
            reserve: RECONCILE_RESERVE,
            stripe_rps: std::num::NonZeroU32::new(stripe_rps as u32)
                .unwrap_or(std::num::NonZeroU32::MIN),
        })
    }
}
