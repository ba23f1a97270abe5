//! A connection's message budget: a token bucket that refills `per_second` tokens
//! a second up to `burst`; each message takes one. A message without a token is
//! refused (4029); a connection that keeps sending while refused (more than
//! `CLOSE_AFTER_REFUSED` refusals within `REFUSAL_WINDOW`) is closed. Pure: the
//! buckets live on the function instance (`App`).

use std::time::Duration;

use crate::clock::Timestamp;
use crate::error::{Code, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageBudget {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for MessageBudget {
    /// A person editing sends a few messages a second; a client catching up after
    /// a reconnect sends a burst of resends, a sync and a presence.
    fn default() -> Self {
        MessageBudget {
            per_second: 20,
            burst: 50,
        }
    }
}

/// Refusals within `REFUSAL_WINDOW` past which the connection is closed.
pub const CLOSE_AFTER_REFUSED: u32 = 100;
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    Refused,
    /// Refused, and the connection is to be closed.
    Close,
}

/// One connection's bucket. Tokens are counted in thousandths, so a refill of a
/// few milliseconds is not lost to rounding.
#[derive(Debug, Clone)]
pub struct Bucket {
    milli_tokens: u64,
    at: Timestamp,
    refused: u32,
    refused_since: Timestamp,
}

impl Bucket {
    /// A full bucket: a new connection may send its burst at once.
    pub fn full(budget: MessageBudget, now: Timestamp) -> Bucket {
        Bucket {
            milli_tokens: u64::from(budget.burst) * 1000,
            at: now,
            refused: 0,
            refused_since: now,
        }
    }

    pub fn admit(&mut self, budget: MessageBudget, now: Timestamp) -> Admission {
        let elapsed = now.millis().saturating_sub(self.at.millis()).max(0) as u64;
        let cap = u64::from(budget.burst) * 1000;
        self.milli_tokens = (self.milli_tokens + elapsed * u64::from(budget.per_second)).min(cap);
        self.at = now;
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            return Admission::Admitted;
        }
        if now.millis() - self.refused_since.millis() > REFUSAL_WINDOW.as_millis() as i64 {
            self.refused = 0;
            self.refused_since = now;
        }
        self.refused += 1;
        if self.refused > CLOSE_AFTER_REFUSED {
            Admission::Close
        } else {
            Admission::Refused
        }
    }

    /// Whether the bucket is full again: nothing is lost by forgetting it.
    pub fn is_full(&self, budget: MessageBudget, now: Timestamp) -> bool {
        let elapsed = now.millis().saturating_sub(self.at.millis()).max(0) as u64;
        self.milli_tokens + elapsed * u64::from(budget.per_second) >= u64::from(budget.burst) * 1000
    }
}

/// What a refused message is answered with.
pub fn rate_limited(budget: MessageBudget) -> Error {
    Error::new(
        Code::LimitReached,
        format!(
            "rate limited: a connection may send {} messages a second ({} at once); wait and send again",
            budget.per_second, budget.burst
        ),
    )
}

/// What a connection closed for sending while refused is told.
pub fn closed_for_flooding(budget: MessageBudget) -> Error {
    Error::new(
        Code::ConnectionLost,
        format!(
            "closed: more than {CLOSE_AFTER_REFUSED} messages over the rate limit ({} a second) within {} s",
            budget.per_second,
            REFUSAL_WINDOW.as_secs()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: MessageBudget = MessageBudget {
        per_second: 20,
        burst: 50,
    };

    #[test]
    fn a_burst_then_the_rate() {
        let start = Timestamp(1_000_000);
        let mut bucket = Bucket::full(BUDGET, start);
        for _ in 0..50 {
            assert_eq!(bucket.admit(BUDGET, start), Admission::Admitted);
        }
        assert_eq!(bucket.admit(BUDGET, start), Admission::Refused);
        // 20 a second: one every 50 ms.
        assert_eq!(
            bucket.admit(BUDGET, Timestamp(start.0 + 49)),
            Admission::Refused
        );
        assert_eq!(
            bucket.admit(BUDGET, Timestamp(start.0 + 50)),
            Admission::Admitted
        );
        // Over 10 s at 100 a second, about 20 a second get through.
        let mut admitted = 0;
        for i in 1..=1000 {
            if bucket.admit(BUDGET, Timestamp(start.0 + 50 + i * 10)) == Admission::Admitted {
                admitted += 1;
            }
        }
        assert!((199..=201).contains(&admitted), "{admitted}");
    }

    #[test]
    fn flooding_while_refused_closes() {
        let start = Timestamp(0);
        let mut bucket = Bucket::full(BUDGET, start);
        let outcomes: Vec<Admission> = (0..200).map(|_| bucket.admit(BUDGET, start)).collect();
        assert_eq!(outcomes[49], Admission::Admitted);
        assert_eq!(outcomes[50], Admission::Refused);
        assert_eq!(outcomes[149], Admission::Refused);
        assert_eq!(outcomes[150], Admission::Close);
        // Refusals spread over more than the window do not add up.
        let mut bucket = Bucket::full(BUDGET, start);
        for _ in 0..50 {
            bucket.admit(BUDGET, start);
        }
        for s in 0..30 {
            let at = Timestamp(s * 11_000);
            bucket.milli_tokens = 0;
            bucket.at = at;
            for _ in 0..50 {
                assert_ne!(bucket.admit(BUDGET, at), Admission::Close);
            }
        }
    }
}
