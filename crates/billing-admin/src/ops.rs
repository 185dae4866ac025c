//! What the tool works with: the store, the rules, and (read only when a subcommand needs
//! them) Stripe and the auth service's admin API.

use std::sync::Arc;

use common::billing::Billing;
use common::config::{ConfigError, Rules, StorageConfig, StripeConfig, env};
use common::login::{LoginAdmin, LoginConfig};
use common::store::{DynamoStore, Store};

use crate::{Exit, Failure};

/// The services of one run.
pub struct Ops {
    /// The users table.
    pub store: Arc<dyn Store>,
    /// The business rules, as the functions read them.
    pub rules: Rules,
    /// Stripe, or why it is not configured.
    pub billing: Result<Billing, ConfigError>,
    /// The auth service's admin API (`None`: logins are kept), or why it is not configured.
    pub login: Result<Option<LoginAdmin>, ConfigError>,
}

impl Ops {
    /// The services the environment names, storage with the environment's AWS credentials. A
    /// bad storage or rules setting stops the tool; Stripe's and the auth service's stop only
    /// the subcommands that need them.
    pub async fn from_env() -> Result<Ops, ConfigError> {
        let storage = StorageConfig::from_lookup(env)?;
        let store = DynamoStore::connect(&storage).await?;
        Ok(Ops {
            store: Arc::new(store),
            rules: Rules::from_lookup(env)?,
            billing: StripeConfig::from_env().and_then(Billing::new),
            login: LoginConfig::from_env().map(|config| config.map(LoginAdmin::new)),
        })
    }

    /// Stripe, or a usage failure naming the setting that is missing.
    pub fn billing(&self) -> Result<&Billing, Failure> {
        self.billing.as_ref().map_err(setting)
    }

    /// The auth service's admin API (`None`: logins are kept), or a usage failure.
    pub fn login(&self) -> Result<Option<&LoginAdmin>, Failure> {
        self.login.as_ref().map(Option::as_ref).map_err(setting)
    }
}

fn setting(err: &ConfigError) -> Failure {
    Failure::new(Exit::Usage, format!("{err}: this subcommand needs it"))
}
