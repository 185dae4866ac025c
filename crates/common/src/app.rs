//! What a Lambda builds once at cold start and every invocation shares.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::billing::Billing;
use crate::config::{Config, ConfigError, StripeConfig, env};
use crate::error::ApiError;
use crate::login::{LoginAdmin, LoginConfig};
use crate::secrets::{Secret, Secrets};
use crate::store::{DynamoStore, Store};

/// Upper bound of one JWKS fetch.
pub const JWKS_TIMEOUT: Duration = Duration::from_secs(2);

/// Config, token verifier, store and (for billing endpoints) Stripe, shared by all invocations.
pub struct App {
    /// Validated configuration.
    pub config: Config,
    /// Access-token verifier.
    pub auth: Authenticator,
    /// User records.
    pub store: Arc<dyn Store>,
    billing: Option<Billing>,
    login: Option<LoginAdmin>,
}

/// Whether a function needs the Stripe settings at init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Auth and storage only.
    Storage,
    /// Auth, storage and Stripe: missing Stripe settings stop the function at init.
    Billing,
    /// Storage, Stripe and the webhook signing secret (the webhook takes no bearer token).
    Webhook,
    /// Storage and Stripe, on a schedule: no bearer token.
    Reconcile,
    /// Auth, storage, Stripe and the auth service's admin API (erasure deletes the login): its
    /// settings are required unless `AUTH_USER_DELETION=off` says otherwise.
    Erasure,
}

impl Needs {
    /// The secrets a function with these needs reads: its token key (where it verifies tokens),
    /// the Stripe key, the webhook's signing secret, erasure's service-role key.
    pub fn secrets(self) -> &'static [Secret] {
        match self {
            Needs::Storage => &[Secret::JwtHs256],
            Needs::Billing => &[Secret::JwtHs256, Secret::StripeKey],
            Needs::Webhook => &[Secret::StripeKey, Secret::StripeWebhook],
            Needs::Reconcile => &[Secret::StripeKey],
            Needs::Erasure => &[Secret::JwtHs256, Secret::StripeKey, Secret::ServiceRoleKey],
        }
    }

    /// Whether a function with these needs verifies bearer tokens.
    fn verifies_tokens(self) -> bool {
        self.secrets().contains(&Secret::JwtHs256)
    }
}

impl App {
    /// Assembles an app from its parts (tests and the local API pick the store).
    pub fn new(config: Config, store: Arc<dyn Store>, billing: Option<Billing>) -> Self {
        let auth = Authenticator::new(&config.jwt, JWKS_TIMEOUT);
        App {
            config,
            auth,
            store,
            billing,
            login: None,
        }
    }

    /// This app, deleting logins at the auth service on erasure.
    pub fn with_login(mut self, login: LoginAdmin) -> Self {
        self.login = Some(login);
        self
    }

    /// The auth service's admin API, where erasure deletes the login; `None` where
    /// `AUTH_USER_DELETION=off` (or, in the local API, where it is not configured).
    pub fn login(&self) -> Option<&LoginAdmin> {
        self.login.as_ref()
    }

    /// The Stripe client, or 503 `BILLING_NOT_CONFIGURED` where Stripe settings are absent
    /// (only possible in the local API: billing Lambdas refuse to start without them).
    pub fn billing(&self) -> Result<&Billing, ApiError> {
        self.billing.as_ref().ok_or(ApiError::BillingNotConfigured)
    }

    /// The app of a Lambda: configuration from the environment and the secrets `needs` names
    /// from Secrets Manager ([`Secrets`]), records in DynamoDB.
    pub async fn from_env(needs: Needs) -> Result<Self, ConfigError> {
        let (config, secrets) = App::settings(needs).await?;
        let store = DynamoStore::connect(&config.storage).await?;
        App::from_lookup_with_store(needs, config, Arc::new(store), |n| secrets.get(n, env))
    }

    /// [`App::from_env`] storing in `store`: the same configuration and secrets, read the same
    /// way (the bench measures handlers on the embedded store so).
    pub async fn from_env_with_store(
        needs: Needs,
        store: Arc<dyn Store>,
    ) -> Result<Self, ConfigError> {
        let (config, secrets) = App::settings(needs).await?;
        App::from_lookup_with_store(needs, config, store, |n| secrets.get(n, env))
    }

    /// The configuration of a function with `needs`, and the secrets it reads.
    async fn settings(needs: Needs) -> Result<(Config, Secrets), ConfigError> {
        let secrets = Secrets::fetch(needs.secrets(), env).await?;
        let lookup = |name: &str| secrets.get(name, env);
        let config = match needs.verifies_tokens() {
            true => Config::from_lookup(lookup)?,
            false => Config::without_tokens(lookup)?,
        };
        Ok((config, secrets))
    }

    /// [`App::from_env_with_store`], the services' settings read through `lookup`.
    fn from_lookup_with_store(
        needs: Needs,
        config: Config,
        store: Arc<dyn Store>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let billing = match needs {
            Needs::Storage => None,
            Needs::Billing | Needs::Erasure | Needs::Reconcile => {
                Some(Billing::new(StripeConfig::from_lookup(&lookup)?)?)
            }
            Needs::Webhook => {
                let stripe = StripeConfig::from_lookup(&lookup)?;
                if stripe.webhook_secret.is_none() {
                    return Err(ConfigError {
                        variable: "STRIPE_WEBHOOK_SECRET",
                        problem: "is missing or empty",
                    });
                }
                Some(Billing::new(stripe)?)
            }
        };
        let login = match needs {
            Needs::Erasure => LoginConfig::from_lookup(&lookup)?.map(LoginAdmin::new),
            _ => None,
        };
        let app = App::new(config, store, billing);
        Ok(match login {
            Some(login) => app.with_login(login),
            None => app,
        })
    }

    /// [`App::from_env`], or one log line naming the bad variable and exit code 1.
    pub async fn from_env_or_exit(needs: Needs) -> Self {
        match App::from_env(needs).await {
            Ok(app) => app,
            Err(err) => {
                tracing::error!(variable = err.variable, "{err}; refusing to start");
                std::process::exit(1);
            }
        }
    }
}
