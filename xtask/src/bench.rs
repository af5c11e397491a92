//! `cargo xtask bench [crypto|all] [-- ARGS]`.
//!
//! 1. Every criterion bench of crypto-core: one `cargo bench -p crypto-core --bench NAME --
//!    ARGS` per `crypto-core/benches/NAME.rs` (or `crypto-core/benches/NAME/main.rs`), so a
//!    bench's own comparisons (for example against raw ChaCha20-Poly1305) run side by side.
//! 2. The wasm-vs-native comparison, [`bench_wasm`] (not wired yet).
//! 3. Prints the ratio tables the benches wrote during this run (`target/bench-*.txt`).
//!
//! `all` (the default) will also cover the relay load generator once the relay exists.

use crate::util::{Ctx, exec, format_duration, header};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Benches in this folder are compiled for wasm32, not run by criterion.
const WASM_BENCH_DIR: &str = "wasm";

pub(crate) fn run(ctx: &Ctx, args: &[String]) -> Result<()> {
    let (scope, rest) = match args.split_first() {
        Some((s, rest)) if s == "crypto" || s == "all" => (s.as_str(), rest),
        _ => ("all", args),
    };
    let extra: &[String] = match rest.split_first() {
        Some((dash, extra)) if dash == "--" => extra,
        _ => rest,
    };
    let started = SystemTime::now();
    let mut times = Vec::new();

    let benches = criterion_benches(&ctx.root.join("crypto-core/benches"))?;
    if benches.is_empty() {
        bail!("crypto-core has no benches yet (no crypto-core/benches/*.rs): nothing to measure");
    }
    for name in &benches {
        header(&format!("crypto-core bench `{name}`"));
        let t = Instant::now();
        let mut cmd = ctx.cargo_with(&["bench", "-p", "crypto-core", "--bench", name]);
        cmd.arg("--").args(extra);
        exec(&mut cmd)?;
        times.push((format!("crypto-core/{name}"), t.elapsed()));
    }

    header("wasm vs native");
    let t = Instant::now();
    bench_wasm(ctx)?;
    times.push(("wasm vs native".to_owned(), t.elapsed()));

    if scope == "all" {
        // The relay load generator joins here with issue #3.
    }

    print_reports(ctx, started)?;

    header(&format!("cargo xtask bench {scope}: summary"));
    for (name, d) in &times {
        println!("  {:>9}  {name}", format_duration(*d));
    }
    Ok(())
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

/// The wasm-vs-native comparison: the same operations timed in wasm32 (under Node) and
/// natively, reported as ratios.
///
/// TODO: plug the wasm benches of `crypto-core/benches/wasm/` in here (build them for
/// wasm32-unknown-unknown, run them under Node, write the ratios to
/// `target/bench-ratios.txt`, which [`print_reports`] shows).
fn bench_wasm(ctx: &Ctx) -> Result<()> {
    let dir = ctx.root.join("crypto-core/benches").join(WASM_BENCH_DIR);
    if dir.is_dir() {
        println!(
            "SKIPPED: {} exists but is not wired into `cargo xtask bench` yet \
             (fill in `bench_wasm()` in xtask/src/bench.rs)",
            dir.display()
        );
    } else {
        println!("no wasm benches yet (crypto-core/benches/{WASM_BENCH_DIR}/): nothing to compare");
    }
    Ok(())
}

/// Prints `target/bench-*.txt` files (ratio tables) written since `since`.
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
