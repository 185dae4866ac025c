//! A budget of Stripe calls per second for a caller that would otherwise spend the account's
//! whole rate limit (Stripe allows about 100 reads a second in live mode, shared by every
//! function): reconciliation's `RECONCILE_STRIPE_RPS`. Every attempt waits for its slot; a 429
//! halves the pace for the rest of the run.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The pace of one caller's Stripe calls.
pub struct Pace {
    /// The calls per second allowed now, and the limiter that holds them to it.
    now: Mutex<(NonZeroU32, Arc<DefaultDirectRateLimiter>)>,
}

impl Pace {
    /// At most `per_second` calls a second.
    pub fn new(per_second: NonZeroU32) -> Pace {
        Pace {
            now: Mutex::new((per_second, Arc::new(limiter(per_second)))),
        }
    }

    /// Starts again at `per_second` (a new run).
    pub fn reset(&self, per_second: NonZeroU32) {
        *self.lock() = (per_second, Arc::new(limiter(per_second)));
    }

    /// Waits until the next call may go.
    pub async fn ready(&self) {
        let limiter = self.lock().1.clone();
        limiter.until_ready().await;
    }

    /// Stripe answered 429: half the pace from now on (never below one call a second).
    pub fn slow_down(&self) {
        let mut now = self.lock();
        let half = NonZeroU32::new(now.0.get() / 2).unwrap_or(NonZeroU32::MIN);
        if half < now.0 {
            tracing::warn!(
                calls_per_second = half.get(),
                "Stripe rate-limited us; slowing down"
            );
            *now = (half, Arc::new(limiter(half)));
        }
    }

    /// The calls per second allowed now.
    pub fn per_second(&self) -> u32 {
        self.lock().0.get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (NonZeroU32, Arc<DefaultDirectRateLimiter>)> {
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
        let seen: Vec<u32> = (0..6)
            .map(|_| {
                pace.slow_down();
                pace.per_second()
            })
            .collect();
        assert_eq!(seen, [10, 5, 2, 1, 1, 1]);
        pace.reset(NonZeroU32::new(20).unwrap());
        assert_eq!(pace.per_second(), 20);
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
