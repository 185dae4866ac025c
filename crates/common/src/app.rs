//! What a Lambda builds once at cold start and every invocation shares.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::config::{Config, ConfigError};
use crate::store::{DynamoStore, Store};

/// Upper bound of one JWKS fetch.
pub const JWKS_TIMEOUT: Duration = Duration::from_secs(2);

/// Config, token verifier and store, shared by all invocations of a function.
pub struct App {
    /// Validated configuration.
    pub config: Config,
    /// Access-token verifier.
    pub auth: Authenticator,
    /// User records.
    pub store: Arc<dyn Store>,
}

impl App {
    /// Assembles an app from its parts (tests and the local API pick the store).
    pub fn new(config: Config, store: Arc<dyn Store>) -> Self {
        let auth = Authenticator::new(&config.jwt, JWKS_TIMEOUT);
        App {
            config,
            auth,
            store,
        }
    }

    /// The app of a Lambda: configuration from the environment, records in DynamoDB.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let store = DynamoStore::connect(&config.storage).await;
        Ok(App::new(config, Arc::new(store)))
    }

    /// [`App::from_env`], or one log line naming the bad variable and exit code 1.
    pub async fn from_env_or_exit() -> Self {
        match App::from_env().await {
            Ok(app) => app,
            Err(err) => {
                tracing::error!(variable = err.variable, "{err}; refusing to start");
                std::process::exit(1);
            }
        }
    }
}
