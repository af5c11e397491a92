//! The clock and randomness of the platform.

use crate::error::{ClientError, Result};

/// Unix time in milliseconds.
#[cfg(not(target_family = "wasm"))]
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix time in milliseconds.
#[cfg(target_family = "wasm")]
#[must_use]
pub fn now_ms() -> i64 {
    // Date.now() is an integral number of milliseconds.
    #[allow(clippy::cast_possible_truncation)]
    let ms = js_sys::Date::now() as i64;
    ms
}

/// Unix time in seconds.
#[must_use]
pub fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

/// 128 random bits as 32 lowercase hex digits (message ids).
pub fn random_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ClientError::Storage(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
