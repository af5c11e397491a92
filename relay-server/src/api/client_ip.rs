//! The client address that per-IP rate limits count (issue #12 item 9): the connection's peer,
//! or, when the peer is one of the configured trusted reverse proxies
//! (`--trusted-proxies`), the client that proxy names in `X-Forwarded-For`.

use crate::config::IpRange;
use crate::state::AppState;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, web};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The client address of a request (for per-IP limits).
pub(crate) fn client_ip(req: &HttpRequest) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return peer;
    };
    forwarded_client(
        peer,
        req.headers().get_all("x-forwarded-for"),
        &state.config.trusted_proxies,
    )
}

/// `peer`, unless it is a trusted proxy: then the right-most address of `X-Forwarded-For`
/// (all its lines, in order) that is not itself a trusted proxy. Each proxy appends the
/// address it got the request from, so what lies left of that is the client's own claim and
/// is never believed. A header that does not parse counts for the peer itself.
pub(crate) fn forwarded_client<'a>(
    peer: IpAddr,
    header_lines: impl Iterator<Item = &'a HeaderValue>,
    trusted: &[IpRange],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut hops = Vec::new();
    for line in header_lines {
        let Ok(text) = line.to_str() else {
            return peer;
        };
        for hop in text.split(',') {
            let Some(ip) = parse_hop(hop.trim()) else {
                return peer;
            };
            hops.push(ip);
        }
    }
    let mut client = peer;
    for ip in hops.into_iter().rev() {
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, or an address with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn client(peer: &str, lines: &[&str], trusted: &str) -> String {
        let trusted: Vec<IpRange> = trusted
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let values: Vec<HeaderValue> = lines
            .iter()
            .map(|l| HeaderValue::from_str(l).unwrap())
            .collect();
        forwarded_client(peer.parse().unwrap(), values.iter(), &trusted).to_string()
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        assert_eq!(client("198.51.100.9", &["203.0.113.7"], ""), "198.51.100.9");
        assert_eq!(
            client("198.51.100.9", &["203.0.113.7"], "10.0.0.0/8"),
            "198.51.100.9"
        );
        assert_eq!(
            client("10.1.2.3", &["203.0.113.7"], "10.0.0.0/8"),
            "203.0.113.7"
        );
        assert_eq!(client("10.1.2.3", &[], "10.0.0.0/8"), "10.1.2.3");
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = "10.0.0.0/8,::1";
        // A forged entry the client sent itself, then the real address, then a second proxy.
        assert_eq!(
            client("::1", &["1.2.3.4, 203.0.113.7, 10.0.0.2"], trusted),
            "203.0.113.7"
        );
        // The same across several header lines.
        assert_eq!(
            client("::1", &["1.2.3.4", "203.0.113.7", "10.0.0.2"], trusted),
            "203.0.113.7"
        );
        assert_eq!(client("::1", &["10.0.0.5, 10.0.0.2"], trusted), "10.0.0.5");
        assert_eq!(
            client("::1", &["[2001:db8::1]:443", "203.0.113.7:5000"], trusted),
            "203.0.113.7"
        );
        assert_eq!(client("::1", &["2001:db8::1"], trusted), "2001:db8::1");
    }

    #[test]
    fn a_malformed_header_counts_for_the_proxy() {
        assert_eq!(client("10.0.0.1", &["unknown"], "10.0.0.0/8"), "10.0.0.1");
        assert_eq!(
            client("10.0.0.1", &["203.0.113.7, "], "10.0.0.0/8"),
            "10.0.0.1"
        );
    }
}
