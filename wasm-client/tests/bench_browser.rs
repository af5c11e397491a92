//! The browser half of `cargo xtask bench client` (headless Chromium, run by the xtask with
//! `-- --nocapture`): the workloads of `wasm_client::bench_support`, timed with
//! `performance.now()`, printed as `BENCH name milliseconds` lines that the xtask puts next to
//! the native figures. With a relay (`SECURECHAT_TEST_RELAY_URL`), also the cold start: open
//! the IndexedDB database, unlock the sealed store (Argon2id, recommended parameters), build
//! the client and connect the WebSocket. Without the xtask's variables nothing runs.

#![cfg(all(target_family = "wasm", target_os = "unknown"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use js_sys::Promise;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_client::bench_support::{encrypt_decrypt, read_last, session_pair, write_history};
use wasm_client::bindings::{JsRawStore, JsStore};
use wasm_client::store::sealed::{KdfParams, SealedStore};
use wasm_client::transport::web::WebTransport;
use wasm_client::{Client, LoginOutcome};

wasm_bindgen_test_configure!(run_in_browser);

const BENCH: Option<&str> = option_env!("SECURECHAT_BENCH");
const RELAY_URL: Option<&str> = option_env!("SECURECHAT_TEST_RELAY_URL");

#[wasm_bindgen(module = "/js/stores.js")]
extern "C" {
    type IndexedDbStore;
    #[wasm_bindgen(static_method_of = IndexedDbStore, js_name = open)]
    fn open_db(name: &str) -> Promise;
}

#[wasm_bindgen(inline_js = r#"
export function now() { return performance.now(); }
export function uniqueName(prefix) {
  return `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
}
"#)]
extern "C" {
    fn now() -> f64;
    #[wasm_bindgen(js_name = uniqueName)]
    fn unique_name(prefix: &str) -> String;
}

async fn idb(name: &str) -> JsStore {
    let store: JsValue = JsFuture::from(IndexedDbStore::open_db(name)).await.unwrap();
    JsStore::new(store.unchecked_into::<JsRawStore>())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[wasm_bindgen_test]
async fn bench_message_and_storage() {
    if BENCH.is_none() {
        return;
    }
    let (mut a, mut b) = session_pair().unwrap();
    let plaintext = vec![0x42u8; 1024];
    encrypt_decrypt(&mut a, &mut b, &plaintext, 200).unwrap();
    let mut runs = Vec::new();
    for _ in 0..7 {
        let t = now();
        encrypt_decrypt(&mut a, &mut b, &plaintext, 1000).unwrap();
        runs.push((now() - t) / 1000.0);
    }
    console_log!("BENCH message_1k_ms {:.5}", median(runs));

    let store = SealedStore::create(
        idb(&unique_name("sc-bench")).await,
        "bench",
        KdfParams::INSECURE_FOR_TESTS,
    )
    .await
    .unwrap();
    let t = now();
    write_history(&store, 10_000, 100).await.unwrap();
    console_log!("BENCH write_10000_ms {:.3}", now() - t);
    let mut reads = Vec::new();
    for _ in 0..7 {
        let t = now();
        assert_eq!(read_last(&store, 50).await.unwrap(), 50);
        reads.push(now() - t);
    }
    console_log!("BENCH read_last_50_ms {:.3}", median(reads));

    let name = unique_name("sc-unlock");
    SealedStore::create(idb(&name).await, "bench", KdfParams::RECOMMENDED)
        .await
        .unwrap();
    let t = now();
    SealedStore::open(idb(&name).await, "bench").await.unwrap();
    console_log!("BENCH unlock_ms {:.3}", now() - t);
}

#[wasm_bindgen_test]
async fn bench_cold_start() {
    let (Some(_), Some(relay)) = (BENCH, RELAY_URL) else {
        return;
    };
    // A signed-in device in an IndexedDB database, as a returning user has.
    let name = unique_name("sc-cold");
    let tag = unique_name("c")
        .replace('-', "")
        .chars()
        .rev()
        .take(10)
        .collect::<String>();
    let email = format!("cold{tag}@example.org");
    let password = "correct horse battery staple 42";
    {
        let store = SealedStore::create(idb(&name).await, password, KdfParams::RECOMMENDED)
            .await
            .unwrap();
        let mut client = Client::new(WebTransport::new(relay), store).await.unwrap();
        client
            .register(&email, password, &format!("cold{tag}"), "Cold")
            .await
            .unwrap();
        assert_eq!(
            client.login(&email, password).await.unwrap(),
            LoginOutcome::SignedIn
        );
        client.ensure_device("bench").await.unwrap();
    }
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = now();
        let store = SealedStore::open(idb(&name).await, password).await.unwrap();
        let mut client = Client::new(WebTransport::new(relay), store).await.unwrap();
        let socket = client.connect().await.unwrap();
        runs.push(now() - t);
        client.disconnect();
        drop(socket);
    }
    console_log!("BENCH cold_start_ms {:.3}", median(runs));
}
