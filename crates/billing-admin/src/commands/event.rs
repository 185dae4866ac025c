//! `event <evt_id> [--replay]`: did this webhook arrive? Stripe's copy of the event beside this
//! service's record of it; a replay runs the webhook's own processing on Stripe's copy.

use std::io::Write;

use common::billing::events::StripeEvent;
use common::domain::entries::rfc3339;
use common::domain::{EventClaim, EventOutcome, EventState};
use common::webhook::event::{Event, EventData};
use serde_json::json;

use crate::{Exit, Failure, Ops, Report, audit};

/// Stripe's copy of event `id` and whether it was processed here.
pub async fn show(ops: &Ops, id: &str) -> Result<Report, Failure> {
    let found = stripe_copy(ops, id).await?;
    let state = ops.store.event_state(id).await?;
    Ok(describe(&found, state, None))
}

/// Processes event `id` again from Stripe's copy, as a delivery would: claimed first (a
/// delivery under way is not raced), then recorded done.
pub async fn replay(
    ops: &Ops,
    operator: &str,
    id: &str,
    log: &mut dyn Write,
) -> Result<Report, Failure> {
    let found = stripe_copy(ops, id).await?;
    let store = ops.store.as_ref();
    let now = common::unix_now();
    let claim = store.begin_event(id, now).await?;
    if claim == EventClaim::InProgress {
        return Err(Failure::new(
            Exit::Refused,
            "a delivery of this event is being processed now: try again in a minute",
        ));
    }
    let event = Event {
        id: found.id.clone(),
        kind: found.kind.clone(),
        data: EventData {
            object: found.object.clone(),
        },
    };
    let processed = stripe_webhook::process(store, ops.billing()?, &event).await;
    let detail = match &processed {
        Ok(()) => json!({"event": id, "type": found.kind, "outcome": "processed"}),
        Err(err) => {
            json!({"event": id, "type": found.kind, "outcome": "failed", "error": err.code()})
        }
    };
    audit(log, operator, "event replay", None, detail);
    if claim == EventClaim::Claimed {
        let outcome = match processed {
            Ok(()) => EventOutcome::Done,
            Err(_) => EventOutcome::Failed,
        };
        store.finish_event(id, outcome, common::unix_now()).await?;
    }
    processed?;
    let state = store.event_state(id).await?;
    Ok(describe(&found, state, Some("processed again")))
}

async fn stripe_copy(ops: &Ops, id: &str) -> Result<StripeEvent, Failure> {
    ops.billing()?.event(id).await?.ok_or_else(|| {
        Failure::new(
            Exit::NotFound,
            format!("Stripe has no event {id} (unknown, or older than its 30 days)"),
        )
    })
}

fn describe(found: &StripeEvent, state: Option<EventState>, replayed: Option<&str>) -> Report {
    let processed = match state {
        None => "never recorded here: no delivery arrived (or its record expired after 30 days)"
            .to_owned(),
        Some(EventState::Done) => "done".to_owned(),
        Some(EventState::Failed) => "failed (Stripe retries it)".to_owned(),
        Some(EventState::Processing { lease_until }) if lease_until >= common::unix_now() => {
            format!("being processed (claimed until {})", rfc3339(lease_until))
        }
        Some(EventState::Processing { lease_until }) => format!(
            "claimed, but the claim lapsed at {} (the delivery stopped): the next delivery or a replay takes it over",
            rfc3339(lease_until)
        ),
    };
    let about = found.object["id"].as_str().unwrap_or("-");
    let mut text = format!(
        "event {} ({}) of {}, about {about}\n  Stripe: {} deliveries not yet answered 2xx\n  here: {processed}\n",
        found.id,
        found.kind,
        rfc3339(found.created),
        found.pending_webhooks,
    );
    if let Some(replayed) = replayed {
        text.push_str(&format!("  replay: {replayed}\n"));
    }
    let state = state.map(|s| match s {
        EventState::Done => "done",
        EventState::Failed => "failed",
        EventState::Processing { .. } => "processing",
    });
    let json = json!({
        "event": found.id, "type": found.kind, "created": rfc3339(found.created),
        "about": about, "pending_webhooks": found.pending_webhooks, "state": state,
        "replayed": replayed.is_some(),
    });
    Report { text, json }
}
