//! Request throttling, shaped like EC2's.
//!
//! EC2 gives every account one token bucket per API action: each request takes a
//! token, buckets refill at a fixed rate up to their size, and a request finding its
//! bucket empty answers `RequestLimitExceeded` (HTTP 503), which every AWS SDK retries
//! with backoff. The bucket sizes and refill rates depend on the action's class; the
//! defaults are EC2's published ones, scaled by [`ThrottleConfig::scale`]. One
//! account's flood empties only its own buckets.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use strato_common::{AccountId, Error, Result};

/// The classes EC2 sizes its buckets by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionClass {
    /// Actions that change something.
    Mutating,
    /// Describe and Get actions with filters, ids or pagination.
    NonMutating,
    /// Describe actions asking for everything at once (no filter, id or page size):
    /// the expensive ones, with the smaller bucket.
    UnfilteredNonMutating,
}

/// A bucket's size and refill rate (tokens per second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub size: f64,
    pub per_second: f64,
}

/// Throttling settings.
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    pub enabled: bool,
    /// Multiplies every bucket's size and refill rate (1.0 is EC2's defaults).
    pub scale: f64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            scale: 1.0,
        }
    }
}

impl ActionClass {
    /// EC2's default bucket for the class.
    pub fn default_rate(self) -> Rate {
        match self {
            ActionClass::Mutating => Rate {
                size: 200.0,
                per_second: 10.0,
            },
            ActionClass::NonMutating => Rate {
                size: 100.0,
                per_second: 20.0,
            },
            ActionClass::UnfilteredNonMutating => Rate {
                size: 50.0,
                per_second: 10.0,
            },
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every (account, action) pair seen.
pub struct Throttle {
    cfg: ThrottleConfig,
    buckets: Mutex<HashMap<(AccountId, String), Bucket>>,
}

/// Buckets idle this long are full again and can be forgotten.
const FORGET_AFTER_SECS: f64 = 600.0;

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        Throttle {
            cfg,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `account` calling `action`, or answers
    /// `RequestLimitExceeded` when its bucket is empty.
    pub fn admit(&self, account: &AccountId, action: &str, class: ActionClass) -> Result<()> {
        self.admit_at(account, action, class, Instant::now())
    }

    fn admit_at(
        &self,
        account: &AccountId,
        action: &str,
        class: ActionClass,
        now: Instant,
    ) -> Result<()> {
        if !self.cfg.enabled {
            return Ok(());
        }
        let base = class.default_rate();
        let (size, rate) = (base.size * self.cfg.scale, base.per_second * self.cfg.scale);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() < FORGET_AFTER_SECS);
        }
        let b = buckets
            .entry((account.clone(), action.to_string()))
            .or_insert(Bucket {
                tokens: size,
                at: now,
            });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(size);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Error::RequestLimitExceeded(
                "Request limit exceeded.".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_empty_refill_and_are_per_account_and_action() {
        let t = Throttle::new(ThrottleConfig::default());
        let (a, b) = (AccountId::generate(), AccountId::generate());
        let now = Instant::now();
        let class = ActionClass::UnfilteredNonMutating;
        for _ in 0..50 {
            t.admit_at(&a, "DescribeInstances", class, now).unwrap();
        }
        let e = t.admit_at(&a, "DescribeInstances", class, now);
        assert!(matches!(e, Err(Error::RequestLimitExceeded(_))));
        // Another action of the same account, and the same action of another account,
        // have their own buckets.
        t.admit_at(&a, "DescribeVpcs", class, now).unwrap();
        t.admit_at(&b, "DescribeInstances", class, now).unwrap();
        // 10 tokens a second: after 0.5 s five more requests pass, the sixth does not.
        let later = now + Duration::from_millis(500);
        for _ in 0..5 {
            t.admit_at(&a, "DescribeInstances", class, later).unwrap();
        }
        assert!(t.admit_at(&a, "DescribeInstances", class, later).is_err());
    }

    #[test]
    fn disabled_or_scaled() {
        let off = Throttle::new(ThrottleConfig {
            enabled: false,
            scale: 1.0,
        });
        let a = AccountId::generate();
        let now = Instant::now();
        for _ in 0..10_000 {
            off.admit_at(&a, "RunInstances", ActionClass::Mutating, now)
                .unwrap();
        }
        let big = Throttle::new(ThrottleConfig {
            enabled: true,
            scale: 10.0,
        });
        for _ in 0..2000 {
            big.admit_at(&a, "RunInstances", ActionClass::Mutating, now)
                .unwrap();
        }
        assert!(big
            .admit_at(&a, "RunInstances", ActionClass::Mutating, now)
            .is_err());
    }
}
