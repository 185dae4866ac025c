//! The sandbox's HTML pages: Checkout, the customer portal, the deliveries log, and where
//! the sandbox's own return URLs lead. Every value shown is escaped.

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use serde_json::Value;

use crate::api::{Pack, Plan};
use crate::webhooks::Delivery;

/// A whole page.
fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title} · Stripe sandbox</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1a1f36; }}
.card {{ border: 1px solid #e3e8ee; border-radius: 8px; padding: 1.5rem; margin: 1rem 0; }}
.price {{ font-size: 2rem; font-weight: 600; }}
.muted {{ color: #697386; font-size: .9rem; }}
button {{ font: inherit; padding: .6rem 1.2rem; border-radius: 6px; border: 1px solid #cdd3dc; background: #fff; cursor: pointer; margin: .2rem .4rem .2rem 0; }}
button.primary {{ background: #635bff; color: #fff; border-color: #635bff; }}
form {{ display: inline; }}
table {{ border-collapse: collapse; width: 100%; font-size: .9rem; }}
td, th {{ border-bottom: 1px solid #e3e8ee; padding: .4rem; text-align: left; vertical-align: top; }}
.banner {{ background: #fff8e1; border: 1px solid #f5c04a; border-radius: 6px; padding: .4rem .8rem; font-size: .85rem; }}
</style></head>
<body><p class="banner">Stripe sandbox: nothing here is charged. <a href="/">Webhook deliveries</a></p>
<h1>{title}</h1>
{body}
</body></html>"#,
        title = text(title),
    )
}

/// `1999` `usd` as `$19.99` (other currencies by code).
fn money(amount: i64, currency: &str) -> String {
    let units = format!("{}.{:02}", amount / 100, amount % 100);
    match currency {
        "usd" => format!("${units}"),
        "eur" => format!("€{units}"),
        other => format!("{units} {}", other.to_uppercase()),
    }
}

/// The Checkout page of `session`: the plan, its price and credits, Pay and Cancel.
pub fn checkout(session: &Value, plan: &Plan) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    let days = plan.period_secs / 86_400;
    let body = format!(
        r#"<div class="card">
<p>Subscribe to <strong id="plan">{name}</strong></p>
<p class="price" id="price">{price} <span class="muted">per {days} days</span></p>
<p id="credits">{credits} credits each paid period</p>
<p class="muted">Customer {customer} · session {id}</p>
<form method="post" action="/checkout/{id_attr}/pay"><button class="primary" id="pay" type="submit">Pay {price}</button></form>
<form method="post" action="/checkout/{id_attr}/cancel"><button id="cancel" type="submit">Cancel</button></form>
</div>"#,
        name = text(&plan.name),
        price = text(&money(plan.unit_amount, &plan.currency)),
        credits = plan.credits,
        customer = text(session["customer"].as_str().unwrap_or_default()),
        id = text(id),
        id_attr = attr(id),
    );
    page("Checkout", &body)
}

/// The Checkout page of pack `session`: the pack, its price and credits, Pay (by card, at
/// once), Pay by bank debit (it settles later, from the deliveries page) and Cancel.
pub fn checkout_pack(session: &Value, pack: &Pack) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    let body = format!(
        r#"<div class="card">
<p>Buy the <strong id="pack">{name}</strong> credit pack</p>
<p class="price" id="price">{price} <span class="muted">once</span></p>
<p id="credits">{credits} credits, kept until used</p>
<p class="muted">Customer {customer} · session {id}</p>
<form method="post" action="/checkout/{id_attr}/pay"><button class="primary" id="pay" type="submit">Pay {price}</button></form>
<form method="post" action="/checkout/{id_attr}/pay-later"><button id="pay-later" type="submit">Pay by bank debit (settles later)</button></form>
<form method="post" action="/checkout/{id_attr}/cancel"><button id="cancel" type="submit">Cancel</button></form>
</div>"#,
        name = text(&pack.name),
        price = text(&money(pack.unit_amount, &pack.currency)),
        credits = pack.credits,
        customer = text(session["customer"].as_str().unwrap_or_default()),
        id = text(id),
        id_attr = attr(id),
    );
    page("Checkout", &body)
}

/// The portal page of `session`, managing `subscription` (if any) on the sandbox's clock `now`,
/// with a "Switch to …" button for each of `plans` it is not on.
pub fn portal(session: &Value, subscription: Option<&Value>, plans: &[Plan], now: i64) -> String {
    let id = attr(session["id"].as_str().unwrap_or_default()).into_owned();
    let back = match session["return_url"].as_str() {
        Some(url) => format!(
            r#"<p><a id="return" href="{}">Return to the app</a></p>"#,
            attr(url)
        ),
        None => String::new(),
    };
    let Some(sub) = subscription else {
        return page(
            "Your subscription",
            &format!(
                "<div class=\"card\"><p id=\"status\">No active subscription.</p></div>{back}"
            ),
        );
    };
    let end = sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap_or(now);
    let days = (end - now).max(0) as f64 / 86_400.0;
    let ending = if sub["cancel_at_period_end"] == true {
        format!("Ends in {days:.1} days (cancels at period end).")
    } else {
        format!("Renews in {days:.1} days.")
    };
    let action = |path: &str, label: &str| {
        format!(
            r#"<form method="post" action="/portal/{id}/{path}"><button id="{path}" type="submit">{label}</button></form>"#
        )
    };
    let current = sub["items"]["data"][0]["price"]["id"].as_str();
    let on = plans
        .iter()
        .find(|plan| Some(plan.price_id.as_str()) == current);
    let switches: String = plans
        .iter()
        .enumerate()
        .filter(|(_, plan)| Some(plan.price_id.as_str()) != current)
        .map(|(index, plan)| {
            let label = format!(
                "Switch to {} ({}, {} credits)",
                plan.name,
                money(plan.unit_amount, &plan.currency),
                plan.credits
            );
            action(&format!("switch-{index}"), &text(&label))
        })
        .collect();
    let body = format!(
        r#"<div class="card">
<p>Subscription <span class="muted">{sub_id}</span></p>
<p>Plan: <strong id="plan">{plan}</strong></p>
<p>Status: <strong id="status">{status}</strong></p>
<p id="period">{ending}</p>
{renew}{switches}{at_end}{now_}
</div>{back}"#,
        plan = text(on.map_or("unknown", |plan| plan.name.as_str())),
        sub_id = text(sub["id"].as_str().unwrap_or_default()),
        status = text(sub["status"].as_str().unwrap_or_default()),
        renew = action("renew", "Renew: advance the clock one period"),
        at_end = action("cancel-at-period-end", "Cancel at period end"),
        now_ = action("cancel-now", "Cancel now"),
    );
    page("Your subscription", &body)
}

/// The charges, newest first, each with what can happen to its money: refunded (half of what
/// is left, or all), disputed, and an open dispute won or lost.
fn payments_table(payments: &[(Value, Option<Value>)]) -> String {
    let button = |action: &str, label: &str, primary: bool| {
        let class = if primary { r#" class="primary""# } else { "" };
        format!(
            r#"<form method="post" action="{action}"><button{class} type="submit">{label}</button></form>"#,
            action = attr(action)
        )
    };
    let rows: String = payments
        .iter()
        .map(|(charge, dispute)| {
            let id = charge["id"].as_str().unwrap_or_default();
            let amount = charge["amount"].as_i64().unwrap_or(0);
            let refunded = charge["amount_refunded"].as_i64().unwrap_or(0);
            let dispute_status = dispute.as_ref().and_then(|d| d["status"].as_str());
            let actions = match dispute_status {
                Some("needs_response" | "under_review") => {
                    let dispute_id = dispute.as_ref().and_then(|d| d["id"].as_str());
                    let dispute_id = dispute_id.unwrap_or_default();
                    button(&format!("/disputes/{dispute_id}/won"), "Dispute won", true)
                        + &button(&format!("/disputes/{dispute_id}/lost"), "Dispute lost", false)
                }
                Some(_) => String::new(),
                None if refunded < amount => {
                    button(&format!("/charges/{id}/refund-half"), "Refund half", false)
                        + &button(&format!("/charges/{id}/refund"), "Refund", false)
                        + &button(&format!("/charges/{id}/dispute"), "Dispute", false)
                }
                None => String::new(),
            };
            format!(
                r#"<tr data-charge="{id_attr}"><td><code>{id}</code><br><span class="muted">{intent}</span></td><td>{amount}</td><td class="refunded">{refunded}</td><td class="dispute">{dispute}</td><td>{actions}</td></tr>"#,
                id_attr = attr(id),
                id = text(id),
                intent = text(charge["payment_intent"].as_str().unwrap_or_default()),
                dispute = text(dispute_status.unwrap_or("")),
            )
        })
        .collect();
    match rows.is_empty() {
        true => String::new(),
        false => format!(
            r#"<h2>Payments</h2><table id="payments"><tr><th>charge</th><th>amount</th><th>refunded</th><th>dispute</th><th>money back</th></tr>{rows}</table>"#
        ),
    }
}

/// The log of every webhook delivery to `url`, newest first, after the bank debits processing
/// and the `payments` made.
pub fn deliveries(
    log: &[Delivery],
    url: &str,
    processing: &[String],
    payments: &[(Value, Option<Value>)],
) -> String {
    let payments = payments_table(payments);
    let debits: String = processing
        .iter()
        .map(|session| {
            format!(
                r#"<tr><td><code>{id}</code></td><td><form method="post" action="/payments/{id_attr}/succeed"><button class="primary" type="submit">Succeed</button></form><form method="post" action="/payments/{id_attr}/fail"><button type="submit">Fail</button></form></td></tr>"#,
                id = text(session),
                id_attr = attr(session),
            )
        })
        .collect();
    let debits = match debits.is_empty() {
        true => String::new(),
        false => format!(
            r#"<h2>Bank debits processing</h2><table id="processing"><tr><th>session</th><th>settle</th></tr>{debits}</table>"#
        ),
    };
    let rows: String = log
        .iter()
        .rev()
        .map(|d| {
            let last = d.attempts.last();
            let status = last
                .and_then(|a| a.status)
                .map_or("no answer".to_owned(), |s| s.to_string());
            format!(
                "<tr><td>{kind}<br><span class=\"muted\">{event}</span></td><td>{attempts}</td><td>{state}</td><td>{status}: <code>{answer}</code></td></tr>",
                kind = text(&d.kind),
                event = text(&d.event),
                attempts = d.attempts.len(),
                state = if d.delivered { "delivered" } else if d.attempts.is_empty() { "sending" } else { "failing" },
                answer = text(last.map_or("", |a| a.answer.as_str())),
            )
        })
        .collect();
    let body = format!(
        r#"<p class="muted">Events are POSTed, signed, to <code>{url}</code>; an answer other than 2xx is retried with back-off. <a href="/deliveries.json">JSON</a></p>
{debits}{payments}<table id="deliveries"><tr><th>event</th><th>attempts</th><th>state</th><th>last answer</th></tr>{rows}</table>"#,
        url = text(url),
    );
    page("Webhook deliveries", &body)
}

/// Where the sandbox's default return URLs lead: `what` happened; back to the app.
pub fn returned(what: &str) -> String {
    let message = match what {
        "checkout-success" => "Payment complete. You can return to the app.",
        "checkout-canceled" => "Checkout canceled. Nothing was charged.",
        _ => "You can return to the app.",
    };
    page(
        "Back to the app",
        &format!("<p id=\"message\">{}</p>", text(message)),
    )
}

/// A refused action: `message`.
pub fn refused(message: &str) -> String {
    page(
        "Cannot do that",
        &format!("<p id=\"error\">{}</p>", text(message)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_escaped() {
        let session = json!({"id": "cs_<x>", "customer": "<script>", "return_url": "\"><b>"});
        let plan = Plan {
            price_id: "p".into(),
            name: "<i>pro</i>".into(),
            unit_amount: 999,
            currency: "usd".into(),
            period_secs: 30 * 86_400,
            credits: 5,
        };
        let html = checkout(&session, &plan);
        assert!(
            !html.contains("<script>") && !html.contains("<i>pro"),
            "{html}"
        );
        assert!(
            html.contains("$9.99") && html.contains("5 credits"),
            "{html}"
        );
        assert!(!portal(&session, None, &[], 0).contains("\"><b>"));
    }
}
