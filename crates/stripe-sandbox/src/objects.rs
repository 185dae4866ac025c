//! Stripe objects and error bodies as Stripe's API answers them, each built from its fixture:
//! shared by the sandbox and the test suite's stub.

use serde_json::{Value, json};

use crate::fixtures::fixture;

/// The customer id created for an idempotency key: one key, one customer (as at Stripe, where
/// the same key replays the first answer).
pub fn customer_for_key(key: &str) -> String {
    // FNV-1a: stable across runs and platforms, so tests can name the customer in advance.
    let digest = key.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    format!("cus_stub{digest:08x}")
}

/// Customer `id` carrying `metadata`.
pub fn customer(id: &str, metadata: Value, created: i64) -> Value {
    let mut customer = fixture("customer");
    customer["id"] = json!(id);
    customer["metadata"] = metadata;
    customer["created"] = json!(created);
    customer["email"] = Value::Null;
    customer
}

/// What Stripe keeps of deleted customer `id`: `{"id", "object": "customer", "deleted": true}`.
pub fn deleted_customer(id: &str) -> Value {
    let mut deleted = fixture("deleted_customer");
    deleted["id"] = json!(id);
    deleted
}

/// Whether `customer` is a deleted customer.
pub fn is_deleted(customer: &Value) -> bool {
    customer["deleted"] == json!(true)
}

/// A subscription of `customer` to `price` with the given status, creation time and period end
/// (in API version 2026-09-30 the period lives on each item).
pub fn subscription(
    id: &str,
    customer: &str,
    price: &str,
    status: &str,
    created: i64,
    period_end: i64,
) -> Value {
    let mut sub = fixture("subscription");
    sub["id"] = json!(id);
    sub["customer"] = json!(customer);
    sub["status"] = json!(status);
    sub["created"] = json!(created);
    sub["start_date"] = json!(created);
    sub["billing_cycle_anchor"] = json!(created);
    sub["cancel_at_period_end"] = json!(false);
    sub["latest_invoice"] = Value::Null;
    let item = &mut sub["items"]["data"][0];
    item["subscription"] = json!(id);
    item["current_period_start"] = json!(created);
    item["current_period_end"] = json!(period_end);
    item["price"]["id"] = json!(price);
    sub
}

/// A paid invoice of subscription `sub`, created at `created`, with `billing_reason`
/// (`subscription_create`, `subscription_cycle`, `subscription_update`, ...). In API version
/// 2026-09-30 its subscription sits under `parent.subscription_details`.
pub fn paid_invoice(id: &str, sub: &str, created: i64, billing_reason: &str) -> Value {
    let mut invoice = fixture("invoice");
    invoice["id"] = json!(id);
    invoice["status"] = json!("paid");
    invoice["created"] = json!(created);
    invoice["billing_reason"] = json!(billing_reason);
    invoice["parent"] = json!({"type": "subscription_details", "quote_details": null,
        "subscription_details": {"metadata": {}, "subscription": sub}});
    invoice
}

/// `invoice` with `lines` (amount, price) as its line items, in `currency`, each over the 30
/// days from the invoice's creation (see [`over`] for another period): in API version
/// 2026-09-30 a line names its price under `pricing.price_details`, and a proration says so
/// under `parent.subscription_item_details`.
pub fn with_lines(mut invoice: Value, lines: &[(i64, &str)], currency: &str) -> Value {
    let template = invoice["lines"]["data"][0].clone();
    let id = invoice["id"].clone();
    let proration = invoice["billing_reason"] == "subscription_update";
    let data: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(n, (amount, price))| {
            let mut line = if template.is_object() {
                template.clone()
            } else {
                json!({})
            };
            line["id"] = json!(format!("il_{}_{n}", id.as_str().unwrap_or_default()));
            line["object"] = json!("line_item");
            line["invoice"] = id.clone();
            line["amount"] = json!(amount);
            line["subtotal"] = json!(amount);
            line["currency"] = json!(currency);
            line["pricing"] = json!({"type": "price_details", "unit_amount_decimal": null,
                "price_details": {"price": price, "product": "prod_sandbox"}});
            line["parent"] = json!({"type": "subscription_item_details",
                "invoice_item_details": null,
                "subscription_item_details": {"invoice_item": null, "proration": proration,
                    "proration_details": null, "subscription": null,
                    "subscription_item": "si_sandbox"}});
            line
        })
        .collect();
    invoice["lines"] = json!({"object": "list", "data": data, "has_more": false,
        "url": format!("/v1/invoices/{}/lines", id.as_str().unwrap_or_default())});
    let created = invoice["created"].as_i64().unwrap_or_default();
    over(invoice, [created, created + 30 * 86_400])
}

