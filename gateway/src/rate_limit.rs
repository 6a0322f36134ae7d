//! Per-client rate limits at the gateway: one token bucket per client IP and one per
//! authenticated user (GCRA from the `governor` crate). A request over either limit is
//! answered 429 problem+json with `Retry-After`. Buckets idle long enough to be full again
//! are forgotten by a periodic cleanup, so memory stays bounded by the active clients.
//!
//! # Who the client is
//!
//! A client is keyed by its address ([`ClientKey`]): an IPv4 address as it is, an IPv6
//! address by its /64 (one subscriber's allocation, so rotating through a prefix gains
//! nothing), an IPv4-mapped IPv6 address as the IPv4 address. `X-Forwarded-For` is read
//! only when the peer is one of the trusted proxies (`ORDO_TRUSTED_PROXIES`); then the
//! rightmost address in it that is not a trusted proxy is the client, since everything to
//! its left was written by the client itself. The key is put in the request's extensions
//! for handlers that limit per client.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
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

/// The client a request is counted against: an IPv4 address, or the /64 of an IPv6
/// address (its last 64 bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of a client at `addr`.
    pub fn of(addr: IpAddr) -> Self {
        match canonical(addr) {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }

    /// The address (for IPv6, the first of its /64).
    pub fn addr(&self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports for
/// an IPv4 peer) as the IPv4 address; any other address as it is.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default): the header is
/// ignored and the peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// These networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client's address: the peer, unless the peer is a trusted proxy, in which case
    /// the rightmost `X-Forwarded-For` address that is not a trusted proxy. An entry that
    /// is not an address ends the walk: the nearest hop that is trusted is the client.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        // Several headers form one list, in order (RFC 9110 5.3).
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(addr) = parse_hop(hop) else { break };
            let addr = canonical(addr);
            client = addr;
            if !self.trusts(addr) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`,
/// `[2001:db8::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(addr) = hop.parse::<IpAddr>() {
        return Some(addr);
    }
    hop.parse::<SocketAddr>().ok().map(|addr| addr.ip())
}

/// One entry of `ORDO_TRUSTED_PROXIES`: a network in CIDR notation, or one address.
pub fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{text}' is not a network such as 10.0.0.0/8 or an address"))
}

/// The gateway's limiters.
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<ClientKey>>,
    per_user: Option<DefaultKeyedRateLimiter<Uuid>>,
    trusted_proxies: TrustedProxies,
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
            trusted_proxies: TrustedProxies::default(),
            clock: DefaultClock::default(),
        }
    }

    /// Believes `X-Forwarded-For` from these proxies.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The key of the client that sent a request from `peer` with `headers`.
    pub fn client_key(&self, peer: IpAddr, headers: &HeaderMap) -> ClientKey {
        ClientKey::of(self.trusted_proxies.client_addr(peer, headers))
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

    /// Seconds to wait when `client` or `user` is over its limit, `None` when allowed.
    pub fn check(&self, client: Option<ClientKey>, user: Option<Uuid>) -> Option<u64> {
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(self.clock.now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        };
        if let (Some(limiter), Some(client)) = (&self.per_ip, client) {
            if let Err(not_until) = limiter.check_key(&client) {
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

/// The middleware: checks the client (see [`ClientKey`]) and, when the request carries a
/// valid bearer token, its user; puts the client's key in the request's extensions. An
/// invalid token is not judged here: the handler refuses it.
pub async fn limit(
    State(limits): State<Arc<RateLimits>>,
    State(identity): State<Arc<ordo_identity::IdentityService>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| limits.client_key(addr.ip(), request.headers()));
    if let Some(client) = client {
        request.extensions_mut().insert(client);
    }
    let user = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| identity.verify_access(token.trim()).ok())
        .map(|user| user.user_id);
    if let Some(retry_after_secs) = limits.check(client, user) {
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
        let ip = Some(key("10.0.0.1"));
        assert_eq!(limits.check(ip, None), None);
        assert_eq!(limits.check(ip, None), None);
        assert!(limits.check(ip, None).is_some_and(|s| s >= 1));
        // Another client has its own bucket.
        assert_eq!(limits.check(Some(key("10.0.0.2")), None), None);
    }

    fn key(addr: &str) -> ClientKey {
        ClientKey::of(addr.parse().unwrap())
    }

    fn addr(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn proxies(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            networks
                .iter()
                .map(|n| parse_trusted_proxy(n).unwrap())
                .collect(),
        )
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_ipv4_client() {
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_eq!(key("::ffff:192.0.2.7").to_string(), "192.0.2.7");
        // Different IPv4 clients stay apart (no /64 grouping of mapped addresses).
        assert_ne!(key("::ffff:192.0.2.7"), key("::ffff:192.0.2.8"));
    }

    #[test]
    fn an_ipv6_prefix_cannot_spread_over_many_buckets() {
        let limits = RateLimits::new(
            Limit {
                per_second: 1,
                burst: 1,
            },
            Limit {
                per_second: 0,
                burst: 0,
            },
        );
        assert_eq!(limits.check(Some(key("2001:db8::1")), None), None);
        assert!(limits.check(Some(key("2001:db8::2")), None).is_some());
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_ignored() {
        let none = TrustedProxies::default();
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(
            none.client_addr(addr("198.51.100.1"), &headers),
            addr("198.51.100.1")
        );
        let some = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            some.client_addr(addr("198.51.100.1"), &headers),
            addr("198.51.100.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        // The client forged the first entry; the trusted proxies appended the rest.
        let headers = forwarded(&["1.1.1.1, 203.0.113.9", "192.0.2.1"]);
        assert_eq!(
            trusted.client_addr(addr("10.1.2.3"), &headers),
            addr("203.0.113.9")
        );
        // An IPv4-mapped peer is recognised as the trusted proxy it is.
        assert_eq!(
            trusted.client_addr(addr("::ffff:10.1.2.3"), &headers),
            addr("203.0.113.9")
        );
        // Ports are allowed, IPv6 in brackets too.
        let headers = forwarded(&["[2001:db8::5]:443, 10.0.0.2:80"]);
        assert_eq!(
            trusted.client_addr(addr("10.1.2.3"), &headers),
            addr("2001:db8::5")
        );
    }

    #[test]
    fn all_trusted_or_unreadable_hops_stop_at_the_last_trusted_one() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded(&["10.0.0.7, 10.0.0.8"]);
        assert_eq!(
            trusted.client_addr(addr("10.1.2.3"), &headers),
            addr("10.0.0.7")
        );
        let headers = forwarded(&["203.0.113.9, not-an-address, 10.0.0.8"]);
        assert_eq!(
            trusted.client_addr(addr("10.1.2.3"), &headers),
            addr("10.0.0.8")
        );
        // No header at all: the proxy itself.
        assert_eq!(
            trusted.client_addr(addr("10.1.2.3"), &HeaderMap::new()),
            addr("10.1.2.3")
        );
    }

    #[test]
    fn trusted_proxies_parse_networks_and_addresses() {
        assert!(parse_trusted_proxy("10.0.0.0/8").is_ok());
        assert!(parse_trusted_proxy(" 2001:db8::/32 ").is_ok());
        assert_eq!(
            parse_trusted_proxy("192.0.2.1").unwrap(),
            "192.0.2.1/32".parse::<IpNet>().unwrap()
        );
        assert!(parse_trusted_proxy("proxy.example").is_err());
    }

    #[test]
    fn zero_disables_a_limit() {
        let limits = RateLimits::disabled();
        for _ in 0..1000 {
            assert_eq!(limits.check(Some(key("10.0.0.1")), Some(Uuid::nil())), None);
        }
    }
}
