//! `cargo xtask bench [crypto|relay|all] [-- ARGS]`.
//!
//! `crypto` (steps 1-3), `relay` (step 4, with ARGS for the load generator), `all` (the
//! default: everything, ARGS go to criterion only).
//!
//! 1. Every criterion bench of crypto-core: one `cargo bench -p crypto-core --bench NAME --
//!    ARGS` per `crypto-core/benches/NAME.rs` (or `crypto-core/benches/NAME/main.rs`), so a
//!    bench's own comparisons (for example against raw ChaCha20-Poly1305) run side by side.
//! 2. The wasm-vs-native comparison, [`bench_wasm`] (`crypto-core/benches/wasm/`).
//! 3. Prints the ratio tables the benches wrote during this run (`target/bench-*.txt`).
//! 4. The relay load generator, [`bench_relay`] (`relay-server/benches/relay_load.rs`):
//!    throughput, latency at a fixed rate, loss and idle-connection memory of the real relay
//!    binary on SQLite and PostgreSQL, beside a bare actix-ws echo server
//!    (`target/bench-relay.txt`).

use crate::steps::{Tool, Toolbox};
use crate::test::WASM_TARGET;
use crate::tools;
use crate::util::{Ctx, exec, exec_capture, exec_capture_timeout, format_duration, header};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// Benches in this folder are compiled for wasm32, not run by criterion.
const WASM_BENCH_DIR: &str = "wasm";

pub(crate) fn run(ctx: &Ctx, args: &[String]) -> Result<()> {
    let (scope, rest) = match args.split_first() {
        Some((s, rest)) if s == "crypto" || s == "relay" || s == "client" || s == "all" => {
            (s.as_str(), rest)
        }
        _ => ("all", args),
    };
    let extra: &[String] = match rest.split_first() {
        Some((dash, extra)) if dash == "--" => extra,
        _ => rest,
    };
    let started = SystemTime::now();
    let mut times = Vec::new();
    warn_about_rustflags();

    if scope == "crypto" || scope == "all" {
        let benches = criterion_benches(&ctx.root.join("crypto-core/benches"))?;
        if benches.is_empty() {
            bail!(
                "crypto-core has no benches yet (no crypto-core/benches/*.rs): nothing to measure"
            );
        }
        for name in &benches {
            header(&format!("crypto-core bench `{name}`"));
            let t = Instant::now();
            let mut cmd = ctx.cargo_with(&[
                "bench",
                "-p",
                "crypto-core",
                "--all-features",
                "--bench",
                name,
            ]);
            cmd.arg("--").args(extra);
            exec(&mut cmd)?;
            times.push((format!("crypto-core/{name}"), t.elapsed()));
        }

        header("wasm vs native");
        let t = Instant::now();
        bench_wasm(ctx)?;
        times.push(("wasm vs native".to_owned(), t.elapsed()));
    }

    if scope == "client" || scope == "all" {
        header("wasm-client: native and headless Chromium");
        let t = Instant::now();
        bench_client(ctx)?;
        times.push(("wasm-client".to_owned(), t.elapsed()));
    }

    if scope == "relay" || scope == "all" {
        header("relay load generator");
        let t = Instant::now();
        let relay_args: &[String] = if scope == "relay" { extra } else { &[] };
        bench_relay(ctx, relay_args)?;
        times.push(("relay load".to_owned(), t.elapsed()));
    }

    print_reports(ctx, started)?;

    header(&format!("cargo xtask bench {scope}: summary"));
    for (name, d) in &times {
        println!("  {:>9}  {name}", format_duration(*d));
    }
    Ok(())
}

