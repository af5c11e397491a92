//! Time as a dependency, so expiry rules and rate limits can be tested without waiting.
//!
//! One [`Clock`] (shared by every clone) gives both the Unix time that expiry rules compare
//! with and the monotonic time the rate limiters' token buckets refill by. Tests move it
//! forward with [`Clock::advance`], or [`Clock::freeze`] it so that no token bucket refills
//! while a test counts requests, however slowly a loaded machine runs them.

use governor::nanos::Nanos;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The relay's clock: real time plus an offset tests can move forward, or frozen.
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Where the monotonic time counts from.
    start: Instant,
    /// How far tests moved the clock forward, in nanoseconds.
    offset_nanos: AtomicU64,
    /// Set once frozen: real time no longer passes, only [`Clock::advance`] moves the clock.
    frozen: AtomicBool,
    /// Unix time at the moment of freezing, in nanoseconds.
    frozen_unix: AtomicU64,
    /// Monotonic nanoseconds since `start` at the moment of freezing.
    frozen_monotonic: AtomicU64,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                start: Instant::now(),
                offset_nanos: AtomicU64::new(0),
                frozen: AtomicBool::new(false),
                frozen_unix: AtomicU64::new(0),
                frozen_monotonic: AtomicU64::new(0),
            }),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The system's Unix time in nanoseconds (0 before 1970).
fn system_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(nanos)
        .unwrap_or(0)
}

impl Clock {
    fn offset(&self) -> u64 {
        self.inner.offset_nanos.load(Ordering::Acquire)
    }

    /// Nanoseconds since this clock was made: monotonic, and moved by [`Self::advance`].
    fn monotonic_nanos(&self) -> u64 {
        let real = if self.inner.frozen.load(Ordering::Acquire) {
            self.inner.frozen_monotonic.load(Ordering::Acquire)
        } else {
            nanos(self.inner.start.elapsed())
        };
        real.saturating_add(self.offset())
    }

    /// Current Unix time in seconds (plus any test offset). Read from the system clock each
    /// time while running, so that a long-lived relay follows the system's time corrections
    /// (TOTP depends on it).
    #[must_use]
    pub fn now(&self) -> i64 {
        let real = if self.inner.frozen.load(Ordering::Acquire) {
            self.inner.frozen_unix.load(Ordering::Acquire)
        } else {
            system_unix_nanos()
        };
        i64::try_from(real.saturating_add(self.offset()) / 1_000_000_000).unwrap_or(i64::MAX)
    }

    /// Moves this clock (and every clone of it) forward by `seconds`; for tests.
    pub fn advance(&self, seconds: i64) {
        let by = u64::try_from(seconds).unwrap_or(0);
        self.advance_by(Duration::from_secs(by));
    }

    /// Moves this clock (and every clone of it) forward by `by`; for tests.
    pub fn advance_by(&self, by: Duration) {
        self.inner
            .offset_nanos
            .fetch_add(nanos(by), Ordering::AcqRel);
    }

    /// Stops real time for this clock (and every clone of it): from now on only
    /// [`Self::advance`] moves it. For tests that count rate-limited requests.
    pub fn freeze(&self) {
        if !self.inner.frozen.load(Ordering::Acquire) {
            self.inner
                .frozen_unix
                .store(system_unix_nanos(), Ordering::Release);
            self.inner
                .frozen_monotonic
                .store(nanos(self.inner.start.elapsed()), Ordering::Release);
            self.inner.frozen.store(true, Ordering::Release);
        }
    }
}

/// The rate limiters' time source (`governor`): monotonic nanoseconds of the relay's clock.
impl governor::clock::Clock for Clock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.monotonic_nanos())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let clock = Clock::default();
        let other = clock.clone();
        clock.freeze();
        let (unix, mono) = (clock.now(), governor::clock::Clock::now(&clock));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now(), unix);
        assert_eq!(governor::clock::Clock::now(&other), mono);
        other.advance(90);
        assert_eq!(clock.now(), unix + 90);
        assert_eq!(
            governor::clock::Clock::now(&clock).as_u64() - mono.as_u64(),
            90_000_000_000
        );
    }

    #[test]
    fn running_clock_follows_real_time_plus_offset() {
        let clock = Clock::default();
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(clock.now().abs_diff(i64::try_from(system).unwrap()) <= 1);
        let before = clock.now();
        clock.advance(3600);
        assert!(clock.now() >= before + 3600);
    }
}
