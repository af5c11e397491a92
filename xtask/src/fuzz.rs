//! `cargo xtask fuzz [TARGET] [--seconds N]`: every cargo-fuzz target of `crypto-core/fuzz`
//! (or only TARGET) for N seconds each (default 30), one after the other; stops at the first
//! crash. Needs a nightly toolchain (installed with rustup if missing) and cargo-fuzz
//! (installed with `cargo install` if missing).
//!
//! The seed corpora are also replayed by crypto-core's ordinary unit tests on stable, so
//! `cargo xtask test` covers them without this command.

use crate::util::{Ctx, exec, format_duration, header, probe};
use anyhow::{Context as _, Result, bail};
use std::process::Command;
use std::time::Instant;

const DEFAULT_SECONDS: u64 = 30;

pub(crate) fn run(ctx: &Ctx, args: &[String]) -> Result<()> {
    let (only, seconds) = parse_args(args)?;
    let crate_dir = ctx.root.join("crypto-core");
    if !crate_dir.join("fuzz/Cargo.toml").is_file() {
        bail!(
            "crypto-core/fuzz does not exist yet (no crypto-core/fuzz/Cargo.toml): there are no \
             fuzz targets to run"
        );
    }

    header("tools: nightly toolchain, cargo-fuzz");
    ensure_nightly()?;
    ensure_cargo_fuzz(ctx)?;

    let list = probe(
        nightly_cargo()
            .args(["fuzz", "list"])
            .current_dir(&crate_dir),
    )
    .context("`cargo +nightly fuzz list` failed in crypto-core")?;
    let all: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let targets: Vec<&str> = match &only {
        Some(t) if all.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => bail!(
            "no fuzz target `{t}`; crypto-core/fuzz has: {}",
            all.join(", ")
        ),
        None => all,
    };
    if targets.is_empty() {
        bail!("`cargo +nightly fuzz list` found no targets in crypto-core/fuzz");
    }

    let mut times = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        header(&format!(
            "[{}/{}] fuzz `{target}` for {seconds} s",
            i + 1,
            targets.len()
        ));
        let t = Instant::now();
        let mut cmd = nightly_cargo();
        cmd.args(["fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .current_dir(&crate_dir);
        exec(&mut cmd).map_err(|e| {
            e.context(format!(
                "fuzz target `{target}` failed; a crashing input is saved under \
                 crypto-core/fuzz/artifacts/{target}/ (replay: cd crypto-core && cargo +nightly \
                 fuzz run {target} <file>)"
            ))
        })?;
        times.push((*target, t.elapsed()));
    }

    header("cargo xtask fuzz: summary");
    for (target, d) in &times {
        println!("  ok  {:>9}  {target}", format_duration(*d));
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(Option<String>, u64)> {
    let mut only = None;
    let mut seconds = DEFAULT_SECONDS;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = if arg == "--seconds" {
            Some(it.next().context("--seconds needs a number")?.as_str())
        } else {
            arg.strip_prefix("--seconds=")
        };
        if let Some(v) = value {
            seconds =
                v.parse().ok().filter(|&s| s > 0).with_context(|| {
                    format!("--seconds wants a positive whole number, got `{v}`")
                })?;
        } else if arg.starts_with('-') {
            bail!("unknown option `{arg}` (usage: cargo xtask fuzz [TARGET] [--seconds N])");
        } else if only.replace(arg.clone()).is_some() {
            bail!("give at most one fuzz target");
        }
    }
    Ok((only, seconds))
}

/// `cargo +nightly` through rustup, not the stable cargo that runs xtask (`$CARGO`).
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO");
    cmd
}

fn ensure_nightly() -> Result<()> {
    if let Some(v) = probe(nightly_cargo().arg("--version")) {
        println!("nightly: {v}");
        return Ok(());
    }
    println!("no nightly toolchain: installing it with rustup (cargo-fuzz needs -Zsanitizer)");
    exec(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
        .context("cannot install the nightly toolchain")
}

fn ensure_cargo_fuzz(ctx: &Ctx) -> Result<()> {
    let version = || probe(nightly_cargo().args(["fuzz", "--version"]));
    if let Some(v) = version() {
        println!("cargo-fuzz: {v}");
        return Ok(());
    }
    println!("cargo-fuzz is missing: installing it (a release build, a few minutes)");
    // Prefer the crate's own lockfile; resolve afresh if the registry lacks a pinned version.
    if exec(ctx.cargo().args(["install", "cargo-fuzz", "--locked"])).is_err() {
        println!("retrying without --locked");
        exec(ctx.cargo().args(["install", "cargo-fuzz"])).context("cannot install cargo-fuzz")?;
    }
    let v = version().context("cargo-fuzz was installed but `cargo fuzz` still does not run")?;
    println!("cargo-fuzz: {v}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_target_and_seconds() {
        assert_eq!(parse_args(&args(&[])).ok(), Some((None, DEFAULT_SECONDS)));
        assert_eq!(
            parse_args(&args(&["session_message", "--seconds", "5"])).ok(),
            Some((Some("session_message".to_owned()), 5))
        );
        assert_eq!(parse_args(&args(&["--seconds=7"])).ok(), Some((None, 7)));
        assert!(parse_args(&args(&["--seconds", "0"])).is_err());
        assert!(parse_args(&args(&["--seconds"])).is_err());
        assert!(parse_args(&args(&["a", "b"])).is_err());
        assert!(parse_args(&args(&["--minutes", "3"])).is_err());
    }
}