/// `invoice` with each line over `period` (start, end): a period's own line covers the
/// period, a proration the rest of it. The invoice's own `period_start` and `period_end` say
/// the same here (at Stripe a renewal's name the period before it, whose usage it bills).
pub fn over(mut invoice: Value, [start, end]: [i64; 2]) -> Value {
    if let Some(lines) = invoice["lines"]["data"].as_array_mut() {
        for line in lines {
            line["period"] = json!({"start": start, "end": end});
        }
    }
    invoice["period_start"] = json!(start);
    invoice["period_end"] = json!(end);
    invoice
}

/// A price object of `id` at `unit_amount`, as a subscription item holds it.
pub fn price_of(id: &str, unit_amount: i64) -> Value {
    let mut price = fixture("price");
    price["id"] = json!(id);
    price["unit_amount"] = json!(unit_amount);
    price["unit_amount_decimal"] = json!(unit_amount.to_string());
    price
}

/// The payment intent that paid invoice `invoice` in the sandbox: `pi_for_<invoice>`.
pub fn payment_intent_of(invoice: &str) -> String {
    format!("pi_for_{invoice}")
}

/// An event of type `kind` about `object`, as Stripe delivers it to a webhook endpoint.
pub fn event(id: &str, kind: &str, object: Value, created: i64) -> Value {
    let mut event = fixture("event");
    event["id"] = json!(id);
    event["type"] = json!(kind);
    event["created"] = json!(created);
    event["api_version"] = json!(crate::API_VERSION);
    event["data"] = json!({"object": object});
    event["pending_webhooks"] = json!(1);
    event
}

/// One page of `objects` as a Stripe list answers it at `url`, for the request's `limit`
/// (default 10) and `starting_after`, capped at `page_size` (Stripe's cap is 100).
pub fn page_of(
    objects: &[Value],
    params: &[(String, String)],
    page_size: usize,
    url: &str,
) -> Value {
    let limit = param(params, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .min(page_size);
    let start = match param(params, "starting_after") {
        Some(after) => objects
            .iter()
            .position(|o| o["id"] == after)
            .map_or(objects.len(), |i| i + 1),
        None => 0,
    };
    let data: Vec<Value> = objects.iter().skip(start).take(limit).cloned().collect();
    let has_more = start + data.len() < objects.len();
    json!({"object": "list", "data": data, "has_more": has_more, "url": url})
}

/// Whether the request of `params` asked for `field` expanded (`expand[]=field`).
pub fn asks_to_expand(params: &[(String, String)], field: &str) -> bool {
    params
        .iter()
        .any(|(k, v)| k.starts_with("expand[") && v == field)
}

/// A subscription list with each `latest_invoice` as Stripe sends it: the object only where the
/// request asked for `expand[]=data.latest_invoice`, else its id.
pub fn expanded(mut list: Value, params: &[(String, String)]) -> Value {
    let expand = asks_to_expand(params, "data.latest_invoice");
    if let Some(data) = list["data"].as_array_mut().filter(|_| !expand) {
        for sub in data.iter_mut() {
            *sub = collapsed(sub);
        }
    }
    list
}

/// A subscription with its latest invoice as its id, as events and unexpanded answers carry it.
pub fn collapsed(sub: &Value) -> Value {
    let mut sub = sub.clone();
    if sub["latest_invoice"].is_object() {
        sub["latest_invoice"] = sub["latest_invoice"]["id"].clone();
    }
    sub
}

/// The value of parameter `name` of a request's form or query.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Stripe's error body.
pub fn error(kind: &str, code: Option<&str>, param: Option<&str>, message: &str) -> Value {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    json!({ "error": error })
}

/// Stripe's answer (with 400, or 404 for a path id) to a request naming an object that does not
/// exist (any more): `resource_missing`, e.g. `No such customer: 'cus_...'`.
pub fn no_such(what: &str, id: &str, param: &str) -> Value {
    error(
        "invalid_request_error",
        Some("resource_missing"),
        Some(param),
        &format!("No such {what}: '{id}'"),
    )
}

/// Stripe's 409 body for a request whose idempotency key is held by one still executing.
pub fn idempotency_conflict(key: &str) -> Value {
    error(
        "idempotency_error",
        None,
        None,
        &format!(
            "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {key}. Please try again later."
        ),
    )
}

/// Stripe's error body for a failure of its own (`rate_limit_error` for 429, else `api_error`).
pub fn server_error(status: u16) -> Value {
    let kind = if status == 429 {
        "rate_limit_error"
    } else {
        "api_error"
    };
    error(
        kind,
        None,
        None,
        "Stripe could not answer this request; try again later.",
    )
}
