//! Local defaults: the environment wins; what is missing gets a development value. Without JWT
//! settings a random HS256 secret is generated and a demo token printed. (The Lambdas never do
//! this: they refuse to start without JWT settings.)

use std::time::Duration;

use common::billing::Billing;
use common::config::{Config, ConfigError, StripeConfig};
use common::login::{LoginAdmin, LoginConfig};
use common::testing;

/// The user the printed demo token belongs to.
pub const DEMO_USER: &str = "00000000-0000-4000-8000-000000000001";
/// Issuer of development tokens.
const DEV_ISSUER: &str = "http://127.0.0.1/auth/v1";
/// Lifetime of the printed demo token.
const DEMO_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// The environment plus local defaults.
pub struct LocalConfig {
    env: fn(&str) -> Option<String>,
    dev_secret: Option<String>,
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
        LocalConfig { env, dev_secret }
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

    /// Stripe, when `STRIPE_SECRET_KEY` is set; without it the billing endpoints answer 503
    /// `BILLING_NOT_CONFIGURED`.
    pub fn billing(&self) -> Result<Option<Billing>, ConfigError> {
        if (self.env)("STRIPE_SECRET_KEY").is_none() {
            return Ok(None);
        }
        Ok(Some(Billing::new(StripeConfig::from_lookup(self.env)?)?))
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

    /// A valid token for [`DEMO_USER`], when the secret was generated here.
    pub fn demo_token(&self, config: &Config) -> Option<String> {
        let secret = self.dev_secret.as_ref()?;
        let lifetime = DEMO_TOKEN_TTL.as_secs() as i64;
        let mut claims = testing::claims_for(DEMO_USER, &config.jwt.issuer, lifetime);
        claims["aud"] = config.jwt.audience.clone().into();
        Some(testing::hs256(&claims, secret))
    }
}
