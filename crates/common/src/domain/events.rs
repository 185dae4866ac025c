//! The processing of a webhook event: each is claimed by one delivery at a time, and finished
//! once.

/// How long a claim on a webhook event holds before a redelivery may take it over.
pub const EVENT_LEASE_SECS: i64 = 60;
/// How long event records are kept (Stripe retries for up to 3 days).
pub const EVENT_RETENTION_SECS: i64 = 30 * 24 * 3600;

/// What a delivery found when it claimed an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClaim {
    /// New, failed before, or abandoned past its lease: this caller processes it now.
    Claimed,
    /// Processed already: nothing to do.
    AlreadyDone,
    /// Another delivery is processing it within its lease.
    InProgress,
}

/// How the processing of a claimed event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Done for good: a redelivery changes nothing.
    Done,
    /// Failed: a redelivery may claim it again.
    Failed,
}

impl EventOutcome {
    /// The stored name of the outcome (the event record's `state`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Done => "done",
            EventOutcome::Failed => "failed",
        }
    }
}

/// Where the processing of an event stands, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// A delivery claimed it and holds it until `lease_until` (Unix seconds).
    Processing {
        /// When the claim lapses.
        lease_until: i64,
    },
    /// Done for good.
    Done,
    /// Its last processing failed; a redelivery may claim it.
    Failed,
}
