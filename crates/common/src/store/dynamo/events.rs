//! [`WebhookEvents`] on DynamoDB: one item per event id, claimed with a lease by a conditional
//! put, expiring after the retention period.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::keys::{Item, TTL, event_key, n, s};
use super::{DynamoStore, store_error};
use crate::domain::{EVENT_LEASE_SECS, EVENT_RETENTION_SECS, EventClaim, EventOutcome, EventState};
use crate::store::{StoreError, WebhookEvents};

/// The state of an event being processed (the outcomes name the others).
const PROCESSING: &str = "processing";

/// The claim an existing event record leaves to a newcomer.
fn claim_of(item: Option<&Item>) -> EventClaim {
    match item.and_then(|item| item.get("state")) {
        Some(AttributeValue::S(state)) if state == EventOutcome::Done.as_str() => {
            EventClaim::AlreadyDone
        }
        _ => EventClaim::InProgress,
    }
}

#[async_trait]
impl WebhookEvents for DynamoStore {
    async fn begin_event(&self, event_id: &str, now: i64) -> Result<EventClaim, StoreError> {
        let mut item = event_key(event_id);
        item.extend([
            ("entity".to_owned(), s("event")),
            ("state".to_owned(), s(PROCESSING)),
            ("lease_until".to_owned(), n(now + EVENT_LEASE_SECS)),
            (TTL.to_owned(), n(now + EVENT_RETENTION_SECS)),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR #state = :failed \
                 OR (#state = :processing AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":failed", s(EventOutcome::Failed.as_str()))
            .expression_attribute_values(":processing", s(PROCESSING))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(EventClaim::Claimed),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(e) => Ok(claim_of(e.item.as_ref())),
                other => Err(store_error("PutItem", other)),
            },
        }
    }

    async fn finish_event(
        &self,
        event_id: &str,
        outcome: EventOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(event_id)))
            .update_expression("SET #state = :state, finished_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", s(outcome.as_str()))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(|err| store_error("UpdateItem", err))?;
        Ok(())
    }

    async fn event_state(&self, event_id: &str) -> Result<Option<EventState>, StoreError> {
        let Some(item) = self.get_item(event_key(event_id)).await? else {
            return Ok(None);
        };
        let lease = item.get("lease_until").and_then(|v| v.as_n().ok());
        let state = match item
            .get("state")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
        {
            Some(PROCESSING) => EventState::Processing {
                lease_until: lease.and_then(|n| n.parse().ok()).unwrap_or(0),
            },
            Some(done) if done == EventOutcome::Done.as_str() => EventState::Done,
            Some(failed) if failed == EventOutcome::Failed.as_str() => EventState::Failed,
            _ => return Err(StoreError::Corrupt("event record without a state".into())),
        };
        Ok(Some(state))
    }
}
