//! `cargo xtask flaky [SUITE ...] [--runs N] [--load]`: runs relay test suites many times in a
//! row to show they do not fail at random.
//!
//! A SUITE is one of relay-server's integration test targets (`durability`, `delivery`, ...,
//! the file names in `relay-server/tests/`), or `relay` for the whole package (unit tests and
//! every suite, on SQLite and PostgreSQL): exactly what `cargo xtask test` runs for the relay.
//! The test binaries are built once; each run then executes them again (`cargo test` finds
//! nothing to rebuild). With `--load`, a release build of the whole workspace into its own
//! target folder (`target/flaky-load`) runs over and over beside the suites, so both cores are
//! busy as on a loaded CI machine. Every run is timed; the output of a failed run is kept in
//! `target/flaky/run-K.log` and printed, and the command fails if any run failed.

use crate::util::{Ctx, display, format_duration, header};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What `cargo xtask flaky` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// Integration test targets of relay-server; empty for the whole package.
    suites: Vec<String>,
    runs: u32,
    load: bool,
}

fn parse(args: &[String], known: &[String]) -> Result<Plan> {
    let mut plan = Plan {
        suites: Vec::new(),
        runs: 20,
        load: false,
    };
    let mut whole = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--runs" => {
                let n = rest.next().context("--runs needs a number")?;
                plan.runs = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .with_context(|| format!("--runs {n}: not a positive number"))?;
            }
            "--load" => plan.load = true,
            "relay" => whole = true,
            suite if known.iter().any(|k| k == suite) => plan.suites.push(suite.to_owned()),
            other => bail!(
                "unknown suite or option `{other}`; suites: relay, {}",
                known.join(", ")
            ),
        }
    }
    if whole {
        plan.suites.clear();
    }
    Ok(plan)
}

/// The integration test targets of relay-server: the `.rs` files of `relay-server/tests`.
fn relay_suites(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("relay-server/tests");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "rs")
                .then(|| path.file_stem()?.to_str().map(str::to_owned))
                .flatten()
        })
        .collect();
    names.sort();
    Ok(names)
}

fn test_command(ctx: &Ctx, plan: &Plan, extra: &[&str]) -> Command {
    let mut cmd = ctx.cargo_with(&["test", "-p", "relay-server"]);
    for suite in &plan.suites {
        cmd.args(["--test", suite]);
    }
    cmd.args(extra);
    cmd
}

pub(crate) fn run(ctx: &Ctx, args: &[String]) -> Result<()> {
    let plan = parse(args, &relay_suites(&ctx.root)?)?;
    let what = if plan.suites.is_empty() {
        "the whole relay-server package".to_owned()
    } else {
        plan.suites.join(", ")
    };
    header(&format!("build the test binaries ({what})"));
    crate::util::exec(&mut test_command(ctx, &plan, &["--no-run"]))?;

    let logs = ctx.target_dir().join("flaky");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let load = plan.load.then(|| Load::start(ctx)).transpose()?;

    let mut failed = Vec::new();
    let mut times = Vec::new();
    let started = Instant::now();
    for k in 1..=plan.runs {
        header(&format!("run {k}/{} of {what}", plan.runs));
        let log = logs.join(format!("run-{k}.log"));
        let t = Instant::now();
        let ok = run_logged(&mut test_command(ctx, &plan, &[]), &log)?;
        let took = t.elapsed();
        times.push(took);
        if ok {
            println!("run {k}: ok in {}", format_duration(took));
            let _ = std::fs::remove_file(&log);
        } else {
            println!(
                "run {k}: FAILED in {}; its output ({}):",
                format_duration(took),
                log.display()
            );
            print_failures(&log);
            failed.push(k);
        }
    }
    let load_builds = load.map(Load::stop);

    header("cargo xtask flaky: summary");
    let slowest = times.iter().max().copied().unwrap_or_default();
    println!(
        "{what}: {} of {} runs green{} in {} (slowest run {})",
        plan.runs as usize - failed.len(),
        plan.runs,
        match load_builds {
            Some(n) => format!(", beside {n} release build(s) of the workspace (--load)"),
            None => String::new(),
        },
        format_duration(started.elapsed()),
        format_duration(slowest),
    );
    if !failed.is_empty() {
        bail!(
            "runs {failed:?} failed; their logs are in {}",
            logs.display()
        );
    }
    Ok(())
}

/// Runs `cmd` with stdout and stderr into `log`; whether it succeeded.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<bool> {
    println!("$ {}", display(cmd));
    let file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    Ok(status.success())
}

/// The lines of a failed run worth reading first: the failing tests and their panics.
fn print_failures(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let mut keep = false;
    for line in text.lines() {
        if line.starts_with("---- ") || line.starts_with("failures:") {
            keep = true;
        }
        // Also what cargo says of a test binary that died (a signal after its tests passed).
        if keep
            || line.contains("FAILED")
            || line.contains("panicked")
            || line.starts_with("error: test failed")
            || line.contains("process didn't exit successfully")
        {
            println!("    {line}");
        }
        if line.starts_with("test result:") {
            keep = false;
        }
    }
}

/// A release build of the workspace, repeated until stopped: load on every core.
struct Load {
    stop: Arc<AtomicBool>,
    worker: std::thread::JoinHandle<u32>,
}

impl Load {
    fn start(ctx: &Ctx) -> Result<Self> {
        let dir = ctx.target_dir().join("flaky-load");
        let cargo = ctx.cargo.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        println!(
            "load: `cargo build --release --workspace --target-dir {}`, repeated",
            dir.display()
        );
        let worker = std::thread::spawn(move || build_until(&cargo, &dir, &flag));
        Ok(Self { stop, worker })
    }

    /// Stops the build; returns how many builds were started.
    fn stop(self) -> u32 {
        self.stop.store(true, Ordering::Release);
        self.worker.join().unwrap_or(0)
    }
}

fn build_until(cargo: &PathBuf, dir: &Path, stop: &AtomicBool) -> u32 {
    let mut builds = 0;
    while !stop.load(Ordering::Acquire) {
        // Start from nothing each time, so the build compiles (and loads the cores) again.
        let _ = std::fs::remove_dir_all(dir.join("release"));
        let child = Command::new(cargo)
            .args(["build", "--release", "--workspace", "--target-dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            println!("load: cannot start cargo build; running without load");
            return builds;
        };
        builds += 1;
        if !wait_or_stop(&mut child, stop) {
            break;
        }
    }
    builds
}

/// Waits for `child`; kills it and returns false once `stop` is set.
fn wait_or_stop(child: &mut Child, stop: &AtomicBool) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) => {}
            Err(_) => return false,
        }
        if stop.load(Ordering::Acquire) {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn suites_runs_and_load_are_parsed() {
        let known = args(&["delivery", "durability"]);
        let plan = parse(&args(&["durability", "delivery", "--runs", "5"]), &known).unwrap();
        assert_eq!(
            plan,
            Plan {
                suites: args(&["durability", "delivery"]),
                runs: 5,
                load: false
            }
        );
        let plan = parse(&args(&["--load"]), &known).unwrap();
        assert_eq!((plan.suites.len(), plan.runs, plan.load), (0, 20, true));
        let plan = parse(&args(&["delivery", "relay"]), &known).unwrap();
        assert!(plan.suites.is_empty(), "`relay` means the whole package");
        assert!(parse(&args(&["nonsense"]), &known).is_err());
        assert!(parse(&args(&["--runs", "0"]), &known).is_err());
        assert!(parse(&args(&["--runs"]), &known).is_err());
    }
}