/// The relay load generator (`relay-server/benches/relay_load.rs`, `harness = false`):
///
/// 1. `cargo build --release -p relay-server --bin securechat-relay`: the binary users run.
/// 2. `cargo bench --profile release -p relay-server --bench relay_load -- --relay-bin PATH
///    --out target/bench-relay.txt ARGS`, started through `sh -c 'ulimit -n <hard limit>'`
///    because the idle test holds 10,000 WebSockets (a descriptor each on both ends; the
///    default soft limit is often 1024). The generator starts the relay the same way.
///
/// ARGS: `--seconds S` (throughput phase, default 10), `--rate R` and `--rate-seconds S`
/// (fixed-rate phase, default 10,000/s for 10 s), `--pairs N` (default 8), `--window N`
/// (sends in flight per sender, default 64), `--idle N` (default 10,000), `--no-postgres`.
/// PostgreSQL is used when `postgres://postgres@127.0.0.1:5432` answers (a fresh
/// `sc_bench_*` database, dropped afterwards), and skipped otherwise.
fn bench_relay(ctx: &Ctx, extra: &[String]) -> Result<()> {
    exec(&mut ctx.cargo_with(&[
        "build",
        "--release",
        "-p",
        "relay-server",
        "--bin",
        "securechat-relay",
    ]))?;
    let relay_bin = ctx.target_dir().join("release/securechat-relay");
    let out = ctx.target_dir().join("bench-relay.txt");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@""#)
        .arg(&ctx.cargo)
        .args([
            "bench",
            "--profile",
            "release",
            "-p",
            "relay-server",
            "--bench",
            "relay_load",
        ]);
    if ctx.ci {
        cmd.arg("--locked");
    }
    cmd.arg("--")
        .arg("--relay-bin")
        .arg(&relay_bin)
        .arg("--out")
        .arg(&out)
        .args(extra);
    exec(&mut cmd)
}

/// `RUSTFLAGS` replaces the rustflags of `.cargo/config.toml`, which select the portable
/// Poly1305 backend (see docs/benchmarks.md): say so when it drops that setting.
fn warn_about_rustflags() {
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
        if let Some(value) = std::env::var_os(var)
            && !value.to_string_lossy().contains("poly1305_backend")
        {
            println!(
                "warning: {var} is set and replaces the rustflags of .cargo/config.toml, so this \
                 build uses poly1305's AVX2 autodetection, not the portable backend the project \
                 selects; add --cfg poly1305_backend=\"soft\" to {var} to measure what ships"
            );
        }
    }
}

