//! A budget of Stripe calls per second for a caller that would otherwise spend the account's
//! whole rate limit (Stripe allows about 100 reads a second in live mode, shared by every
//! function): reconciliation's `RECONCILE_STRIPE_RPS`. Every attempt waits for its slot. A 429
//! halves the pace (once per [`SETTLE`]: the calls in flight together are one signal), and each
//! [`RECOVER_AFTER`] without a 429 (and since the last change) doubles it back toward the budget.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// 429s this close together halve the pace once.
pub const SETTLE: Duration = Duration::from_secs(1);
/// Time without a 429, and since the pace last changed, after which it doubles, up to the budget.
pub const RECOVER_AFTER: Duration = Duration::from_secs(30);

/// The pace of one caller's Stripe calls.
pub struct Pace {
    now: Mutex<State>,
}

/// The budget, the calls per second allowed now and the limiter that holds them to it, when
/// the pace last changed, and when Stripe last answered 429.
struct State {
    budget: NonZeroU32,
    per_second: NonZeroU32,
    limiter: Arc<DefaultDirectRateLimiter>,
    changed_at: Instant,
    limited_at: Option<Instant>,
}

impl State {
    fn at(budget: NonZeroU32, per_second: NonZeroU32, changed_at: Instant) -> State {
        State {
            budget,
            per_second,
            limiter: Arc::new(limiter(per_second)),
            changed_at,
            limited_at: None,
        }
    }

    /// This state at `per_second` from `at`, remembering its last 429.
    fn changed(&self, per_second: NonZeroU32, at: Instant) -> State {
        State {
            limited_at: self.limited_at,
            ..State::at(self.budget, per_second, at)
        }
    }
}

impl Pace {
    /// At most `per_second` calls a second.
    pub fn new(per_second: NonZeroU32) -> Pace {
        Pace {
            now: Mutex::new(State::at(per_second, per_second, Instant::now())),
        }
    }

    /// Starts again at `per_second` (a new run).
    pub fn reset(&self, per_second: NonZeroU32) {
        *self.lock() = State::at(per_second, per_second, Instant::now());
    }

    /// Waits until the next call may go.
    pub async fn ready(&self) {
        let limiter = self.recovered_at(Instant::now());
        limiter.until_ready().await;
    }

    /// The limiter to wait on at `at`: doubled toward the budget if slowed down and no 429
    /// came for [`RECOVER_AFTER`].
    fn recovered_at(&self, at: Instant) -> Arc<DefaultDirectRateLimiter> {
        let mut now = self.lock();
        let quiet = |since: Instant| at.saturating_duration_since(since) >= RECOVER_AFTER;
        let unlimited = now.limited_at.is_none_or(quiet);
        if now.per_second < now.budget && quiet(now.changed_at) && unlimited {
            let doubled = now.per_second.saturating_mul(NonZeroU32::new(2).unwrap());
            *now = now.changed(doubled.min(now.budget), at);
            tracing::info!(calls_per_second = now.per_second.get(), "speeding up again");
        }
        now.limiter.clone()
    }

    /// Stripe answered 429: half the pace from now on (never below one call a second).
    pub fn slow_down(&self) {
        self.slow_down_at(Instant::now());
    }

    fn slow_down_at(&self, at: Instant) {
        let mut now = self.lock();
        now.limited_at = Some(at);
        let half = NonZeroU32::new(now.per_second.get() / 2).unwrap_or(NonZeroU32::MIN);
        let settled = at.saturating_duration_since(now.changed_at) >= SETTLE;
        if half < now.per_second && (settled || now.per_second == now.budget) {
            tracing::warn!(
                calls_per_second = half.get(),
                "Stripe rate-limited us; slowing down"
            );
            *now = now.changed(half, at);
        }
    }

    /// The calls per second allowed now.
    pub fn per_second(&self) -> u32 {
        self.lock().per_second.get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A limiter of `per_second` calls a second, without bursts beyond one.
fn limiter(per_second: NonZeroU32) -> DefaultDirectRateLimiter {
    RateLimiter::direct(Quota::per_second(per_second).allow_burst(NonZeroU32::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_halves_the_pace_down_to_one_call_a_second_and_a_reset_restores_it() {
        let pace = Pace::new(NonZeroU32::new(20).unwrap());
        let start = Instant::now();
        let seen: Vec<u32> = (1..=6)
            .map(|n| {
                pace.slow_down_at(start + SETTLE * n);
                pace.per_second()
            })
            .collect();
        assert_eq!(seen, [10, 5, 2, 1, 1, 1]);
        pace.reset(NonZeroU32::new(20).unwrap());
        assert_eq!(pace.per_second(), 20);
    }

    #[test]
    fn rate_limits_close_together_halve_once_and_quiet_time_doubles_back_to_the_budget() {
        let pace = Pace::new(NonZeroU32::new(20).unwrap());
        let start = Instant::now();
        // The four calls of a batch answered 429 together: one halving.
        for _ in 0..4 {
            pace.slow_down_at(start);
        }
        assert_eq!(pace.per_second(), 10);
        pace.slow_down_at(start + SETTLE);
        assert_eq!(pace.per_second(), 5);
        // Not quiet long enough: unchanged.
        pace.recovered_at(start + SETTLE + RECOVER_AFTER / 2);
        assert_eq!(pace.per_second(), 5);
        let quiet = start + SETTLE + RECOVER_AFTER;
        pace.recovered_at(quiet);
        assert_eq!(pace.per_second(), 10);
        pace.recovered_at(quiet + RECOVER_AFTER);
        pace.recovered_at(quiet + RECOVER_AFTER * 2);
        assert_eq!(pace.per_second(), 20, "never beyond the budget");
    }

    #[test]
    fn a_429_that_changes_nothing_still_holds_the_recovery_back() {
        let pace = Pace::new(NonZeroU32::new(2).unwrap());
        let start = Instant::now();
        pace.slow_down_at(start);
        assert_eq!(pace.per_second(), 1);
        // At the floor, 429s change nothing, yet they keep coming: no speeding up.
        pace.slow_down_at(start + RECOVER_AFTER);
        pace.recovered_at(start + RECOVER_AFTER + RECOVER_AFTER / 2);
        assert_eq!(pace.per_second(), 1);
        pace.recovered_at(start + RECOVER_AFTER * 2);
        assert_eq!(pace.per_second(), 2);
    }

    #[tokio::test]
    async fn calls_wait_for_their_slot() {
        let pace = Pace::new(NonZeroU32::new(50).unwrap());
        let started = std::time::Instant::now();
        for _ in 0..6 {
            pace.ready().await;
        }
        // Five waits of a fiftieth of a second at least: never faster than the budget.
        assert!(started.elapsed() >= std::time::Duration::from_millis(100));
    }
}
