//! Apps wired like a Lambda's (DynamoDB on the emulator, Stripe on a stub) and requests shaped
//! like API Gateway's, for calling handlers directly.

use std::sync::Arc;

use common::App;
use common::billing::Billing;
use common::config::{Config, StripeConfig};
use common::store::Store;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use crate::{binaries, emulator, stripe_stub};

/// Configuration of the test apps.
pub fn config() -> Config {
    let mut config = common::testing::config();
    config.storage = emulator::storage_config();
    config
}

/// Stripe settings pointing at `stub_uri`, with a short per-attempt timeout.
pub fn stripe_config(stub_uri: &str) -> StripeConfig {
    stripe_config_with(stub_uri, &[])
}

/// [`stripe_config`] with the variables of `set` set (or replaced) too, e.g. `PLANS`.
pub fn stripe_config_with(stub_uri: &str, set: &[(&str, &str)]) -> StripeConfig {
    let set = |name: &str| {
        set.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    StripeConfig::from_lookup(|name| {
        set(name).or_else(|| match name {
            "STRIPE_SECRET_KEY" => Some(stripe_stub::SECRET_KEY.to_owned()),
            "STRIPE_PRICE_ID" => Some(stripe_stub::PRICE.to_owned()),
            "PLAN_CREDITS" => Some("1000".to_owned()),
            "CREDIT_PACKS" => Some(stripe_stub::credit_packs()),
            "STRIPE_API_BASE" => Some(stub_uri.to_owned()),
            "STRIPE_TIMEOUT_MS" => Some("2000".to_owned()),
            "STRIPE_WEBHOOK_SECRET" => Some(stripe_stub::WEBHOOK_SECRET.to_owned()),
            _ => None,
        })
    })
    .expect("test Stripe configuration is valid")
}

/// An app on `store`, with Stripe at `stub_uri` (or without billing).
pub fn app(store: Arc<dyn Store>, stub_uri: Option<&str>) -> App {
    let billing = stub_uri.map(|uri| Billing::new(stripe_config(uri)).expect("billing builds"));
    App::new(config(), store, billing)
}

/// The login-deletion settings of an app whose auth service is the stand-in at `auth_uri`,
/// with the service-role key `key`.
pub fn login_config(auth_uri: &str, key: &str) -> common::login::LoginConfig {
    common::login::LoginConfig::from_lookup(|name| match name {
        "SUPABASE_URL" => Some(auth_uri.to_owned()),
        "SUPABASE_SERVICE_ROLE_KEY" => Some(key.to_owned()),
        _ => None,
    })
    .expect("test login configuration is valid")
    .expect("login deletion is on")
}

/// An app on `store`, with Stripe at `stub_uri` and logins deleted at the auth stand-in at
/// `auth_uri` (as the delete-account Lambda is built).
pub fn erasure_app(store: Arc<dyn Store>, stub_uri: &str, auth_uri: &str) -> App {
    let login = common::login::LoginAdmin::new(login_config(
        auth_uri,
        crate::auth_admin_stub::SERVICE_ROLE_KEY,
    ));
    app(store, Some(stub_uri)).with_login(login)
}

/// An app on `store` verifying tokens with the JWKS at `jwks_url` (ES256/RS256), without billing.
pub fn jwks_app(store: Arc<dyn Store>, jwks_url: String) -> App {
    let mut config = config();
    config.jwt.keys = common::config::JwtKeys::JwksUrl(jwks_url);
    App::new(config, store, None)
}

/// The sample event `file` of `events/`, sent by `user` (a fresh valid token), as a request.
pub fn request(file: &str, user: &str) -> Request {
    let event = binaries::event_as(file, user);
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event")
}

/// The sample event `file` of `events/` carrying `Authorization: Bearer <token>`, as a request.
pub fn request_bearing(file: &str, token: &str) -> Request {
    let mut event = binaries::event(file);
    event["headers"]["authorization"] = format!("Bearer {token}").into();
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event")
}

/// Calls the handler of `function` (a crate name: `user-status`, `stripe-webhook`, ...), from the
/// route table the local API serves, as that function: its DynamoDB calls are signed with the
/// function's credentials and allowed only what its policy grants ([`emulator::as_function`]).
pub async fn handle(function: &str, app: &App, req: Request) -> Response<Body> {
    let route = local_api::routes::ROUTES
        .iter()
        .find(|route| route.function == function);
    match route {
        Some(route) => {
            emulator::as_function(
                route.function,
                local_api::routes::handle(function, app, req),
            )
            .await
        }
        None => local_api::routes::handle(function, app, req).await,
    }
}

/// Status and JSON body of a handler response.
pub fn parts(response: Response<Body>) -> (u16, http::HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = serde_json::from_slice(response.body().as_ref()).expect("JSON body");
    (status, headers, body)
}

/// A webhook delivery of `event` signed with `secret` at `timestamp` (raw body, as API Gateway
/// passes a JSON body).
pub fn webhook(event: &Value, secret: &str, timestamp: i64) -> Request {
    let body = event.to_string();
    let signature = common::webhook::signature::sign(body.as_bytes(), secret, timestamp);
    http::Request::builder()
        .method(http::Method::POST)
        .uri("/webhooks/stripe")
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", signature)
        .body(Body::Text(body))
        .expect("valid request")
}

/// A Stripe event of `kind` about `object`, built on Stripe's event fixture.
pub fn event(id: &str, kind: &str, object: Value) -> Value {
    let mut event = stripe_stub::fixture("event");
    event["id"] = json!(id);
    event["type"] = json!(kind);
    event["data"] = json!({ "object": object });
    event
}

/// Delivers a new event of `kind` about `object` to the webhook twice (a redelivery), each
/// signed now and acknowledged with 200.
pub async fn deliver_twice(app: &App, kind: &str, object: Value) {
    let id = format!("evt_{}", crate::tokens::new_user().replace('-', ""));
    for _ in 0..2 {
        let req = webhook(
            &event(&id, kind, object.clone()),
            stripe_stub::WEBHOOK_SECRET,
            common::unix_now(),
        );
        let (status, _, body) = parts(Box::pin(handle("stripe-webhook", app, req)).await);
        assert_eq!(status, 200, "{body}");
    }
}

/// A user with a free record, linked to a fresh Stripe customer id.
pub async fn customer_of_new_user(store: &Arc<dyn Store>) -> (common::domain::UserId, String) {
    let user = common::domain::UserId::parse(&crate::tokens::new_user()).unwrap();
    store
        .create_user(&common::domain::UserRecord::new_free(
            user.clone(),
            10,
            1_700_000_000,
        ))
        .await
        .unwrap();
    let customer = format!("cus_{}", uuid::Uuid::new_v4().simple());
    store.link_customer(&user, &customer).await.unwrap();
    (user, customer)
}

/// The customer's one active subscription at Stripe, `sub_paid`, whose latest invoice is the
/// paid `invoice` (created at `created`, for `billing_reason`): what the sync reads, and grants
/// from, when that invoice's `invoice.paid` arrives.
pub fn subscription_paid_by(
    customer: &str,
    invoice: &str,
    created: i64,
    billing_reason: &str,
) -> Value {
    let mut sub = stripe_stub::subscription("sub_paid", customer, "active", 1, 1_900_000_000);
    let mut paid = stripe_stub::paid_invoice(invoice, "sub_paid", created, billing_reason);
    paid["customer"] = json!(customer);
    sub["latest_invoice"] = paid;
    sub
}

/// The `invoice.paid` event `id` of the subscription `sub_paid`'s invoice `invoice`.
pub fn invoice_paid(id: &str, invoice: &str, customer: &str, created: i64) -> Value {
    invoice_paid_for(id, invoice, customer, created, "subscription_cycle")
}

/// [`invoice_paid`] for an invoice issued for `billing_reason`.
pub fn invoice_paid_for(
    id: &str,
    invoice: &str,
    customer: &str,
    created: i64,
    billing_reason: &str,
) -> Value {
    let mut object = stripe_stub::paid_invoice(invoice, "sub_paid", created, billing_reason);
    object["customer"] = json!(customer);
    event(id, "invoice.paid", object)
}
