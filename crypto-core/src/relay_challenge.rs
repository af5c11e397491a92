//! Proof of possession of a device's identity key towards a relay (docs/protocol.md §5.1).
//!
//! A relay that wants to know that a device holds the identity key it registers sends a random
//! 32-byte challenge; the device answers with [`crate::Account::sign_relay_challenge`], and the
//! relay checks the answer with [`verify_relay_challenge`]. The signed bytes are
//!
//! ```text
//! "SecureChat v2 relay challenge" || u32(len(origin)) || origin || challenge (32)
//! ```
//!
//! The context string is distinct from, and no prefix of, every other signature context
//! (§4), so an answer can never be taken for an identity binding, a signed prekey or a group
//! message, whatever challenge a hostile relay chooses. The relay's origin is part of the
//! signed bytes, so an answer obtained by one relay is worthless at another one.
//!
//! # Security notes
//! - The origin must be the canonical ASCII serialization `scheme://host[:port]` (see
//!   [`check_relay_origin`]); the client should pass the origin it actually connected to, not
//!   one the relay told it.
//! - The challenge must be fresh and random per attempt (the relay's job): a signature proves
//!   possession only for that challenge.

use crate::context::SignatureContext;
use crate::error::RelayChallengeError;
use crate::identity::PublicIdentity;
use crate::primitives::SIGNATURE_LEN;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Length of a relay challenge.
pub const RELAY_CHALLENGE_LEN: usize = 32;
/// Longest relay origin accepted (bytes): `https://`, a 253-byte DNS name and `:65535`.
pub const MAX_RELAY_ORIGIN_LEN: usize = 8 + 253 + 6;

/// The bytes a device signs to answer `challenge` from the relay at `relay_origin`, after
/// checking the origin.
pub(crate) fn signed_bytes(
    relay_origin: &str,
    challenge: &[u8; RELAY_CHALLENGE_LEN],
) -> Result<Vec<u8>, RelayChallengeError> {
    check_relay_origin(relay_origin)?;
    // Bounded by MAX_RELAY_ORIGIN_LEN above, so the conversion cannot fail.
    let len =
        u32::try_from(relay_origin.len()).map_err(|_| RelayChallengeError::InvalidRelayOrigin)?;
    Ok(SignatureContext::RelayChallenge.message(&[
        &len.to_be_bytes(),
        relay_origin.as_bytes(),
        challenge,
    ]))
}

/// Checks a device's answer to a relay challenge: `signature` must be the identity's strict
/// Ed25519 signature over the challenge of the relay at `relay_origin`.
///
/// Errors: [`RelayChallengeError::InvalidRelayOrigin`] for an origin that is not canonical,
/// [`RelayChallengeError::BadSignature`] when the signature does not verify.
pub fn verify_relay_challenge(
    identity: &PublicIdentity,
    relay_origin: &str,
    challenge: &[u8; RELAY_CHALLENGE_LEN],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), RelayChallengeError> {
    Ok(identity
        .signing_key()
        .verify(&signed_bytes(relay_origin, challenge)?, signature)?)
}

/// Accepts exactly the canonical origins `scheme://host[:port]`, as a browser serializes them
/// ([`RelayChallengeError::InvalidRelayOrigin`] otherwise):
///
/// - the scheme is `http` or `https`, lowercase;
/// - the host is a lowercase ASCII DNS name (labels of `a-z`, `0-9` and `-`, 1 to 63 bytes,
///   not starting or ending with `-`; no trailing dot; at most 253 bytes), a dotted-quad IPv4
///   address without leading zeros, or a bracketed IPv6 address in its RFC 5952 form;
/// - the port, if present, is decimal without leading zeros, from 1 to 65535, and not the
///   scheme's default (80 for http, 443 for https);
/// - nothing else: no userinfo, path, trailing slash, query or fragment.
pub fn check_relay_origin(origin: &str) -> Result<(), RelayChallengeError> {
    if is_canonical_origin(origin) {
        Ok(())
    } else {
        Err(RelayChallengeError::InvalidRelayOrigin)
    }
}

