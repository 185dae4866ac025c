//! Local defaults: the environment wins; what is missing gets a development value. Without JWT
//! settings a random HS256 secret is generated, tokens can be minted for any user and a demo
//! token is printed. Without a Stripe key, billing runs on the embedded Stripe sandbox. (The
//! Lambdas never do this: they refuse to start without JWT and Stripe settings.)

use std::net::SocketAddr;
use std::time::Duration;

use common::billing::Billing;
use common::config::{Config, ConfigError, StripeConfig};
use common::login::{LoginAdmin, LoginConfig};
use common::testing;
use stripe_sandbox::{Endpoint, Pack, Plan, Sandbox};

/// The user the printed demo token belongs to.
pub const DEMO_USER: &str = "00000000-0000-4000-8000-000000000001";
/// Issuer of development tokens.
const DEV_ISSUER: &str = "http://127.0.0.1/auth/v1";
/// Lifetime of the printed demo token and of minted ones.
const DEMO_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// The price the sandbox sells.
pub const SANDBOX_PRICE: &str = "price_sandbox_pro_monthly";
/// The secret key the billing client presents to the sandbox.
const SANDBOX_SECRET_KEY: &str = "sk_test_sandbox";
/// The credits of a paid period on the sandbox, unless `PLAN_CREDITS` says otherwise.
const SANDBOX_PLAN_CREDITS: &str = "1000";
/// The credit packs the sandbox sells, unless `CREDIT_PACKS` says otherwise.
const SANDBOX_PACKS: &str =
    "small:price_sandbox_pack_small:500,large:price_sandbox_pack_large:3000";
/// The sandbox's price per 30-day period, in cents.
const SANDBOX_AMOUNT_CENTS: i64 = 999;

/// The environment plus local defaults.
pub struct LocalConfig {
    env: fn(&str) -> Option<String>,
    dev_secret: Option<String>,
    sandbox_webhook_secret: String,
}

