//! Making sure the outside tools are there, installing what can be installed.

use crate::steps::{Tool, Toolbox};
use crate::test::WASM_TARGET;
use crate::util::{Ctx, exec, probe};
use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::process::Command;

/// Minimum Node.js major version for the wasm tests (`globalThis.crypto`, ES modules).
const NODE_MIN_MAJOR: u32 = 20;

/// The `tools` step of `cargo xtask test`.
pub(crate) fn ensure_all(ctx: &Ctx, toolbox: &mut Toolbox) -> Result<()> {
    if let Some(v) = probe(Command::new("rustc").arg("--version")) {
        println!("toolchain: {v}");
    }
    ensure_component(ctx, toolbox, Tool::Rustfmt, "rustfmt", "fmt")?;
    ensure_component(ctx, toolbox, Tool::Clippy, "clippy", "clippy")?;
    ensure_wasm_target(ctx, toolbox)?;
    ensure_wasm_bindgen(ctx, toolbox)?;
    check_node(ctx, toolbox)?;
    ensure_postgres(ctx, toolbox)?;
    ensure_chromium(ctx, toolbox)
}

/// Debian's `chromium` package (what the browser tests run in).
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver (Debian's `chromium-driver`): `/usr/bin/chromedriver`, or the first on `PATH`.
pub(crate) fn chromedriver() -> Option<String> {
    let debian = "/usr/bin/chromedriver";
    if Path::new(debian).exists() {
        return Some(debian.to_owned());
    }
    probe(Command::new("sh").args(["-c", "command -v chromedriver"])).filter(|p| !p.is_empty())
}

/// Chromium and chromedriver for the browser tests: `apt-get install -y chromium
/// chromium-driver` when either is missing, in CI or as root (elsewhere the install is left to
/// the developer and the browser tests are skipped with a warning). chromedriver must be
/// Chromium's own build of the same version, which the Debian packages guarantee.
fn ensure_chromium(ctx: &Ctx, toolbox: &mut Toolbox) -> Result<()> {
    let present = || Path::new(CHROMIUM).exists() && chromedriver().is_some();
    let report = || {
        let version = probe(Command::new(CHROMIUM).arg("--version")).unwrap_or_default();
        println!(
            "chromium: {version} (chromedriver: {})",
            chromedriver().unwrap_or_default()
        );
    };
    if present() {
        report();
        return Ok(());
    }
    let root = probe(Command::new("id").arg("-u")).as_deref() == Some("0");
    let apt = probe(Command::new("sh").args(["-c", "command -v apt-get"])).is_some();
    if !(apt && (ctx.ci || root)) {
        return toolbox.unavailable(
            ctx,
            Tool::Chromium,
            "the browser tests need Chromium and chromedriver (Debian: `sudo apt-get install -y \
             chromium chromium-driver`)"
                .to_owned(),
        );
    }
    println!("chromium or chromedriver is missing: installing them with apt-get (1-2 minutes)");
    let install = || {
        exec(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "chromium",
                    "chromium-driver",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    // A fresh machine may have no package lists yet: update once and try again.
    let installed = install().or_else(|_| {
        exec(Command::new("apt-get").arg("update"))?;
        install()
    });
    match installed {
        Ok(()) if present() => {
            report();
            Ok(())
        }
        Ok(()) => toolbox.unavailable(
            ctx,
            Tool::Chromium,
            format!("apt-get installed chromium, but {CHROMIUM} or chromedriver is still missing"),
        ),
        Err(err) => toolbox.unavailable(
            ctx,
            Tool::Chromium,
            format!("chromium and chromium-driver cannot be installed: {err:#}"),
        ),
    }
}

/// Where the relay's PostgreSQL suite expects the server (trust auth, user `postgres`).
const POSTGRES_ADDR: &str = "127.0.0.1:5432";

fn postgres_listening() -> bool {
    use std::net::{SocketAddr, TcpStream};
    POSTGRES_ADDR.parse::<SocketAddr>().is_ok_and(|addr| {
        TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok()
    })
}

/// PostgreSQL answers on 127.0.0.1:5432, or is started with `pg_ctlcluster` (Debian's
/// postgresql-common) when a cluster is installed but stopped.
fn ensure_postgres(ctx: &Ctx, toolbox: &mut Toolbox) -> Result<()> {
    if postgres_listening() {
        println!("postgres: listening on {POSTGRES_ADDR}");
        return Ok(());
    }
    let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for version in &versions {
        println!("postgres: not listening on {POSTGRES_ADDR}; starting cluster {version}/main");
        let started = exec(Command::new("pg_ctlcluster").args([
            "--skip-systemctl-redirect",
            version,
            "main",
            "start",
        ]));
        if let Err(err) = started {
            println!("postgres: pg_ctlcluster failed: {err:#}");
        }
    }
    // A cluster recovering after an unclean stop on a busy machine can take a while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if postgres_listening() {
            println!("postgres: listening on {POSTGRES_ADDR}");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    toolbox.unavailable(
        ctx,
        Tool::Postgres,
        format!(
            "PostgreSQL is not reachable on {POSTGRES_ADDR} (installed clusters: {})",
            if versions.is_empty() {
                "none".to_owned()
            } else {
                versions.join(", ")
            }
        ),
    )
}

/// `cargo fmt` / `cargo clippy` work, or `rustup component add` makes them work.
fn ensure_component(
    ctx: &Ctx,
    toolbox: &mut Toolbox,
    tool: Tool,
    component: &str,
    subcommand: &str,
) -> Result<()> {
    let version = || probe(ctx.cargo().args([subcommand, "--version"]));
    if let Some(v) = version() {
        println!("{component}: {v}");
        return Ok(());
    }
    println!("{component} is missing: installing it with rustup");
    let installed = exec(Command::new("rustup").args(["component", "add", component]));
    match (installed, version()) {
        (Ok(()), Some(v)) => {
            println!("{component}: {v}");
            Ok(())
        }
        (Err(err), _) => toolbox.unavailable(
            ctx,
            tool,
            format!("the {component} component cannot be installed: {err:#}"),
        ),
        (Ok(()), None) => toolbox.unavailable(
            ctx,
            tool,
            format!("`cargo {subcommand}` still does not work after `rustup component add`"),
        ),
    }
}

/// `rustup target add wasm32-unknown-unknown`, only if it is not installed yet.
pub(crate) fn ensure_wasm_target(ctx: &Ctx, toolbox: &mut Toolbox) -> Result<()> {
    match probe(Command::new("rustup").args(["target", "list", "--installed"])) {
        Some(list) if list.lines().any(|l| l.trim() == WASM_TARGET) => {
            println!("{WASM_TARGET}: installed");
            Ok(())
        }
        Some(_) => {
            println!("{WASM_TARGET} is missing: installing it with rustup");
            match exec(Command::new("rustup").args(["target", "add", WASM_TARGET])) {
                Ok(()) => Ok(()),
                Err(err) => toolbox.unavailable(
                    ctx,
                    Tool::Wasm32Target,
                    format!("the {WASM_TARGET} target cannot be installed: {err:#}"),
                ),
            }
        }
        None => {
            // No rustup (a distribution's Rust): look for the target's standard library.
            let sysroot =
                probe(Command::new("rustc").args(["--print", "sysroot"])).unwrap_or_default();
            if Path::new(&sysroot)
                .join("lib/rustlib")
                .join(WASM_TARGET)
                .is_dir()
            {
                println!("{WASM_TARGET}: installed (no rustup; found in {sysroot})");
                Ok(())
            } else {
                toolbox.unavailable(
                    ctx,
                    Tool::Wasm32Target,
                    format!("rustup is not available and rustc has no {WASM_TARGET} target"),
                )
            }
        }
    }
}

/// `wasm-bindgen` and `wasm-bindgen-test-runner` at exactly the version of the `wasm-bindgen`
/// crate in Cargo.lock (the CLI refuses wasm built by any other version).
pub(crate) fn ensure_wasm_bindgen(ctx: &Ctx, toolbox: &mut Toolbox) -> Result<()> {
    let lock_path = ctx.root.join("Cargo.lock");
    if !lock_path.exists() {
        // A fresh checkout always has one (it is committed); make one if someone deleted it.
        exec(ctx.cargo().arg("generate-lockfile"))?;
    }
    let lock = std::fs::read_to_string(&lock_path)
        .with_context(|| format!("cannot read {}", lock_path.display()))?;
    let versions = locked_versions(&lock, "wasm-bindgen");
    let wanted = match versions.as_slice() {
        [] => {
            println!("wasm-bindgen: not in Cargo.lock yet, nothing to install");
            return Ok(());
        }
        [v] => v.clone(),
        many => bail!(
            "Cargo.lock holds several versions of wasm-bindgen ({}); the wasm-bindgen CLI can \
             only match one: align the dependencies (workspace pins `wasm-bindgen = \"=x.y.z\"`)",
            many.join(", ")
        ),
    };

    let installed = |bin: &str| {
        probe(Command::new(bin).arg("--version"))
            .and_then(|out| out.split_whitespace().nth(1).map(str::to_owned))
    };
    let current = || {
        (
            installed("wasm-bindgen"),
            installed("wasm-bindgen-test-runner"),
        )
    };
    let is_wanted = |v: &Option<String>| v.as_deref() == Some(wanted.as_str());

    let (cli, runner) = current();
    if is_wanted(&cli) && is_wanted(&runner) {
        println!("wasm-bindgen-cli: {wanted} (matches Cargo.lock)");
        return Ok(());
    }
    println!(
        "wasm-bindgen-cli: Cargo.lock wants {wanted}, found wasm-bindgen {} and \
         wasm-bindgen-test-runner {}: installing (a release build, a few minutes)",
        cli.as_deref().unwrap_or("(none)"),
        runner.as_deref().unwrap_or("(none)")
    );
    // No `--locked`: wasm-bindgen-cli's own lockfile pins a crate version that the registry
    // no longer serves (see the field notes); a fresh resolution builds fine.
    let install = exec(
        ctx.cargo()
            .args(["install", "wasm-bindgen-cli", "--version", &wanted]),
    );
    let (cli, runner) = current();
    match install {
        Ok(()) if is_wanted(&cli) && is_wanted(&runner) => {
            println!("wasm-bindgen-cli: {wanted} installed");
            Ok(())
        }
        Ok(()) => toolbox.unavailable(
            ctx,
            Tool::WasmBindgenTestRunner,
            format!(
                "wasm-bindgen-cli {wanted} was installed, but the `wasm-bindgen` on PATH \
                 reports {}: put ~/.cargo/bin first on PATH",
                cli.as_deref().unwrap_or("nothing")
            ),
        ),
        Err(err) => toolbox.unavailable(
            ctx,
            Tool::WasmBindgenTestRunner,
            format!("wasm-bindgen-cli {wanted} cannot be installed: {err:#}"),
        ),
    }
}

/// Node.js >= 20 runs the wasm tests; it cannot be installed from here.
pub(crate) fn check_node(ctx: &Ctx, toolbox: &mut Toolbox) -> Result<()> {
    let version = probe(Command::new("node").arg("--version"));
    let major = version.as_deref().and_then(|v| {
        v.trim_start_matches('v')
            .split('.')
            .next()?
            .parse::<u32>()
            .ok()
    });
    match major {
        Some(m) if m >= NODE_MIN_MAJOR => {
            println!("node: {}", version.as_deref().unwrap_or_default());
            Ok(())
        }
        _ => toolbox.unavailable(
            ctx,
            Tool::Node,
            format!(
                "the wasm tests need Node.js >= {NODE_MIN_MAJOR} on PATH (found: {}); install \
                 it, e.g. from nodejs.org or NodeSource (Debian 12's nodejs is 18)",
                version.as_deref().unwrap_or("none")
            ),
        ),
    }
}

/// Versions of package `name` in a Cargo.lock (`[[package]]` tables with `name` and `version`).
pub(crate) fn locked_versions(lock: &str, name: &str) -> Vec<String> {
    let mut versions = Vec::new();
    let mut current_name: Option<&str> = None;
    for line in lock.lines().map(str::trim) {
        if line.starts_with('[') {
            current_name = None;
        } else if let Some(value) = toml_string(line, "name") {
            current_name = Some(value);
        } else if let Some(value) = toml_string(line, "version")
            && current_name == Some(name)
            && !versions.iter().any(|v| v == value)
        {
            versions.push(value.to_owned());
        }
    }
    versions
}

/// `key = "value"` -> `value`.
fn toml_string<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line
        .strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    rest.strip_prefix('"')?.strip_suffix('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "cfg-if",
]

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.130"

[[package]]
name = "wasm-bindgen-test"
version = "0.3.80"
"#;

    #[test]
    fn finds_the_locked_wasm_bindgen() {
        assert_eq!(locked_versions(LOCK, "wasm-bindgen"), ["0.2.130"]);
        assert_eq!(locked_versions(LOCK, "wasm-bindgen-test"), ["0.3.80"]);
        assert!(locked_versions(LOCK, "serde").is_empty());
    }

    #[test]
    fn reports_every_version_once() {
        let two = format!("{LOCK}\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.99\"\n");
        assert_eq!(locked_versions(&two, "wasm-bindgen"), ["0.2.130", "0.2.99"]);
    }
}
