//! `quotas.owner_requests_per_minute_per_ip`: requests to owner endpoints per client
//! address, on this node (a `governor` keyed GCRA limiter). Local on purpose: it brakes
//! one address hammering one node before any token check or database work, and a
//! database round trip per request would cost more than what it protects. The per-owner
//! upload limits, which must hold across nodes, are counted in the database
//! (`admin::store::count_upload`).

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{clock::Clock as _, DefaultKeyedRateLimiter, Quota};

use super::{error::ApiError, service::ClientAddr, AppState};
use crate::{
    audit::{Event, EventKind},
    config::operators::QuotaConfig,
};

/// Forget idle addresses every this many checks, so memory stays bounded.
const SWEEP_EVERY: u64 = 4096;

/// The limiter and its configured rate.
#[derive(Debug)]
pub struct OwnerIpLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    per_minute: u32,
    checks: AtomicU64,
}

impl OwnerIpLimit {
    /// `None` when the limit is off (0).
    pub fn new(config: &QuotaConfig) -> Option<Arc<Self>> {
        let per_minute = NonZeroU32::new(config.owner_requests_per_minute_per_ip)?;
        Some(Arc::new(Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            per_minute: per_minute.get(),
            checks: AtomicU64::new(0),
        }))
    }

    /// Counts a request from `ip`, or says how many whole seconds to wait (at least 1).
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        if self.checks.fetch_add(1, Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            let clock = governor::clock::DefaultClock::default();
            not_until
                .wait_time_from(clock.now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        })
    }
}

/// Middleware on the owner routes: 429 `rate_limited` beyond the per-address rate.
pub async fn limit_owner_requests(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (Some(limit), Some(ClientAddr(ip))) = (
        state.owner_ip_limit.as_ref(),
        req.extensions().get::<ClientAddr>().copied(),
    ) else {
        return next.run(req).await;
    };
    if let Err(wait) = limit.check(ip) {
        let mut e = Event::new(EventKind::RateLimited, false);
        e.src = Some(ip);
        e.code = Some("owner_requests_per_minute_per_ip".into());
        state.audit.record(&e);
        return ApiError::RateLimited(
            wait,
            format!(
                "too many requests from your address: at most {} per minute \
                 (quotas.owner_requests_per_minute_per_ip); try again in {wait} seconds",
                limit.per_minute
            ),
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address() {
        let l = OwnerIpLimit::new(&QuotaConfig {
            owner_requests_per_minute_per_ip: 2,
            ..QuotaConfig::default()
        })
        .expect("on");
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        assert!(l.check(a).is_ok());
        assert!(l.check(a).is_ok());
        let wait = l.check(a).expect_err("third is limited");
        assert!((1..=30).contains(&wait), "{wait}");
        assert!(l.check(b).is_ok(), "other addresses unaffected");
        assert!(OwnerIpLimit::new(&QuotaConfig {
            owner_requests_per_minute_per_ip: 0,
            ..QuotaConfig::default()
        })
        .is_none());
    }
}
