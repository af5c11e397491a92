//! A small step runner: named steps run in order, each timed; the first failure stops the run;
//! a summary with the time of every step is printed at the end either way.
//!
//! A step lists the [`Tool`]s it needs. The `tools` step (first) records tools that could not be
//! provided in the [`Toolbox`]; outside CI the steps needing them are then skipped with the
//! reason, and in CI (`CI=true`) the missing tool is an error right away.

use crate::util::{Ctx, format_duration, header};
use anyhow::{Result, bail};
use std::time::{Duration, Instant};

/// Something outside cargo that a step needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tool {
    Rustfmt,
    Clippy,
    Wasm32Target,
    /// `wasm-bindgen-test-runner` at the Cargo.lock version of `wasm-bindgen`.
    WasmBindgenTestRunner,
    /// Node.js >= 20, which runs the wasm tests.
    Node,
    /// PostgreSQL on 127.0.0.1:5432 (the relay's PostgreSQL suite).
    Postgres,
    /// Chromium and chromedriver (the browser tests of wasm-client).
    Chromium,
}

/// Tools that could not be provided, with the reason (only ever filled outside CI).
#[derive(Default)]
pub(crate) struct Toolbox {
    missing: Vec<(Tool, String)>,
}

impl Toolbox {
    /// Records that `tool` is unavailable. In CI this is an error; locally a warning, and
    /// the steps that need the tool are skipped.
    pub(crate) fn unavailable(&mut self, ctx: &Ctx, tool: Tool, reason: String) -> Result<()> {
        if ctx.ci {
            bail!("{reason} (CI=true: a required tool must be available)");
        }
        println!("warning: {reason}; the steps that need it will be SKIPPED");
        self.missing.push((tool, reason));
        Ok(())
    }

    pub(crate) fn why_missing(&self, needs: &[Tool]) -> Option<&str> {
        self.missing
            .iter()
            .find(|(tool, _)| needs.contains(tool))
            .map(|(_, reason)| reason.as_str())
    }
}

/// One step of a task.
pub(crate) struct Step {
    pub(crate) name: &'static str,
    pub(crate) needs: &'static [Tool],
    pub(crate) run: fn(&Ctx, &mut Toolbox) -> Result<()>,
}

enum Status {
    Ok(Duration),
    Failed(Duration),
    Skipped(String),
    NotRun,
}

/// Runs `steps` in order and stops at the first failure; prints the per-step summary.
pub(crate) fn run_steps(ctx: &Ctx, task: &str, steps: &[Step]) -> Result<()> {
    let started = Instant::now();
    let mut toolbox = Toolbox::default();
    let mut statuses: Vec<Status> = steps.iter().map(|_| Status::NotRun).collect();
    let mut failure = None;

    for (i, (step, status)) in steps.iter().zip(statuses.iter_mut()).enumerate() {
        let n = i + 1;
        header(&format!("[{n}/{}] {}", steps.len(), step.name));
        if let Some(reason) = toolbox.why_missing(step.needs) {
            println!("SKIPPED: {reason}");
            *status = Status::Skipped(reason.to_owned());
            continue;
        }
        let t = Instant::now();
        match (step.run)(ctx, &mut toolbox) {
            Ok(()) => *status = Status::Ok(t.elapsed()),
            Err(err) => {
                *status = Status::Failed(t.elapsed());
                failure = Some(err.context(format!(
                    "step {n}/{} `{}` of `cargo xtask {task}` failed",
                    steps.len(),
                    step.name
                )));
                break;
            }
        }
    }

    header(&format!("cargo xtask {task}: summary"));
    for (step, status) in steps.iter().zip(&statuses) {
        let (label, time, note) = match status {
            Status::Ok(d) => ("ok", format_duration(*d), String::new()),
            Status::Failed(d) => ("FAILED", format_duration(*d), String::new()),
            Status::Skipped(why) => ("SKIPPED", String::new(), format!("\n{:21}({why})", "")),
            Status::NotRun => ("not run", String::new(), String::new()),
        };
        println!("  {label:<8} {time:>9}  {}{note}", step.name);
    }
    println!("  {:<8} {:>9}", "total", format_duration(started.elapsed()));

    if let Some(err) = failure {
        return Err(err);
    }
    let skipped = statuses
        .iter()
        .filter(|s| matches!(s, Status::Skipped(_)))
        .count();
    if skipped > 0 {
        println!(
            "\nwarning: {skipped} step(s) SKIPPED because a tool is missing (see above); \
             CI (CI=true) fails instead."
        );
    } else {
        println!("\nall steps passed");
    }
    Ok(())
}
