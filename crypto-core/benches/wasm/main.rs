//! The wasm-vs-native comparison of `cargo xtask bench`: one 1 KiB ratchet message encrypted
//! and decrypted (`Session::encrypt` + `Session::decrypt`, steady state on one chain), timed
//! the same way natively and in wasm32 under Node.
//!
//! - Natively (`cargo bench -p crypto-core --bench wasm`), `main` times [`RatchetBench::run`]
//!   with `std::time::Instant`.
//! - For wasm32 the same file is built (`cargo bench --target wasm32-unknown-unknown --no-run`,
//!   so with the same `bench` profile), bound with `wasm-bindgen --target nodejs`, and `run.cjs`
//!   times the exported `RatchetBench.run` with `performance.now()` under Node.
//!
//! Both print `ns_per_op min=… median=…` over [`ROUNDS`] rounds of [`ITERATIONS`] round trips
//! after a warm-up; `cargo xtask bench` divides the two and writes `target/bench-wasm.txt`.
//! Nothing here loops without a bound: it stops by itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    missing_docs
)]

#[path = "../common/mod.rs"]
mod common;

use crypto_core::Session;

/// Message size.
pub const SIZE: usize = 1024;
/// Round trips per timed round (the same natively and in wasm).
pub const ITERATIONS: u32 = 4000;
/// Timed rounds; the report uses the median and the minimum.
pub const ROUNDS: u32 = 9;

/// Two established sessions and a plaintext.
#[cfg_attr(target_family = "wasm", wasm_bindgen::prelude::wasm_bindgen)]
pub struct RatchetBench {
    alice: Session,
    bob: Session,
    plaintext: Vec<u8>,
}

#[cfg_attr(target_family = "wasm", wasm_bindgen::prelude::wasm_bindgen)]
impl RatchetBench {
    /// Sets up the sessions (X3DH, one reply), untimed.
    #[cfg_attr(
        target_family = "wasm",
        wasm_bindgen::prelude::wasm_bindgen(constructor)
    )]
    pub fn new() -> Self {
        let (alice, bob) = common::established_pair();
        Self {
            alice,
            bob,
            plaintext: vec![0x42; SIZE],
        }
    }

    /// `iterations` round trips: Alice encrypts, Bob decrypts. Returns the bytes decrypted
    /// (so that nothing can be optimized away).
    pub fn run(&mut self, iterations: u32) -> u32 {
        let mut total = 0u32;
        for _ in 0..iterations {
            let m = self.alice.encrypt(&self.plaintext).unwrap();
            let p = self.bob.decrypt(&m).unwrap();
            total = total.wrapping_add(p.len() as u32);
        }
        total
    }

    /// Exported constants for `run.cjs`.
    pub fn iterations() -> u32 {
        ITERATIONS
    }
    pub fn rounds() -> u32 {
        ROUNDS
    }
}

impl Default for RatchetBench {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(target_family = "wasm"))]
fn main() {
    use std::time::Instant;
    let mut bench = RatchetBench::new();
    std::hint::black_box(bench.run(ITERATIONS / 4));
    let mut per_op: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(bench.run(ITERATIONS));
            t.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    println!(
        "native 1KiB encrypt+decrypt ns_per_op min={:.1} median={:.1}",
        per_op[0],
        per_op[per_op.len() / 2]
    );
}

// wasm-bindgen calls nothing at start-up; the JS driver (run.cjs) does the work.
#[cfg(target_family = "wasm")]
fn main() {}
