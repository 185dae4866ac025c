//! Customers: created under idempotency keys, searched by metadata, retrieved, and deleted as
//! Stripe deletes them.

use serde_json::{Value, json};

use super::{Stripe, metadata, new_id};
use crate::objects::{self, param};

impl Stripe {
    pub(super) fn create_customer(
        &mut self,
        params: &[(String, String)],
        key: Option<&str>,
    ) -> (u16, Value) {
        let id = key.map_or_else(|| new_id("cus"), objects::customer_for_key);
        let customer =
            objects::customer(&id, metadata(params, "metadata"), self.now_of(&Value::Null));
        self.remember_owner(&id, &customer["metadata"]);
        self.customers.insert(id, customer.clone());
        self.emit("customer.created", customer.clone());
        (200, customer)
    }

    pub(super) fn remember_owner(&mut self, id: &str, metadata: &Value) {
        if let Some(user) = metadata["user_id"].as_str() {
            let made = self.made_for.entry(user.to_owned()).or_default();
            if !made.iter().any(|known| known == id) {
                made.push(id.to_owned());
            }
        }
    }

    /// Every customer ever made with `metadata.user_id` = `user`, deleted ones included.
    pub fn customers_made_for(&self, user: &str) -> Vec<String> {
        self.made_for.get(user).cloned().unwrap_or_default()
    }

    /// Only the query this service sends: `metadata['KEY']:'VALUE'`.
    pub(super) fn search_customers(&self, params: &[(String, String)]) -> (u16, Value) {
        let query = param(params, "query").unwrap_or_default();
        let parsed = query
            .strip_prefix("metadata['")
            .and_then(|rest| rest.split_once("']:'"))
            .and_then(|(name, value)| Some((name, value.strip_suffix('\'')?)));
        let Some((name, value)) = parsed else {
            let message =
                format!("The sandbox searches customers by one metadata value only, not: {query}");
            return (
                400,
                objects::error("invalid_request_error", None, Some("query"), &message),
            );
        };
        let found: Vec<Value> = self
            .customers
            .values()
            .filter(|c| !objects::is_deleted(c) && c["metadata"][name] == value)
            .cloned()
            .collect();
        let page = json!({"object": "search_result", "url": "/v1/customers/search",
            "has_more": false, "next_page": null, "data": found});
        (200, page)
    }

    /// Stripe deletes the customer and cancels its subscriptions at once.
    pub(super) fn delete_customer(&mut self, id: &str) -> (u16, Value) {
        match self.customers.get(id) {
            Some(customer) if !objects::is_deleted(customer) => {}
            _ => return (404, objects::no_such("customer", id, "id")),
        }
        let live: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|s| s["customer"] == id && s["status"] != "canceled")
            .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        for sub in live {
            self.end_subscription(&sub);
        }
        let deleted = objects::deleted_customer(id);
        let last = self.customers.insert(id.to_owned(), deleted.clone());
        self.emit("customer.deleted", last.unwrap_or_default());
        (200, deleted)
    }

    pub(super) fn live_customer(
        &self,
        params: &[(String, String)],
    ) -> Result<String, (u16, Value)> {
        let id = param(params, "customer").unwrap_or_default();
        match self.customers.get(id) {
            Some(customer) if !objects::is_deleted(customer) => Ok(id.to_owned()),
            _ => Err((400, objects::no_such("customer", id, "customer"))),
        }
    }

    /// Adds customer `id` carrying `metadata`, as if created earlier (tests).
    pub fn add_customer(&mut self, id: &str, metadata: Value) {
        self.remember_owner(id, &metadata);
        let customer = objects::customer(id, metadata, self.now_of(&Value::Null));
        self.customers.insert(id.to_owned(), customer);
    }

    /// Customer `id` as Stripe would answer it (deleted ones included).
    pub fn customer(&self, id: &str) -> Option<&Value> {
        self.customers.get(id)
    }
}
