//! Per-owner upload rate limit (a sliding log per owner, per API node).
//!
//! Kept in memory: a node that restarts forgets, and N nodes allow up to N times the
//! limit. That is the usual trade for an abuse brake; the queue-depth limit is the global
//! backstop because it reads the shared database.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::domain::ids::OwnerKey;

/// At most `limit` events per `window` per owner.
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    log: Mutex<HashMap<OwnerKey, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` events per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit as usize,
            window,
            log: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event, or says how many whole seconds to wait (at least 1).
    pub fn check(&self, owner: &OwnerKey) -> Result<(), u64> {
        let now = Instant::now();
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bound memory: forget owners whose whole log has expired once the map grows.
        if log.len() > 100_000 {
            log.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let q = log.entry(*owner).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.limit {
            let oldest = q.front().copied().unwrap_or(now);
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_owner() {
        let r = RateLimiter::new(2, Duration::from_secs(60));
        let (a, b) = (OwnerKey([1; 32]), OwnerKey([2; 32]));
        assert!(r.check(&a).is_ok());
        assert!(r.check(&a).is_ok());
        let wait = r.check(&a).expect_err("third is limited");
        assert!((59..=60).contains(&wait), "{wait}");
        assert!(r.check(&b).is_ok(), "other owners unaffected");
        let fast = RateLimiter::new(1, Duration::from_millis(20));
        assert!(fast.check(&a).is_ok());
        assert_eq!(fast.check(&a), Err(1));
        std::thread::sleep(Duration::from_millis(25));
        assert!(fast.check(&a).is_ok(), "window slides");
    }
}