fn is_canonical_origin(origin: &str) -> bool {
    if origin.is_empty() || origin.len() > MAX_RELAY_ORIGIN_LEN {
        return false;
    }
    let (authority, default_port) = if let Some(rest) = origin.strip_prefix("https://") {
        (rest, 443)
    } else if let Some(rest) = origin.strip_prefix("http://") {
        (rest, 80)
    } else {
        return false;
    };
    let (host, port) = if let Some(ipv6) = authority.strip_prefix('[') {
        let Some((address, after)) = ipv6.split_once(']') else {
            return false;
        };
        if !is_canonical_ipv6(address) {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => return is_canonical_port(port, default_port),
                None => return false,
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    is_canonical_host(host) && port.is_none_or(|p| is_canonical_port(p, default_port))
}

fn is_canonical_ipv6(address: &str) -> bool {
    address
        .parse::<Ipv6Addr>()
        .is_ok_and(|a| a.to_string() == address)
}

fn is_canonical_port(port: &str, default_port: u16) -> bool {
    !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && !port.starts_with('0')
        && port
            .parse::<u16>()
            .is_ok_and(|p| p != 0 && p != default_port)
}

fn is_canonical_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    // A name whose last label is numeric is an IPv4 address to a URL parser: accept only the
    // canonical dotted quad.
    let last_label_numeric = host
        .rsplit('.')
        .next()
        .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    if last_label_numeric {
        return host
            .parse::<Ipv4Addr>()
            .is_ok_and(|a| a.to_string() == host);
    }
    host.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_origins_are_accepted() {
        for origin in [
            "https://relay.example",
            "http://localhost",
            "http://127.0.0.1:8080",
            "https://relay.example:8443",
            "http://relay.example:443",
            "https://xn--bcher-kva.example",
            "https://a-b.c0",
            "https://[::1]",
            "https://[2001:db8::1]:8443",
            "https://[::ffff:192.0.2.1]",
        ] {
            assert_eq!(check_relay_origin(origin), Ok(()), "{origin}");
        }
    }

    #[test]
    fn other_origins_are_refused() {
        let long_label = format!("https://{}.example", "a".repeat(64));
        let long_name = format!("https://{}", ["abcdefghi"; 26].join("."));
        for origin in [
            "",
            "relay.example",
            "https://",
            "https://relay.example/",
            "https://relay.example/api",
            "https://relay.example?x",
            "https://relay.example#x",
            "https://user@relay.example",
            "https://user:pw@relay.example",
            "HTTPS://relay.example",
            "Https://relay.example",
            "https://Relay.example",
            "ftp://relay.example",
            "wss://relay.example",
            "https:/relay.example",
            "https://relay.example.",
            "https://.relay.example",
            "https://relay..example",
            "https://-relay.example",
            "https://relay-.example",
            "https://relay_1.example",
            "https://relä.example",
            "https://relay.example:",
            "https://relay.example:443",
            "http://relay.example:80",
            "https://relay.example:0",
            "https://relay.example:08443",
            "https://relay.example:65536",
            "https://relay.example:+1",
            "https://relay.example:1:2",
            "https://127.000.0.1",
            "https://127.1",
            "https://256.0.0.1",
            "https://1.2.3.4.5",
            "https://[::1",
            "https://[0:0:0:0:0:0:0:1]",
            "https://[::1]x",
            "https://[::1]:",
            "https://[::1]:443",
            "https://[::1]/",
            "https://[::1%eth0]",
            "https://[::1]]",
            "https://relay.example\0",
            "https://relay .example",
            " https://relay.example",
            &long_label,
            &long_name,
        ] {
            assert_eq!(
                check_relay_origin(origin),
                Err(RelayChallengeError::InvalidRelayOrigin),
                "{origin:?}"
            );
        }
    }

    #[test]
    fn longest_origin_is_bounded() {
        // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 bytes of name: at the limit, accepted.
        let name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        let origin = format!("https://{name}:65535");
        assert_eq!(origin.len(), MAX_RELAY_ORIGIN_LEN);
        assert_eq!(check_relay_origin(&origin), Ok(()));
        let longer = format!("https://{name}e:65535");
        assert_eq!(
            check_relay_origin(&longer),
            Err(RelayChallengeError::InvalidRelayOrigin)
        );
    }

    #[test]
    fn signed_bytes_are_length_prefixed() {
        let bytes = signed_bytes("https://a.example", &[7; 32]).unwrap_or_default();
        let mut expected = b"SecureChat v2 relay challenge".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 17]);
        expected.extend_from_slice(b"https://a.example");
        expected.extend_from_slice(&[7; 32]);
        assert_eq!(bytes, expected);
    }
}
