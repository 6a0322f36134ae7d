//! Per-client rate limits at the gateway: one token bucket per client IP and one per
//! authenticated user (GCRA from the `governor` crate). A request over either limit is
//! answered 429 problem+json with `Retry-After`. Buckets idle long enough to be full again
//! are forgotten by a periodic cleanup, so memory stays bounded by the active clients.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::problem::ApiError;

/// A limit: sustained requests per second and burst. `per_second == 0` disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Sustained rate.
    pub per_second: u32,
    /// Requests allowed at once above the sustained rate (at least 1).
    pub burst: u32,
}

/// The gateway's limiters.
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_user: Option<DefaultKeyedRateLimiter<Uuid>>,
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(limit: Limit) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(limit.per_second)?;
    let burst = NonZeroU32::new(limit.burst.max(1)).expect("at least one");
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl RateLimits {
    /// Limiters with these limits.
    pub fn new(per_ip: Limit, per_user: Limit) -> Self {
        Self {
            per_ip: limiter(per_ip),
            per_user: limiter(per_user),
            clock: DefaultClock::default(),
        }
    }

    /// No limits at all.
    pub fn disabled() -> Self {
        Self::new(
            Limit {
                per_second: 0,
                burst: 0,
            },
            Limit {
                per_second: 0,
                burst: 0,
            },
        )
    }

    /// Seconds to wait when `ip` or `user` is over its limit, `None` when allowed.
    pub fn check(&self, ip: Option<IpAddr>, user: Option<Uuid>) -> Option<u64> {
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(self.clock.now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        };
        if let (Some(limiter), Some(ip)) = (&self.per_ip, ip) {
            if let Err(not_until) = limiter.check_key(&ip) {
                return Some(wait(not_until));
            }
        }
        if let (Some(limiter), Some(user)) = (&self.per_user, user) {
            if let Err(not_until) = limiter.check_key(&user) {
                return Some(wait(not_until));
            }
        }
        None
    }

    /// Forgets buckets that are full again (clients idle long enough).
    pub fn cleanup(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_user {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Runs [`RateLimits::cleanup`] every `every` until shutdown.
    pub async fn run_cleanup(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => self.cleanup(),
            }
        }
    }
}

/// The middleware: checks the client's IP and, when the request carries a valid bearer
/// token, its user. An invalid token is not judged here: the handler refuses it.
pub async fn limit(
    State(limits): State<Arc<RateLimits>>,
    State(identity): State<Arc<ordo_identity::IdentityService>>,
    request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let user = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| identity.verify_access(token.trim()).ok())
        .map(|user| user.user_id);
    if let Some(retry_after_secs) = limits.check(ip, user) {
        return ApiError::RateLimited { retry_after_secs }.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_burst_is_refused_with_a_wait() {
        let limits = RateLimits::new(
            Limit {
                per_second: 1,
                burst: 2,
            },
            Limit {
                per_second: 0,
                burst: 0,
            },
        );
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert_eq!(limits.check(ip, None), None);
        assert_eq!(limits.check(ip, None), None);
        assert!(limits.check(ip, None).is_some_and(|s| s >= 1));
        // Another client has its own bucket.
        assert_eq!(limits.check(Some(IpAddr::from([10, 0, 0, 2])), None), None);
    }

    #[test]
    fn zero_disables_a_limit() {
        let limits = RateLimits::disabled();
        for _ in 0..1000 {
            assert_eq!(
                limits.check(Some(IpAddr::from([10, 0, 0, 1])), Some(Uuid::nil())),
                None
            );
        }
    }
}
