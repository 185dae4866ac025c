//! Billing metrics as CloudWatch Embedded Metric Format: each count is one JSON line on stdout,
//! which Lambda ships to CloudWatch Logs, which extracts the metric. No call, no added latency.
//! Only inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set): the local API prints none.
//!
//! Dimensions are per function only (`FunctionName`, and for webhook events also their
//! `EventType`, from a closed list): no user id, customer id or other value from a request ever
//! becomes a dimension or a field of these lines. A leaf module: it uses nothing of the crate.

use std::sync::OnceLock;

/// The CloudWatch namespace of every metric (`template.yaml`'s alarms read it).
pub const NAMESPACE: &str = "ChatBilling";

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A paid period's credits granted (once per invoice).
    Grants,
    /// A credit pack granted (once per Checkout session).
    PacksGranted,
    /// Credits taken back or given back because a payment's money moved (a refund, a dispute
    /// held or won).
    Clawbacks,
    /// A message debited.
    Debits,
    /// A debited message given back.
    Refunds,
    /// A debit refused for want of credits or free messages (402).
    InsufficientCredits,
    /// A webhook event processed for good.
    WebhookEventsDone,
    /// A webhook event delivered again after it was processed.
    WebhookEventsDuplicate,
    /// A webhook event whose processing failed (Stripe redelivers it).
    WebhookEventsFailed,
    /// A user re-synced by reconciliation.
    ReconcileChecked,
    /// A user whose record reconciliation changed: a webhook it should have had did not come.
    ReconcileRepaired,
    /// A user reconciliation could not re-sync (Stripe or storage failed).
    ReconcileFailed,
    /// A user reconciliation found subscribed (active or trialing).
    ReconcileSubscribers,
    /// How long the reconciliation pass under way has run, seconds, after each run (0 once a
    /// pass completes): a pass that never ends means renewals wait.
    ReconcilePassAge,
    /// A paid invoice of a subscription that is not entitled and cannot become so: acknowledged,
    /// nothing granted.
    UnentitledPaidInvoices,
    /// A subscription of a customer to a price this service does not sell: ignored.
    ForeignSubscriptionsIgnored,
    /// A second live subscription of a customer, canceled at once and its payment refunded.
    DuplicateSubscriptionsCanceled,
    /// A Stripe customer of an erased user, closed when an event about it arrived.
    ErasedCustomersClosed,
    /// A Stripe call that failed after its retries.
    StripeFailures,
    /// A DynamoDB call that failed after its retries.
    StorageFailures,
}

impl Metric {
    /// The metric's name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Grants => "Grants",
            Metric::PacksGranted => "PacksGranted",
            Metric::Clawbacks => "Clawbacks",
            Metric::Debits => "Debits",
            Metric::Refunds => "Refunds",
            Metric::InsufficientCredits => "InsufficientCredits",
            Metric::WebhookEventsDone => "WebhookEventsDone",
            Metric::WebhookEventsDuplicate => "WebhookEventsDuplicate",
            Metric::WebhookEventsFailed => "WebhookEventsFailed",
            Metric::ReconcileChecked => "ReconcileChecked",
            Metric::ReconcileRepaired => "ReconcileRepaired",
            Metric::ReconcileFailed => "ReconcileFailed",
            Metric::ReconcileSubscribers => "ReconcileSubscribers",
            Metric::UnentitledPaidInvoices => "UnentitledPaidInvoices",
            Metric::ForeignSubscriptionsIgnored => "ForeignSubscriptionsIgnored",
            Metric::DuplicateSubscriptionsCanceled => "DuplicateSubscriptionsCanceled",
            Metric::ErasedCustomersClosed => "ErasedCustomersClosed",
            Metric::StripeFailures => "StripeFailures",
            Metric::StorageFailures => "StorageFailures",
            Metric::ReconcilePassAge => "ReconcilePassAge",
        }
    }

    /// Its CloudWatch unit: a count of things, or (the pass's age) seconds.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::ReconcilePassAge => "Seconds",
            _ => "Count",
        }
    }
}

/// The webhook event types with a dimension of their own; any other is `other`.
pub const EVENT_TYPES: [&str; 7] = [
    "checkout.session.completed",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
];

/// Counts `value` of `metric`, for this function.
pub fn count(metric: Metric, value: u64) {
    if let Some(function) = function_name() {
        emit(&line(function, metric, value, None, crate::unix_now_ms()));
    }
}

/// Counts one webhook event of `event_type` as `metric`, for this function and for the type.
pub fn count_event(metric: Metric, event_type: &str) {
    if let Some(function) = function_name() {
        let dimension = event_type_dimension(event_type);
        emit(&line(
            function,
            metric,
            1,
            Some(dimension),
            crate::unix_now_ms(),
        ));
    }
}

/// The `EventType` dimension of `event_type`: itself if in [`EVENT_TYPES`], else `other`, so
/// that what a sender puts in an event cannot make new dimensions.
pub fn event_type_dimension(event_type: &str) -> &'static str {
    EVENT_TYPES
        .into_iter()
        .find(|known| *known == event_type)
        .unwrap_or("other")
}

/// The EMF line of `value` of `metric` in `function` at `timestamp_ms`, with the event type's
/// dimension set too when there is one.
pub fn line(
    function: &str,
    metric: Metric,
    value: u64,
    event_type: Option<&str>,
    timestamp_ms: i64,
) -> String {
    let mut dimensions = vec![serde_json::json!(["FunctionName"])];
    let mut document = serde_json::json!({
        "FunctionName": function,
        metric.name(): value,
    });
    if let Some(event_type) = event_type {
        dimensions.push(serde_json::json!(["FunctionName", "EventType"]));
        document["EventType"] = event_type.into();
    }
    document["_aws"] = serde_json::json!({
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": dimensions,
            "Metrics": [{"Name": metric.name(), "Unit": metric.unit()}],
        }],
    });
    document.to_string()
}

/// This function's name, as Lambda sets it; `None` outside Lambda (the local API, in-process
/// tests), where nothing is emitted.
fn function_name() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
        .as_deref()
}

fn emit(line: &str) {
    // One write of the whole line under stdout's lock: concurrent log lines cannot split it.
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_an_emf_document_whose_metric_and_dimensions_are_members() {
        let line = line(
            "fn",
            Metric::WebhookEventsFailed,
            1,
            Some("invoice.paid"),
            1_700_000_000_000,
        );
        let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Metrics"][0]["Name"], "WebhookEventsFailed");
        assert_eq!(doc["WebhookEventsFailed"], 1);
        for set in directive["Dimensions"].as_array().unwrap() {
            for key in set.as_array().unwrap() {
                assert!(doc[key.as_str().unwrap()].is_string(), "{key}");
            }
        }
        assert_eq!(doc["EventType"], "invoice.paid");
    }

    #[test]
    fn only_known_event_types_become_dimensions() {
        assert_eq!(event_type_dimension("invoice.paid"), "invoice.paid");
        for unknown in ["charge.refunded", "", "cus_123", "invoice.paid "] {
            assert_eq!(event_type_dimension(unknown), "other", "{unknown:?}");
        }
        let plain = line("fn", Metric::Grants, 1, None, 0);
        assert!(!plain.contains("EventType"));
    }
}
