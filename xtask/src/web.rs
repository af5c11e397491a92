//! The web app in `web/` (issue #13): `cargo xtask run` builds it when missing or stale and
//! serves it; `cargo xtask test` runs its unit tests, builds it (size budget) and runs the
//! end-to-end test in headless Chromium against a real relay.
//!
//! `web/package.json` depends on the npm package by path, `file:../target/npm/securechat-client`,
//! as a third-party app would on the published one. When the cargo target folder is elsewhere
//! (`CARGO_TARGET_DIR`), that path is made a symbolic link to the package there.

use crate::package::{self, package_dir};
use crate::util::{Ctx, exec};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn web_dir(ctx: &Ctx) -> PathBuf {
    ctx.root.join("web")
}

/// `web/dist`, what the relay serves with `--web-dir`.
pub(crate) fn dist_dir(ctx: &Ctx) -> PathBuf {
    web_dir(ctx).join("dist")
}

/// The newest modification time of `paths` (files, or folders walked recursively, skipping
/// `node_modules`); `None` when none exists.
fn newest(paths: &[PathBuf]) -> Option<SystemTime> {
    fn walk(path: &Path, best: &mut Option<SystemTime>) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            if path.file_name().is_some_and(|n| n == "node_modules") {
                return;
            }
            if let Ok(entries) = std::fs::read_dir(path) {
                for entry in entries.flatten() {
                    walk(&entry.path(), best);
                }
            }
        } else if let Ok(modified) = meta.modified()
            && best.is_none_or(|b| modified > b)
        {
            *best = Some(modified);
        }
    }
    let mut best = None;
    for path in paths {
        walk(path, &mut best);
    }
    best
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether `output` is missing or older than any of `inputs`.
fn stale(output: &Path, inputs: &[PathBuf]) -> bool {
    match (modified(output), newest(inputs)) {
        (Some(out), Some(input)) => input > out,
        _ => true,
    }
}

/// The package's wasm, the last file `cargo xtask package` writes.
fn package_wasm(ctx: &Ctx) -> PathBuf {
    package_dir(ctx).join("web").join("wasm_client_bg.wasm")
}

fn package_inputs(ctx: &Ctx) -> Vec<PathBuf> {
    let root = &ctx.root;
    vec![
        root.join("Cargo.lock"),
        root.join("crypto-core").join("src"),
        root.join("crypto-core").join("Cargo.toml"),
        root.join("wasm-client").join("src"),
        root.join("wasm-client").join("js"),
        root.join("wasm-client").join("Cargo.toml"),
    ]
}

fn app_inputs(ctx: &Ctx) -> Vec<PathBuf> {
    let web = web_dir(ctx);
    vec![
        web.join("src"),
        web.join("public"),
        web.join("index.html"),
        web.join("package-lock.json"),
        web.join("vite.config.ts"),
        web.join("tsconfig.json"),
        package_wasm(ctx),
    ]
}

/// Points `<root>/target/npm/securechat-client` at the package when cargo builds elsewhere.
fn link_package(ctx: &Ctx) -> Result<()> {
    let wanted = ctx
        .root
        .join("target")
        .join("npm")
        .join("securechat-client");
    let actual = package_dir(ctx);
    let same = match (wanted.canonicalize(), actual.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Ok(());
    }
    if let Ok(meta) = std::fs::symlink_metadata(&wanted) {
        if meta.is_dir() {
            std::fs::remove_dir_all(&wanted)
        } else {
            std::fs::remove_file(&wanted)
        }
        .with_context(|| format!("cannot replace {}", wanted.display()))?;
    }
    if let Some(parent) = wanted.parent() {
        std::fs::create_dir_all(parent)?;
    }
    symlink(&actual, &wanted)
        .with_context(|| format!("cannot link {} to {}", wanted.display(), actual.display()))?;
    println!("web: {} -> {}", wanted.display(), actual.display());
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "set CARGO_TARGET_DIR to <repo>/target or unset it: linking the package needs Unix",
    ))
}

/// `npm ci` in `web/` when `node_modules` is missing or older than `package-lock.json`
/// (npm writes `node_modules/.package-lock.json` at every install).
fn npm_ci_if_needed(ctx: &Ctx) -> Result<()> {
    let web = web_dir(ctx);
    let installed = web.join("node_modules").join(".package-lock.json");
    if stale(
        &installed,
        &[web.join("package-lock.json"), web.join("package.json")],
    ) {
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&web);
        exec(&mut cmd)?;
    }
    Ok(())
}

fn npm(ctx: &Ctx, args: &[&str]) -> Result<()> {
    exec(Command::new("npm").args(args).current_dir(web_dir(ctx)))
}

/// Builds the npm package (when its Rust or JavaScript sources changed) and `web/dist` (when
/// it is missing, older than its sources, or `always`).
pub(crate) fn build(ctx: &Ctx, always: bool) -> Result<()> {
    if stale(&package_wasm(ctx), &package_inputs(ctx)) {
        package::run(ctx)?;
    }
    link_package(ctx)?;
    npm_ci_if_needed(ctx)?;
    let index = dist_dir(ctx).join("index.html");
    if always || stale(&index, &app_inputs(ctx)) {
        npm(ctx, &["run", "build"])?;
    } else {
        println!("web: {} is up to date", dist_dir(ctx).display());
    }
    if !index.is_file() {
        bail!("the web build made no {}", index.display());
    }
    Ok(())
}

/// `cargo xtask test`'s web step: Vitest, the build with its size budget, then the end-to-end
/// test (two browser contexts against a real relay; screenshots in web/test-results).
pub(crate) fn test(ctx: &Ctx) -> Result<()> {
    build(ctx, true)?;
    npm(ctx, &["test"])?;
    let relay = ctx.target_dir().join("debug").join("securechat-relay");
    if !relay.exists() {
        exec(&mut ctx.cargo_with(&["build", "-p", "relay-server", "--bin", "securechat-relay"]))?;
    }
    exec(
        Command::new("node")
            .arg("e2e/run.mjs")
            .env("RELAY_BIN", &relay)
            .env("CHROMIUM", crate::tools::CHROMIUM)
            .current_dir(web_dir(ctx)),
    )
}