/// Criterion bench names of a `benches/` folder: `NAME.rs` files and `NAME/main.rs` folders,
/// sorted, without the wasm folder.
fn criterion_benches(dir: &Path) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let is_bench_file = path.is_file() && path.extension().is_some_and(|e| e == "rs");
        let is_bench_dir =
            path.is_dir() && stem != WASM_BENCH_DIR && path.join("main.rs").is_file();
        if is_bench_file || is_bench_dir {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The wasm-vs-native comparison (`crypto-core/benches/wasm/`): one 1 KiB ratchet message
/// encrypted and decrypted, timed natively and in wasm32 under Node in this same run, and the
/// ratio written to `target/bench-wasm.txt` (which [`print_reports`] shows).
///
/// 1. `cargo bench -p crypto-core --bench wasm`: the native half (`main` times the loop).
/// 2. `cargo bench --target wasm32-unknown-unknown --bench wasm --no-run`: the same file for
///    wasm32, same `bench` profile; the `.wasm` path comes from cargo's JSON messages.
/// 3. `wasm-bindgen --target nodejs` into `target/wasm-bench/`, then `node run.cjs` times the
///    exported loop with `performance.now()`. Both halves run a fixed number of iterations,
///    and Node is killed after [`WASM_BENCH_TIMEOUT`] in any case.
///
/// Without the wasm32 target, wasm-bindgen or Node this is SKIPPED (an error in CI).
fn bench_wasm(ctx: &Ctx) -> Result<()> {
    let dir = ctx.root.join("crypto-core/benches").join(WASM_BENCH_DIR);
    if !dir.join("main.rs").is_file() {
        println!(
            "no wasm bench (crypto-core/benches/{WASM_BENCH_DIR}/main.rs): nothing to compare"
        );
        return Ok(());
    }
    let mut toolbox = Toolbox::default();
    tools::ensure_wasm_target(ctx, &mut toolbox)?;
    tools::ensure_wasm_bindgen(ctx, &mut toolbox)?;
    tools::check_node(ctx, &mut toolbox)?;
    if let Some(reason) =
        toolbox.why_missing(&[Tool::Wasm32Target, Tool::WasmBindgenTestRunner, Tool::Node])
    {
        println!(
            "SKIPPED: wasm vs native needs the wasm32 target, wasm-bindgen and Node: {reason}"
        );
        return Ok(());
    }

    let native = exec_capture(&mut ctx.cargo_with(&[
        "bench",
        "-p",
        "crypto-core",
        "--bench",
        WASM_BENCH_DIR,
    ]))?;
    let native = parse_ns_per_op(&native).context("the native half printed no ns_per_op line")?;

    let json = exec_capture(&mut ctx.cargo_with(&[
        "bench",
        "-p",
        "crypto-core",
        "--bench",
        WASM_BENCH_DIR,
        "--target",
        WASM_TARGET,
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]))?;
    let wasm_file = wasm_artifact(&json)
        .context("cargo reported no .wasm file for the wasm bench (see its output above)")?;
    let out_dir = ctx.target_dir().join("wasm-bench");
    exec(
        Command::new("wasm-bindgen")
            .args([
                "--target",
                "nodejs",
                "--out-name",
                "ratchet_bench",
                "--out-dir",
            ])
            .arg(&out_dir)
            .arg(&wasm_file),
    )?;
    let mut node = Command::new("node");
    node.arg(dir.join("run.cjs"))
        .arg(out_dir.join("ratchet_bench.js"));
    let wasm = exec_capture_timeout(&mut node, WASM_BENCH_TIMEOUT)?;
    let wasm = parse_ns_per_op(&wasm).context("the wasm half printed no ns_per_op line")?;

    let report = wasm_report(native, wasm);
    print!("{report}");
    let path = ctx.target_dir().join("bench-wasm.txt");
    std::fs::write(&path, report).with_context(|| format!("cannot write {}", path.display()))
}

/// Node gets this long for the wasm half (it needs about a second).
const WASM_BENCH_TIMEOUT: Duration = Duration::from_secs(180);
/// The goal: wasm time ÷ native time for a ratchet message.
const WASM_GOAL: f64 = 3.0;

/// `(min, median)` in ns from a line `… ns_per_op min=X median=Y`.
fn parse_ns_per_op(output: &str) -> Option<(f64, f64)> {
    let line = output.lines().find(|l| l.contains("ns_per_op"))?;
    let field = |name: &str| -> Option<f64> {
        let rest = line.split_once(name)?.1;
        rest.split_whitespace().next()?.parse().ok()
    };
    Some((field("min=")?, field("median=")?))
}

/// The `.wasm` of the `wasm` bench target in cargo's JSON messages.
fn wasm_artifact(json: &str) -> Option<PathBuf> {
    json.lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .filter(|l| l.contains(&format!("\"name\":\"{WASM_BENCH_DIR}\"")))
        .find_map(|l| {
            let path = l.split_once("\"executable\":\"")?.1.split('"').next()?;
            path.ends_with(".wasm").then(|| PathBuf::from(path))
        })
}

fn wasm_report(native: (f64, f64), wasm: (f64, f64)) -> String {
    let ratio = wasm.1 / native.1;
    let verdict = if ratio <= WASM_GOAL { "met" } else { "MISSED" };
    format!(
        "wasm32 (Node) vs native, 1 KiB Session::encrypt + Session::decrypt, steady state \
         (crypto-core/benches/wasm)\n\
         {:<26} {:>12} {:>12}\n\
         {:<26} {:>9.2} µs {:>9.2} µs\n\
         {:<26} {:>9.2} µs {:>9.2} µs\n\
         wasm / native (medians): {ratio:.2}x   goal <= {WASM_GOAL}: {verdict}   \
         (minimums: {:.2}x)\n",
        "per round trip",
        "median",
        "min",
        "native",
        native.1 / 1e3,
        native.0 / 1e3,
        "wasm32 under Node",
        wasm.1 / 1e3,
        wasm.0 / 1e3,
        wasm.0 / native.0,
    )
}

/// Prints `target/bench-*.txt` files (ratio tables) written since `since`.
/// `cargo xtask bench client`: the workloads of `wasm_client::bench_support`, natively
/// (`cargo bench -p wasm-client --bench client`) and in headless Chromium (the release build of
/// `wasm-client/tests/bench_browser.rs`, against a relay for the cold start), side by side in
/// `target/bench-client.txt` with the goals of issue #11.
fn bench_client(ctx: &Ctx) -> Result<()> {
    exec(&mut ctx.cargo_with(&["bench", "-p", "wasm-client", "--bench", "client"]))?;
    let native = std::fs::read_to_string(ctx.target_dir().join("bench-client-native.txt"))
        .context("the native bench wrote no report")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let page = format!("127.0.0.1:{port}");
    let origin = format!("http://{page}");
    let relay = crate::package::TestRelay::start(ctx, &[("SECURECHAT_ALLOWED_ORIGINS", &origin)])?;
    let mut cmd = ctx.cargo_with(&[
        "test",
        "--release",
        "-p",
        "wasm-client",
        "--target",
        WASM_TARGET,
        "--test",
        "bench_browser",
    ]);
    cmd.args(["--", "--nocapture"])
        .env("WASM_BINDGEN_USE_BROWSER", "1")
        .env("WASM_BINDGEN_TEST_ADDRESS", &page)
        .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
        .env("SECURECHAT_BENCH", "1")
        .env("SECURECHAT_TEST_RELAY_URL", &relay.url);
    if std::env::var_os("CHROMEDRIVER").is_none()
        && let Some(driver) = tools::chromedriver()
    {
        cmd.env("CHROMEDRIVER", driver);
    }
    let browser = exec_capture(&mut cmd)?;
    drop(relay);
    let value = |text: &str, prefix: &str, name: &str| -> Option<f64> {
        text.lines().find_map(|l| {
            let l = l.trim().strip_prefix(prefix)?;
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
    };
    let rows = [
        (
            "1 KiB message, encrypt + decrypt",
            "message_1k_ms",
            "browser ÷ native ≤ 3",
        ),
        (
            "10,000 messages written (sealed, batches of 100)",
            "write_10000_ms",
            "≤ 2,000 ms in Chromium",
        ),
        (
            "last 50 messages read",
            "read_last_50_ms",
            "≤ 50 ms in Chromium",
        ),
        (
            "unlock the store (Argon2id 19 MiB, 2 passes)",
            "unlock_ms",
            "(cost of the password)",
        ),
        (
            "cold start: open + unlock + connect",
            "cold_start_ms",
            "≤ 300 ms in Chromium",
        ),
    ];
    let mut out = String::from(
        "wasm-client, native (IndexedDB's baseline: the sealed store in memory) and headless \
         Chromium (IndexedDB), same run\n\n| workload | native ms | Chromium ms | ratio | goal |\n\
         | --- | ---: | ---: | ---: | --- |\n",
    );
    for (label, key, goal) in rows {
        let n = value(&native, "", key);
        let b = value(&browser, "BENCH ", key);
        let show = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.3}"));
        let ratio = match (n, b) {
            (Some(n), Some(b)) if n > 0.0 => format!("{:.2}", b / n),
            _ => "—".to_owned(),
        };
        out.push_str(&format!(
            "| {label} | {} | {} | {ratio} | {goal} |\n",
            show(n),
            show(b)
        ));
    }
    out.push_str(
        "\nThe cold start leaves out instantiating the wasm module (the test page has done it \
         before the test runs).\n",
    );
    std::fs::write(ctx.target_dir().join("bench-client.txt"), &out)?;
    Ok(())
}

fn print_reports(ctx: &Ctx, since: SystemTime) -> Result<()> {
    let dir = ctx.target_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut reports: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("bench-") && n.ends_with(".txt"))
        })
        .filter(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= since)
        })
        .collect();
    reports.sort();
    for path in reports {
        header(&path.display().to_string());
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        print!("{text}");
    }
    Ok(())
}