impl LocalConfig {
    /// Reads the process environment; generates a dev secret if no JWT key is configured.
    pub fn from_env() -> Self {
        let env: fn(&str) -> Option<String> = |name| std::env::var(name).ok();
        let has_jwt = env("JWT_HS256_SECRET").is_some() || env("JWT_JWKS_URL").is_some();
        let dev_secret = (!has_jwt).then(|| {
            format!(
                "dev-{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        });
        let sandbox_webhook_secret = format!("whsec_sandbox_{}", uuid::Uuid::new_v4().simple());
        LocalConfig {
            env,
            dev_secret,
            sandbox_webhook_secret,
        }
    }

    /// DynamoDB is used when an endpoint or a table is configured.
    pub fn uses_dynamodb(&self) -> bool {
        (self.env)("DYNAMODB_ENDPOINT").is_some() || (self.env)("TABLE_NAME").is_some()
    }

    /// The validated configuration.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            (self.env)(name).or_else(|| match name {
                "TABLE_NAME" => Some("local".into()),
                "AWS_REGION" => Some("us-east-1".into()),
                "JWT_ISSUER" => Some(DEV_ISSUER.into()),
                "JWT_HS256_SECRET" => self.dev_secret.clone(),
                _ => None,
            })
        })
    }

    /// Whether `STRIPE_SECRET_KEY` is set: then Stripe itself (test mode) is used, with the
    /// Lambdas' settings; else the embedded sandbox.
    pub fn uses_stripe(&self) -> bool {
        (self.env)("STRIPE_SECRET_KEY").is_some()
    }

    /// Stripe itself, with the Lambdas' settings, in test mode only: a live key (`sk_live_`,
    /// `rk_live_`) is refused, since the local API mints tokens and serves anyone on loopback.
    pub fn stripe(&self) -> Result<Billing, ConfigError> {
        let config = StripeConfig::from_lookup(self.env)?;
        if config.secret_key.contains("_live_") {
            return Err(ConfigError {
                variable: "STRIPE_SECRET_KEY",
                problem: "is a live-mode key; the local API takes test-mode keys (sk_test_...) only",
            });
        }
        Billing::new(config)
    }

    /// Starts the Stripe sandbox on `listener`, delivering its events to the local API at
    /// `api`, and its billing client: the sandbox's URL, key, price and signing secret;
    /// `PLAN_NAME`, `PLAN_CREDITS` and the return URLs from the environment when set, else
    /// the sandbox's pages. The plan the sandbox shows is the validated configuration's.
    /// Its checkout and portal pages are handed out under `public_host` when one is named (the
    /// host a phone or an emulator reaches this machine by), else under the listener's address.
    /// The default return URLs stay on the listener's address: the configuration takes http
    /// only to a loopback address, so on a device set `CHECKOUT_SUCCESS_URL`,
    /// `CHECKOUT_CANCEL_URL` and `PORTAL_RETURN_URL` to https pages (or the app's links).
    pub fn sandbox(
        &self,
        listener: tokio::net::TcpListener,
        api: SocketAddr,
        public_host: Option<&str>,
    ) -> Result<(Sandbox, Billing), ConfigError> {
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let api_base = format!("http://{address}");
        let base = api_base.clone();
        let pages = public_host.map(|host| format!("http://{host}:{}", address.port()));
        let config = StripeConfig::from_lookup(|name| {
            let fixed = match name {
                "STRIPE_SECRET_KEY" => Some(SANDBOX_SECRET_KEY.to_owned()),
                "STRIPE_PRICE_ID" => Some(SANDBOX_PRICE.to_owned()),
                "STRIPE_API_BASE" => Some(api_base.clone()),
                "STRIPE_WEBHOOK_SECRET" => Some(self.sandbox_webhook_secret.clone()),
                _ => None,
            };
            fixed.or_else(|| (self.env)(name)).or_else(|| match name {
                "PLAN_CREDITS" => Some(SANDBOX_PLAN_CREDITS.to_owned()),
                "CREDIT_PACKS" => Some(SANDBOX_PACKS.to_owned()),
                "CHECKOUT_SUCCESS_URL" => Some(format!("{base}/done/checkout-success")),
                "CHECKOUT_CANCEL_URL" => Some(format!("{base}/done/checkout-canceled")),
                "PORTAL_RETURN_URL" => Some(format!("{base}/done/portal")),
                _ => None,
            })
        })?;
        // The sandbox sells the catalogue's plans, priced in proportion to their credits.
        let first = config.catalogue.default_plan().credits;
        let plans = config
            .catalogue
            .sold()
            .map(|plan| Plan {
                price_id: plan.price_id.clone(),
                name: plan.id.to_string(),
                unit_amount: SANDBOX_AMOUNT_CENTS * plan.credits / first,
                currency: "usd".to_owned(),
                period_secs: 30 * 86_400,
                credits: plan.credits,
            })
            .collect();
        // And the packs, at a cent a credit.
        let packs = config
            .packs
            .sold()
            .map(|pack| Pack {
                price_id: pack.price_id.clone(),
                name: pack.id.to_string(),
                unit_amount: pack.credits,
                currency: "usd".to_owned(),
                credits: pack.credits,
            })
            .collect();
        let endpoint = Endpoint {
            url: format!("http://{api}/webhooks/stripe"),
            secret: self.sandbox_webhook_secret.clone(),
            first_retry: Duration::from_secs(1),
            attempts: 5,
        };
        let billing = Billing::new(config)?;
        let sandbox = Sandbox::start(listener, pages, plans, packs, endpoint);
        Ok((sandbox, billing))
    }

    /// The auth service's admin API for erasure, when `SUPABASE_URL` is set (then with the
    /// Lambda's rules: the key is required, `AUTH_USER_DELETION=off` still turns it off).
    /// Without it, erasure leaves the login at the auth service.
    pub fn login(&self) -> Result<Option<LoginAdmin>, ConfigError> {
        if (self.env)("SUPABASE_URL").is_none() {
            return Ok(None);
        }
        Ok(LoginConfig::from_lookup(self.env)?.map(LoginAdmin::new))
    }

    /// Mints tokens accepted by `config`, when the secret was generated here and nothing real
    /// is behind the API: the embedded store, the Stripe sandbox, no auth service's admin API.
    /// With a real table, a Stripe key or `SUPABASE_URL`, a minted token could erase or bill a
    /// real user, or delete their login.
    pub fn tokens(&self, config: &Config) -> Option<Tokens> {
        let deletes_logins = (self.env)("SUPABASE_URL").is_some();
        if self.uses_dynamodb() || self.uses_stripe() || deletes_logins {
            return None;
        }
        Some(Tokens {
            secret: self.dev_secret.clone()?,
            issuer: config.jwt.issuer.clone(),
            audience: config.jwt.audience.clone(),
        })
    }
}

/// Access tokens for any user, signed with the generated development secret.
pub struct Tokens {
    secret: String,
    issuer: String,
    audience: String,
}

impl Tokens {
    /// Lifetime of a minted token, in seconds.
    pub const LIFETIME_SECS: i64 = DEMO_TOKEN_TTL.as_secs() as i64;

    /// A token of `user` (a UUID), valid for [`Tokens::LIFETIME_SECS`].
    pub fn mint(&self, user: &str) -> String {
        let mut claims = testing::claims_for(user, &self.issuer, Self::LIFETIME_SECS);
        claims["aud"] = self.audience.clone().into();
        testing::hs256(&claims, &self.secret)
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("secret", &"<redacted>")
            .finish()
    }
}
