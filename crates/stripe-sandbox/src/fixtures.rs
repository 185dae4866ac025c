//! Stripe's own API object fixtures (`fixtures/fixtures3.json`, from the public `stripe/openapi`
//! repository, MIT licence: see `fixtures/README.md`), compiled in. Every object the sandbox and
//! the test suite's stub answer with starts as one of these.

use std::sync::OnceLock;

use serde_json::Value;

const FIXTURES: &str = include_str!("../fixtures/fixtures3.json");

/// Stripe's fixture of `resource` (`customer`, `checkout.session`, `subscription`, `invoice`,
/// `event`, ...). Panics on a resource the file does not hold: a programming error.
pub fn fixture(resource: &str) -> Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    let all = PARSED.get_or_init(|| serde_json::from_str(FIXTURES).expect("fixtures are JSON"));
    let object = &all["resources"][resource];
    assert!(object.is_object(), "no Stripe fixture of {resource}");
    object.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_objects_this_service_uses() {
        for resource in [
            "customer",
            "deleted_customer",
            "checkout.session",
            "billing_portal.session",
            "subscription",
            "invoice",
            "event",
            "price",
        ] {
            assert!(fixture(resource)["id"].is_string(), "{resource}");
        }
    }
}
