//! `cargo xtask package`: the npm package of wasm-client in `target/npm/securechat-client`.
//!
//! 1. `cargo build -p wasm-client --target wasm32-unknown-unknown --profile wasm-release`
//! 2. `wasm-bindgen --target web` (the ES module glue and the TypeScript declarations)
//! 3. `wasm-opt -Oz` from npm `binaryen`, pinned in `wasm-client/tools/package-lock.json` and
//!    installed there with `npm ci` (Debian's binaryen 108 breaks wasm-bindgen 0.2.130 output)
//! 4. the package's own files from `wasm-client/js/` (entries for browsers and Node, the
//!    stores, package.json, README)
//! 5. the wasm size, raw and gzip, against the gate in [`SIZE_GATE_GZIP`].

use crate::test::WASM_TARGET;
use crate::util::{Ctx, exec, exec_capture};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The build fails when the gzipped wasm grows past this (a little over the measured size;
/// the goal of issue #11 is 200 KB; measured 2026-12-08 with rooms, attachments and the whole
/// account API: 287.6 KB, then 300.6 KB with uploads from slices with progress, room admin
/// calls and device re-authentication; docs/benchmarks.md, "wasm-client package size").
pub(crate) const SIZE_GATE_GZIP: u64 = 305 * 1024;

/// Where the package is assembled.
pub(crate) fn package_dir(ctx: &Ctx) -> PathBuf {
    ctx.target_dir().join("npm").join("securechat-client")
}

pub(crate) fn run(ctx: &Ctx) -> Result<()> {
    exec(&mut ctx.cargo_with(&[
        "build",
        "-p",
        "wasm-client",
        "--target",
        WASM_TARGET,
        "--profile",
        "wasm-release",
    ]))?;
    let wasm = ctx
        .target_dir()
        .join(WASM_TARGET)
        .join("wasm-release")
        .join("wasm_client.wasm");
    let out = package_dir(ctx);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    exec(
        Command::new("wasm-bindgen")
            .arg(&wasm)
            .args(["--target", "web", "--out-name", "wasm_client", "--out-dir"])
            .arg(out.join("web")),
    )?;
    let js = ctx.root.join("wasm-client").join("js");
    for name in [
        "package.json",
        "README.md",
        "index.web.js",
        "index.node.js",
        "index.d.ts",
        "stores.js",
        "stores.d.ts",
    ] {
        copy(&js.join(name), &out.join(name))?;
    }
    copy(&ctx.root.join("LICENSE"), &out.join("LICENSE"))?;
    let bg = out.join("web").join("wasm_client_bg.wasm");
    let before = std::fs::metadata(&bg)?.len();
    wasm_opt(ctx, &bg)?;
    println!(
        "wasm-opt: {before} -> {} bytes raw",
        std::fs::metadata(&bg)?.len()
    );
    let raw = std::fs::metadata(&bg)?.len();
    let gzip = gzip_size(&bg)?;
    println!(
        "wasm size: {} bytes raw, {} bytes gzip ({:.1} KB; gate {} KB, goal 200 KB)",
        raw,
        gzip,
        kib(gzip),
        SIZE_GATE_GZIP / 1024
    );
    if gzip > SIZE_GATE_GZIP {
        bail!(
            "the wasm grew to {:.1} KB gzip, over the gate of {} KB (xtask/src/package.rs)",
            kib(gzip),
            SIZE_GATE_GZIP / 1024
        );
    }
    println!("package: {}", out.display());
    Ok(())
}

/// The WebAssembly features rustc 1.95 enables for wasm32-unknown-unknown, plus SIMD
/// (`.cargo/config.toml`): the module's `target_features` section lists them, and wasm-opt
/// must accept every instruction of the input.
const WASM_FEATURES: &[&str] = &[
    "--enable-simd",
    "--enable-bulk-memory",
    "--enable-bulk-memory-opt",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
    "--enable-call-indirect-overlong",
];

/// `wasm-client/tools/node_modules/.bin/wasm-opt`, installed with `npm ci` when missing or not
/// the version `tools/package.json` pins.
pub(crate) fn wasm_opt_bin(ctx: &Ctx) -> Result<PathBuf> {
    let tools = ctx.root.join("wasm-client").join("tools");
    let bin = tools.join("node_modules").join(".bin").join("wasm-opt");
    let wanted = npm_version(&tools.join("package.json"), "binaryen")?;
    let installed = npm_version(
        &tools
            .join("node_modules")
            .join("binaryen")
            .join("package.json"),
        "version",
    )
    .ok();
    if !bin.exists() || installed.as_deref() != Some(wanted.as_str()) {
        println!(
            "wasm-opt: installing binaryen {wanted} with npm ci (found {})",
            installed.as_deref().unwrap_or("none")
        );
        exec(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&tools),
        )?;
    }
    Ok(bin)
}

