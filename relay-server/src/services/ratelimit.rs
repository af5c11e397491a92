//! Abuse limits: token buckets (GCRA, the `governor` crate) per client IP and per account for
//! each sensitive action. The buckets refill by the relay's [`Clock`], so tests can freeze or
//! advance them. (Failed second-factor codes are counted in the database instead, by
//! [`crate::services::code_guard`], so that every relay sees them.)

use crate::api::error::ApiError;
use crate::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{NotUntil, Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

/// Actions that are rate limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Account registration.
    Register,
    /// Password login.
    Login,
    /// Submitting a second-factor code.
    TwoFactor,
    /// Sending an e-mail code.
    EmailSend,
    /// Changing one's ms_id.
    MsIdEdit,
    /// Looking up a profile by ms_id.
    Lookup,
    /// Asking whether an ms_id is available (`GET /ms_ids/{ms_id}`, no session: per IP only).
    MsIdCheck,
    /// Checking a signed-in user's password for a sensitive change (`PUT /me/password`,
    /// `PUT /me/email`, `DELETE /me`, the `/me/2fa/*` routes that take the password): every
    /// check counts, right or wrong.
    PasswordCheck,
    /// Uploading an attachment.
    Upload,
    /// Sending a friend request.
    FriendRequest,
    /// Fetching a prekey bundle (each one consumes a one-time prekey of the target device).
    BundleFetch,
    /// Opening the WebSocket (`/api/v1/ws`).
    WsConnect,
    /// A `send` or `typing` frame on the WebSocket.
    Send,
    /// Creating a room.
    RoomCreate,
    /// Inviting someone to a room.
    RoomInvite,
}

/// The per-IP bucket an address counts in: an IPv4 address (also written IPv4-mapped) alone,
/// an IPv6 address by its /64, the usual smallest allocation to one subscriber, so that one
/// client cannot take a fresh bucket per address (issue #12 item 9).
#[must_use]
pub fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// A keyed token bucket on the relay's clock.
type Bucket<K> = RateLimiter<K, DefaultKeyedStateStore<K>, Clock, NoOpMiddleware<Nanos>>;

struct Limit {
    per_ip: Bucket<IpAddr>,
    per_account: Bucket<String>,
}

