//! The API's route table, one source for the local API and the tests: each route is its
//! function's own `ROUTE` constant (what `template.yaml` routes to it), served locally by
//! dispatching on the path, as API Gateway does.

use common::ApiError;
use common::App;
use common::endpoint::error_response;
use lambda_http::{Body, Request, Response};

/// One route of the API and the function behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// API Gateway's route key, `METHOD /path`: the function crate's `ROUTE`.
    pub key: &'static str,
    /// The function's crate name, which names its binary and its sample event in `events/`.
    pub function: &'static str,
    /// Whether the caller authenticates with the client's bearer token (all but the webhook).
    pub bearer: bool,
}

impl Route {
    /// The method the route accepts.
    pub fn method(&self) -> &'static str {
        self.key.split_once(' ').map_or("", |(method, _)| method)
    }

    /// The route's path.
    pub fn path(&self) -> &'static str {
        self.key.split_once(' ').map_or(self.key, |(_, path)| path)
    }
}

/// Every route of the API.
pub const ROUTES: [Route; 10] = [
    Route {
        key: user_status::ROUTE,
        function: "user-status",
        bearer: true,
    },
    Route {
        key: credit_history::ROUTE,
        function: "credit-history",
        bearer: true,
    },
    Route {
        key: user_export::ROUTE,
        function: "user-export",
        bearer: true,
    },
    Route {
        key: billing_plans::ROUTE,
        function: "billing-plans",
        bearer: true,
    },
    Route {
        key: delete_account::ROUTE,
        function: "delete-account",
        bearer: true,
    },
    Route {
        key: create_checkout_session::ROUTE,
        function: "create-checkout-session",
        bearer: true,
    },
    Route {
        key: create_portal_session::ROUTE,
        function: "create-portal-session",
        bearer: true,
    },
    Route {
        key: create_credit_pack_session::ROUTE,
        function: "create-credit-pack-session",
        bearer: true,
    },
    Route {
        key: sync_subscription::ROUTE,
        function: "sync-subscription",
        bearer: true,
    },
    Route {
        key: stripe_webhook::ROUTE,
        function: "stripe-webhook",
        bearer: false,
    },
];

/// Calls the handler of `function` (a crate name of [`ROUTES`]) with `req`; an unknown name is
/// 404.
pub async fn handle(function: &str, app: &App, req: Request) -> Response<Body> {
    match function {
        "user-status" => user_status::handle(app, req).await,
        "credit-history" => credit_history::handle(app, req).await,
        "user-export" => user_export::handle(app, req).await,
        "billing-plans" => billing_plans::handle(app, req).await,
        "delete-account" => delete_account::handle(app, req).await,
        "create-checkout-session" => create_checkout_session::handle(app, req).await,
        "create-portal-session" => create_portal_session::handle(app, req).await,
        "create-credit-pack-session" => create_credit_pack_session::handle(app, req).await,
        "sync-subscription" => sync_subscription::handle(app, req).await,
        "stripe-webhook" => stripe_webhook::handle(app, req).await,
        _ => error_response(&ApiError::NotFound),
    }
}

/// Dispatches by path, as API Gateway does; each handler checks its own method (405).
pub async fn route(app: &App, req: Request) -> Response<Body> {
    let path = req.uri().path();
    match ROUTES.iter().find(|route| route.path() == path) {
        Some(route) => handle(route.function, app, req).await,
        None => error_response(&ApiError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_method_a_path_and_its_own_function() {
        for route in ROUTES {
            assert!(
                ["GET", "POST", "DELETE"].contains(&route.method()),
                "{route:?}"
            );
            assert!(route.path().starts_with('/'), "{route:?}");
            let others = ROUTES.iter().filter(|r| r.function == route.function);
            assert_eq!(others.count(), 1, "{route:?}");
        }
    }
}