/// `"key": "value"` of a package.json (the first one; these files are ours and flat).
fn npm_version(package_json: &Path, key: &str) -> Result<String> {
    let text = std::fs::read_to_string(package_json)
        .with_context(|| format!("cannot read {}", package_json.display()))?;
    let needle = format!("\"{key}\"");
    text.split_once(&needle)
        .and_then(|(_, rest)| rest.trim_start().strip_prefix(':'))
        .and_then(|rest| rest.trim_start().strip_prefix('"'))
        .and_then(|rest| rest.split_once('"'))
        .map(|(v, _)| v.to_owned())
        .with_context(|| format!("no \"{key}\" in {}", package_json.display()))
}

/// `wasm-opt -Oz` in place; drops the name and producers sections (wasm-bindgen is done).
fn wasm_opt(ctx: &Ctx, wasm: &Path) -> Result<()> {
    exec(
        Command::new(wasm_opt_bin(ctx)?)
            .arg(wasm)
            .arg("-o")
            .arg(wasm)
            .args(["-Oz", "--strip-debug", "--strip-producers"])
            .args(WASM_FEATURES),
    )
}

#[allow(clippy::cast_precision_loss)]
fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

/// `gzip -9` size (Debian always has gzip).
fn gzip_size(path: &Path) -> Result<u64> {
    let out = exec_capture(
        Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -9 -c '{}' | wc -c", path.display())),
    )?;
    out.trim()
        .parse()
        .with_context(|| format!("gzip size of {}: {out:?}", path.display()))
}

/// A relay process for the package and browser tests: the debug binary on a port the OS
/// picks, SQLite in a temporary folder, rate limits off, `env` added. Killed on drop.
pub(crate) struct TestRelay {
    child: std::process::Child,
    pub(crate) url: String,
    dir: PathBuf,
}

impl TestRelay {
    pub(crate) fn start(ctx: &Ctx, env: &[(&str, &str)]) -> Result<Self> {
        use std::io::{BufRead, BufReader};
        let bin = ctx.target_dir().join("debug").join("securechat-relay");
        if !bin.exists() {
            exec(&mut ctx.cargo_with(&[
                "build",
                "-p",
                "relay-server",
                "--bin",
                "securechat-relay",
            ]))?;
        }
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sc_npm_{}_{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("outbox"))?;
        let mut child = Command::new(&bin)
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.join("relay.db").display()))
            .arg("--mail-url")
            .arg(format!("file://{}", dir.join("outbox").display()))
            .arg("--blob-dir")
            .arg(dir.join("blobs"))
            .arg("--secret-key-file")
            .arg(dir.join("secret.key"))
            .env("SECURECHAT_LISTEN", "127.0.0.1:0")
            .env("SECURECHAT_DISABLE_RATE_LIMITS", "true")
            .env("SECURECHAT_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("SecureChat relay listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        match rx.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(url) => Ok(Self { child, url, dir }),
            Err(_) => {
                let _ = child.kill();
                bail!("the relay did not start within 120 s")
            }
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The package in Node against a real relay: imported from the build folder, then packed with
/// `npm pack`, installed into an empty project and imported by name (proves the published
/// package, its `exports` map and its files work).
pub(crate) fn node_tests(ctx: &Ctx) -> Result<()> {
    run(ctx)?;
    let tests = ctx.root.join("wasm-client").join("tests").join("node");
    exec(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&tests),
    )?;
    let relay = TestRelay::start(ctx, &[])?;
    let pkg = package_dir(ctx);
    let entry = format!("file://{}", pkg.join("index.node.js").display());
    exec(
        Command::new("node")
            .arg("roundtrip.mjs")
            .arg(&entry)
            .env("RELAY_URL", &relay.url)
            .current_dir(&tests),
    )?;

    let project = ctx.target_dir().join("npm").join("consumer");
    if project.exists() {
        std::fs::remove_dir_all(&project)?;
    }
    std::fs::create_dir_all(&project)?;
    let packed = exec_capture(
        Command::new("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&project)
            .current_dir(&pkg),
    )?;
    let tarball = project.join(packed.trim());
    std::fs::write(
        project.join("package.json"),
        "{\"name\":\"consumer\",\"private\":true,\"type\":\"module\"}\n",
    )?;
    let modules = tests.join("node_modules");
    exec(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--offline",
                "--ignore-scripts",
            ])
            .arg(&tarball)
            .arg(modules.join("ws"))
            .arg(modules.join("fake-indexeddb"))
            .current_dir(&project),
    )?;
    copy(&tests.join("roundtrip.mjs"), &project.join("roundtrip.mjs"))?;
    exec(
        Command::new("node")
            .args(["roundtrip.mjs", "securechat-client"])
            .env("RELAY_URL", &relay.url)
            .current_dir(&project),
    )
}
