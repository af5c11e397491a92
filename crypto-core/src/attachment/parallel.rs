//! The two-thread paths of large calls (see the module's "Performance"): a scoped second
//! thread on native targets, the calling thread alone on wasm32 or when no thread starts.

use super::CHUNK_SIZE;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Below this many bytes per call everything runs on the calling thread; from here on (native
/// targets) a second, scoped thread shares the work (see the module's "Performance"). Starting
/// a thread costs tens of µs, four chunks take about a millisecond to seal.
pub(super) const PARALLEL_HASH_MIN_LEN: usize = 4 * CHUNK_SIZE;

/// Runs `work` on the calling thread and `hash` at the same time on a scoped second thread
/// when `parallel` is set (native targets; on wasm32, or if no thread can be started, one after
/// the other: `work` first). Returns `hash`'s result (`None` only if its thread panicked, which
/// the SHA-256 code cannot do; callers fail closed) and `work`'s.
pub(super) fn hash_while<H: Send, W>(
    parallel: bool,
    hash: impl Fn() -> H + Sync,
    work: impl FnOnce() -> W,
) -> (Option<H>, W) {
    #[cfg(not(target_arch = "wasm32"))]
    if parallel {
        return std::thread::scope(|scope| {
            match std::thread::Builder::new().spawn_scoped(scope, &hash) {
                Ok(handle) => {
                    let worked = work();
                    (handle.join().ok(), worked)
                }
                Err(_) => {
                    let worked = work();
                    (Some(hash()), worked)
                }
            }
        });
    }
    #[cfg(target_arch = "wasm32")]
    let _ = parallel;
    let worked = work();
    (Some(hash()), worked)
}

/// Runs `there` on a scoped second thread and `here` on the calling thread at the same time
/// when `parallel` is set (native targets); otherwise, on wasm32, or if no thread can be
/// started, one after the other (`there` first). `None` only if `there`'s thread panicked
/// (callers fail closed).
pub(super) fn join<T: Send, H>(
    parallel: bool,
    there: impl FnOnce() -> T + Send,
    here: impl FnOnce() -> H,
) -> (Option<T>, H) {
    let job = Mutex::new(Some(there));
    let run = || lock(&job).take().map(|f| f());
    #[cfg(not(target_arch = "wasm32"))]
    if parallel {
        return std::thread::scope(|scope| {
            match std::thread::Builder::new().spawn_scoped(scope, run) {
                Ok(handle) => {
                    let done = here();
                    (handle.join().ok().flatten(), done)
                }
                Err(_) => {
                    let first = run();
                    (first, here())
                }
            }
        });
    }
    #[cfg(target_arch = "wasm32")]
    let _ = parallel;
    let first = run();
    (first, here())
}

/// Locks a mutex that only [`hash_while`] or [`join`] shares; a poisoned one (after a panic that cannot
/// happen) is used as it is, and the caller's result reports the failure.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
