//! The circuit breaker of the public reads' database lookups (API.md §Public reads: a dead
//! store must cost microseconds per request, not a pool timeout).
//!
//! Closed: every lookup goes to the database. After `failures` timeouts or connection
//! errors in a row it opens for `open_for`: lookups are refused at once (two atomic loads)
//! and callers serve stale entries or defaults. When that time has passed one caller gets
//! [`Gate::Probe`] and checks the database in the background (no request waits for it);
//! success closes the breaker (recovery without a restart), failure opens it again.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// What a lookup may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Ask the database.
    Closed,
    /// Do not ask; serve a fallback.
    Open,
    /// Serve a fallback, and check whether the database is back.
    Probe,
}

/// One breaker per node (shared by every public lookup).
#[derive(Debug)]
pub struct Breaker {
    failures: AtomicU32,
    threshold: u32,
    /// Milliseconds since `epoch` until which lookups are refused; 0 when closed.
    open_until: AtomicU64,
    open_for: Duration,
    epoch: Instant,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failures in a row, for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            failures: AtomicU32::new(0),
            threshold: threshold.max(1),
            open_until: AtomicU64::new(0),
            open_for,
            epoch: Instant::now(),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a lookup may go to the database now. While open, exactly one caller per
    /// `open_for` gets [`Gate::Probe`].
    pub fn gate(&self, now: Instant) -> Gate {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Gate::Closed;
        }
        let t = self.ms(now);
        // Past the deadline: the caller that moves it becomes the probe.
        let probe = t >= until
            && self
                .open_until
                .compare_exchange(
                    until,
                    t + self.ms_for(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
        if probe {
            Gate::Probe
        } else {
            Gate::Open
        }
    }

    fn ms_for(&self) -> u64 {
        u64::try_from(self.open_for.as_millis())
            .unwrap_or(u64::MAX / 2)
            .max(1)
    }

    /// Whether lookups are being refused.
    pub fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) != 0
    }

    /// A lookup answered: close.
    pub fn success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.open_until.swap(0, Ordering::AcqRel) != 0 {
            tracing::info!("the database answers again; public reads use it again");
            metrics::counter!("moocard_avatar_breaker_total", "to" => "closed").increment(1);
        }
    }

    /// A lookup timed out or could not reach the database.
    pub fn failure(&self, now: Instant) {
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.threshold {
            let until = self.ms(now) + self.ms_for();
            if self.open_until.swap(until, Ordering::AcqRel) == 0 {
                tracing::warn!(
                    failures = n,
                    "public reads stop asking the database for a while: it is down or slow"
                );
                metrics::counter!("moocard_avatar_breaker_total", "to" => "open").increment(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_once_and_closes() {
        let b = Breaker::new(2, Duration::from_millis(50));
        let t0 = Instant::now();
        assert_eq!(b.gate(t0), Gate::Closed);
        b.failure(t0);
        assert_eq!(b.gate(t0), Gate::Closed, "one failure is not enough");
        b.failure(t0);
        assert!(b.is_open());
        assert_eq!(b.gate(t0), Gate::Open);
        let later = t0 + Duration::from_millis(80);
        assert_eq!(
            b.gate(later),
            Gate::Probe,
            "the first caller after the pause"
        );
        assert_eq!(b.gate(later), Gate::Open, "only one probe per pause");
        b.success();
        assert!(!b.is_open());
        assert_eq!(b.gate(later), Gate::Closed);
    }
}
