//! Customer-portal sessions, and what their page does to the subscription they manage.

use serde_json::{Value, json};

use super::{PortalAction, Refusal, Stripe};
use crate::objects::{collapsed, param};

impl Stripe {
    pub(super) fn create_portal(&mut self, params: &[(String, String)]) -> (u16, Value) {
        let customer = match self.live_customer(params) {
            Ok(customer) => customer,
            Err(refusal) => return refusal,
        };
        let id = format!("bps_{}", uuid::Uuid::new_v4().simple());
        let mut session = crate::fixtures::fixture("billing_portal.session");
        session["id"] = json!(id);
        session["url"] = json!(format!("{}/portal/{id}", self.pages_base));
        session["customer"] = json!(customer);
        session["return_url"] = json!(param(params, "return_url"));
        session["created"] = json!(self.now_of(&json!(customer)));
        session["livemode"] = json!(false);
        session["flow"] = match param(params, "flow_data[type]") {
            Some(flow) => json!({"type": flow, "after_completion": {"type": "portal_homepage"}}),
            None => Value::Null,
        };
        self.portals.insert(id, session.clone());
        (200, session)
    }

    /// Portal session `id`, with the subscription it manages (if any), for its page.
    pub fn portal(&self, id: &str) -> Result<(Value, Option<Value>), Refusal> {
        let session = self
            .portals
            .get(id)
            .ok_or_else(|| Refusal::NotFound(format!("No such portal session: {id}")))?;
        let customer = &session["customer"];
        let managed = self
            .subscriptions
            .iter()
            .find(|s| &s["customer"] == customer && s["status"] != "canceled")
            .cloned();
        Ok((session.clone(), managed))
    }

    /// Carries out `action` on the subscription portal session `id` manages.
    pub fn portal_action(&mut self, id: &str, action: PortalAction) -> Result<(), Refusal> {
        let (_, managed) = self.portal(id)?;
        let managed = managed
            .ok_or_else(|| Refusal::Conflict("There is no subscription to manage.".into()))?;
        let sub_id = managed["id"].as_str().unwrap_or_default().to_owned();
        let period_end = managed["items"]["data"][0]["current_period_end"]
            .as_i64()
            .unwrap_or(0);
        match action {
            PortalAction::CancelNow => {
                self.end_subscription(&sub_id);
            }
            PortalAction::CancelAtPeriodEnd => {
                let sub = self.subscription_mut(&sub_id).expect("managed");
                sub["cancel_at_period_end"] = json!(true);
                sub["cancel_at"] = json!(period_end);
                let updated = collapsed(sub);
                self.emit_updated(
                    updated,
                    json!({"cancel_at_period_end": false, "cancel_at": null}),
                );
            }
            PortalAction::Renew => {
                let customer = &managed["customer"];
                let advance = (period_end - self.now_of(customer)).max(0);
                let id = customer.as_str().unwrap_or_default().to_owned();
                *self.clocks.entry(id).or_default() += advance;
                if managed["cancel_at_period_end"] == json!(true) {
                    self.end_subscription(&sub_id);
                    return Ok(());
                }
                let next_end = period_end + self.plan_of_subscription(&managed).period_secs;
                let invoice = self.paid_invoice(&managed, period_end, "subscription_cycle");
                let sub = self.subscription_mut(&sub_id).expect("managed");
                let item = &mut sub["items"]["data"][0];
                item["current_period_start"] = json!(period_end);
                item["current_period_end"] = json!(next_end);
                sub["latest_invoice"] = invoice.clone();
                let updated = collapsed(sub);
                let previous = json!({"items": managed["items"], "latest_invoice": managed["latest_invoice"]["id"]});
                self.emit_updated(updated, previous);
                self.emit("invoice.paid", invoice);
            }
            PortalAction::SwitchTo(index) => {
                let plan = self
                    .plans
                    .get(index)
                    .cloned()
                    .ok_or_else(|| Refusal::NotFound("No such plan.".into()))?;
                if !self.switch_plan(&sub_id, &plan.price_id) {
                    return Err(Refusal::Conflict(
                        "The subscription is on this plan.".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}
