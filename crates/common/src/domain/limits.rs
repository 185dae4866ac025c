//! Limits per caller: how many requests of one user may reach Stripe in a window, so that one
//! account looping sync, checkout and portal cannot spend the Stripe account's rate limit that
//! checkout, webhooks and reconciliation share.

/// At most `calls` requests of one user that reach Stripe per fixed window of `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeAllowance {
    /// Requests per window (`STRIPE_CALLS_PER_USER`).
    pub calls: i64,
    /// The window, seconds (`STRIPE_CALL_WINDOW_SECS`).
    pub window_secs: i64,
}

impl StripeAllowance {
    /// The start of the window `now` (Unix seconds) falls in.
    pub fn window_of(&self, now: i64) -> i64 {
        now - now.rem_euclid(self.window_secs)
    }

    /// Seconds from `now` until the next window begins (at least 1).
    pub fn retry_after(&self, now: i64) -> u64 {
        let next = self.window_of(now) + self.window_secs;
        u64::try_from(next - now).unwrap_or(1).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_the_wait_is_until_the_next() {
        let allowance = StripeAllowance {
            calls: 10,
            window_secs: 60,
        };
        // 1_699_999_980 is a multiple of 60.
        assert_eq!(allowance.window_of(1_700_000_039), 1_699_999_980);
        assert_eq!(allowance.window_of(1_699_999_980), 1_699_999_980);
        assert_eq!(allowance.retry_after(1_700_000_000), 40);
        assert_eq!(allowance.retry_after(1_700_000_039), 1);
    }
}
