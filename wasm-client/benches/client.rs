//! The native half of `cargo xtask bench client`: the same workloads as the browser half
//! (`tests/bench_browser.rs`, from `wasm_client::bench_support`), timed here, written to
//! `target/bench-client-native.txt` as `name milliseconds` lines for the xtask's ratio table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Instant;
use wasm_client::bench_support::{encrypt_decrypt, read_last, session_pair, write_history};
use wasm_client::store::MemoryStore;
use wasm_client::store::sealed::{KdfParams, SealedStore};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut lines = Vec::new();
    // 1 KiB message: encrypt + decrypt, per message, median of 7 runs of 1,000.
    let (mut a, mut b) = session_pair().unwrap();
    let plaintext = vec![0x42u8; 1024];
    encrypt_decrypt(&mut a, &mut b, &plaintext, 200).unwrap();
    let runs: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            encrypt_decrypt(&mut a, &mut b, &plaintext, 1000).unwrap();
            t.elapsed().as_secs_f64() * 1000.0 / 1000.0
        })
        .collect();
    lines.push(format!("message_1k_ms {:.5}", median(runs)));

    // History: 10,000 messages in batches of 100, then the last 50 read back (sealed store
    // over memory: the native baseline of IndexedDB).
    let store = SealedStore::create(MemoryStore::new(), "bench", KdfParams::INSECURE_FOR_TESTS)
        .await
        .unwrap();
    let t = Instant::now();
    write_history(&store, 10_000, 100).await.unwrap();
    lines.push(format!(
        "write_10000_ms {:.3}",
        t.elapsed().as_secs_f64() * 1000.0
    ));
    let reads: Vec<f64> = {
        let mut v = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            assert_eq!(read_last(&store, 50).await.unwrap(), 50);
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        v
    };
    lines.push(format!("read_last_50_ms {:.3}", median(reads)));

    // Unlocking a store with the recommended Argon2id parameters.
    let raw = MemoryStore::new();
    SealedStore::create(raw.clone(), "bench", KdfParams::RECOMMENDED)
        .await
        .unwrap();
    let t = Instant::now();
    SealedStore::open(raw, "bench").await.unwrap();
    lines.push(format!(
        "unlock_ms {:.3}",
        t.elapsed().as_secs_f64() * 1000.0
    ));

    let text = lines.join("\n") + "\n";
    print!("{text}");
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    std::fs::write(target.join("bench-client-native.txt"), text).unwrap();
}