/// All limiters of the relay.
pub struct RateLimits {
    disabled: bool,
    clock: Clock,
    register: Limit,
    login: Limit,
    two_factor: Limit,
    email_send: Limit,
    ms_id_edit: Limit,
    lookup: Limit,
    ms_id_check: Limit,
    password_check: Limit,
    upload: Limit,
    friend_request: Limit,
    bundle_fetch: Limit,
    ws_connect: Limit,
    send: Limit,
    room_create: Limit,
    room_invite: Limit,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

fn quota(burst: u32, per: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(per / burst.get())
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Limit {
    fn new(clock: &Clock, ip: (u32, Duration), account: (u32, Duration)) -> Self {
        Self {
            per_ip: RateLimiter::new(
                quota(ip.0, ip.1),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            per_account: RateLimiter::new(
                quota(account.0, account.1),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

impl RateLimits {
    /// The production limits on `clock` (or none at all when `disabled`, for load tests).
    #[must_use]
    pub fn new(disabled: bool, clock: &Clock) -> Self {
        let limit = |ip, account| Limit::new(clock, ip, account);
        Self {
            disabled,
            clock: clock.clone(),
            register: limit((10, HOUR), (3, HOUR)),
            login: limit((30, MINUTE), (10, 15 * MINUTE)),
            two_factor: limit((30, MINUTE), (10, MINUTE)),
            email_send: limit((20, HOUR), (5, HOUR)),
            ms_id_edit: limit((20, HOUR), (3, DAY)),
            lookup: limit((120, MINUTE), (60, MINUTE)),
            // Anonymous, so only the per-IP bucket is used: a burst of 60, then one a second —
            // enough for a sign-up form checking as the user types, too slow to enumerate
            // ms_ids. (The per-account bucket exists only because every limit has one.)
            ms_id_check: limit((60, MINUTE), (60, MINUTE)),
            // Each check is an argon2 run: like login, 10 per account per 15 minutes (a stolen
            // session cannot guess the password quickly) and 30 per IP per minute.
            password_check: limit((30, MINUTE), (10, 15 * MINUTE)),
            // Each upload writes a file of up to 25 MiB: 60 an hour per account (an album of
            // photos goes up at once), 120 per IP.
            upload: limit((120, HOUR), (60, HOUR)),
            friend_request: limit((60, HOUR), (30, HOUR)),
            // A new device starts sessions with every device of every friend at once, so the
            // burst is generous; the refill (one every 18 s per account) still stops a friend
            // from draining someone's one-time prekeys quickly.
            bundle_fetch: limit((600, HOUR), (200, HOUR)),
            ws_connect: limit((60, MINUTE), (30, MINUTE)),
            // Per account: a burst of 600 frames, 10 per second sustained (a message to a
            // group of friends is one `send` per recipient device).
            send: limit((1200, MINUTE), (600, MINUTE)),
            // Rooms cost rows and fan-out: 30 new rooms and 200 invitations an hour per
            // account (a room of 100 filled at once fits); the per-IP buckets are not used.
            room_create: limit((60, HOUR), (30, HOUR)),
            room_invite: limit((400, HOUR), (200, HOUR)),
        }
    }

    /// Whether the limits are off (load tests; the second-factor guard is off then too).
    #[must_use]
    pub fn disabled(&self) -> bool {
        self.disabled
    }

    fn limit(&self, action: Action) -> &Limit {
        match action {
            Action::Register => &self.register,
            Action::Login => &self.login,
            Action::TwoFactor => &self.two_factor,
            Action::EmailSend => &self.email_send,
            Action::MsIdEdit => &self.ms_id_edit,
            Action::Lookup => &self.lookup,
            Action::MsIdCheck => &self.ms_id_check,
            Action::PasswordCheck => &self.password_check,
            Action::Upload => &self.upload,
            Action::FriendRequest => &self.friend_request,
            Action::BundleFetch => &self.bundle_fetch,
            Action::WsConnect => &self.ws_connect,
            Action::Send => &self.send,
            Action::RoomCreate => &self.room_create,
            Action::RoomInvite => &self.room_invite,
        }
    }

    /// Takes a token from the bucket of the IP's [`bucket_key`] for `action`, or returns 429
    /// with `Retry-After`.
    pub fn check_ip(&self, action: Action, ip: IpAddr) -> Result<(), ApiError> {
        if self.disabled {
            return Ok(());
        }
        self.limit(action)
            .per_ip
            .check_key(&bucket_key(ip))
            .map_err(|not_until| self.refused(&not_until))
    }

    /// 429 with the whole seconds until the bucket has a token again (at least 1).
    fn refused(&self, not_until: &NotUntil<Nanos>) -> ApiError {
        let now = governor::clock::Clock::now(&self.clock);
        ApiError::rate_limited(not_until.wait_time_from(now).as_secs() + 1)
    }

    /// Takes a token from the account's bucket for `action` (the key is the user id or, before
    /// login, the normalized e-mail address).
    pub fn check_account(&self, action: Action, account: &str) -> Result<(), ApiError> {
        if self.disabled {
            return Ok(());
        }
        self.limit(action)
            .per_account
            .check_key(&account.to_owned())
            .map_err(|not_until| self.refused(&not_until))
    }

    /// Drops idle buckets; called periodically.
    pub fn prune(&self) {
        for l in [
            &self.register,
            &self.login,
            &self.two_factor,
            &self.email_send,
            &self.ms_id_edit,
            &self.lookup,
            &self.ms_id_check,
            &self.password_check,
            &self.upload,
            &self.friend_request,
            &self.bundle_fetch,
            &self.ws_connect,
            &self.send,
        ] {
            l.per_ip.retain_recent();
            l.per_account.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_addresses_share_their_64_bucket() {
        assert_eq!(bucket_key(ip("2001:db8:1:2::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            bucket_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            bucket_key(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            bucket_key(ip("2001:db8:1:3::1")),
            bucket_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(bucket_key(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_ne!(bucket_key(ip("203.0.113.7")), bucket_key(ip("203.0.113.8")));
        assert_eq!(bucket_key(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
    }

    #[test]
    fn one_64_spends_one_bucket() {
        let clock = Clock::default();
        clock.freeze();
        let limits = RateLimits::new(false, &clock);
        for i in 1..=10 {
            let addr = ip(&format!("2001:db8:1:2::{i:x}"));
            assert!(limits.check_ip(Action::Register, addr).is_ok(), "{addr}");
        }
        assert!(
            limits
                .check_ip(Action::Register, ip("2001:db8:1:2:abcd::1"))
                .is_err()
        );
        assert!(
            limits
                .check_ip(Action::Register, ip("2001:db8:1:3::1"))
                .is_ok()
        );
    }
}
