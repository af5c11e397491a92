//! `cargo xtask`: the SecureChat workspace's task runner (the `xtask` pattern, see
//! <https://github.com/matklad/cargo-xtask>). The alias lives in `.cargo/config.toml`.
//!
//! ```text
//! cargo xtask test                      everything CI runs (.ci/run), fail fast
//! cargo xtask bench [crypto|relay|client|all] [-- ARGS]   benches, relay load, wasm-client
//! cargo xtask fuzz [TARGET] [--seconds N]    cargo-fuzz targets of crypto-core, N s each
//! cargo xtask flaky [SUITE ...] [--runs N] [--load]   relay suites N times in a row
//! cargo xtask run [-- ARGS]             build and start the relay server
//! ```
//!
//! Arguments are parsed by hand from `std::env::args`: there are five subcommands and a few
//! options, which does not justify a dependency.

mod bench;
mod flaky;
mod fuzz;
mod package;
mod steps;
mod test;
mod tools;
mod util;
mod web;

use anyhow::{Result, bail};
use std::process::ExitCode;

const USAGE: &str = "\
Usage: cargo xtask <COMMAND>

Commands:
  test [--only WORDS]          Check tools, then fmt, clippy, native tests (with doc tests),
                               wasm32 build, wasm tests under Node, the npm package in Node
                               wasm-client in headless Chromium, and the web app (Vitest,
                               build, Playwright end-to-end). This is what CI runs.
                               --only: the tools step, then only the steps whose name
                               contains WORDS (e.g. --only Chromium).
  bench [crypto|relay|client|all] [-- ARGS]
                               crypto: the criterion benches of crypto-core (one `cargo bench
                               --bench NAME` per file in crypto-core/benches), then wasm vs
                               native; ARGS are passed to every bench binary.
                               relay: the relay load generator (release relay binary on
                               SQLite and, if reachable, PostgreSQL; loopback throughput,
                               p99 at 10,000/s, loss, 10,000 idle WebSockets, actix-ws echo
                               baseline) into target/bench-relay.txt; ARGS: --seconds S,
                               --rate R, --rate-seconds S, --pairs N, --window N, --idle N,
                               --no-postgres. client: wasm-client natively and in headless
                               Chromium (1 KiB message, IndexedDB history, cold start) into
                               target/bench-client.txt. all (default): everything, ARGS to
                               criterion only.
  fuzz [TARGET] [--seconds N]  Run each cargo-fuzz target of crypto-core/fuzz (or only TARGET)
                               for N seconds (default 30). Installs cargo-fuzz if missing and
                               needs a nightly toolchain.
  flaky [SUITE ...] [--runs N] [--load]
                               Run relay test suites N times in a row (default 20) and fail
                               if any run fails. SUITE: a relay-server test file name
                               (durability, delivery, ...) or relay (default: the whole
                               package). --load: a release build of the workspace in
                               target/flaky-load runs over and over meanwhile (both cores busy).
  package [--test]             Build the npm package of wasm-client into
                               target/npm/securechat-client (wasm-bindgen, size gate);
                               --test: then run it in Node against a real relay, directly
                               and installed from `npm pack` into an empty project.
  run [-- ARGS]                Build and start the relay server on http://127.0.0.1:8080 with
                               SQLite (./securechat.db) and a mail outbox (./mail-outbox),
                               serving the web app (web/dist, built first when missing or
                               stale; needs Node.js); ARGS go to securechat-relay
                               (`cargo xtask run -- --help`).
  help                         Print this message.

Environment:
  CI=true                      Non-interactive mode: a required tool that cannot be installed
                               is an error (never a skipped step), and cargo runs with --locked.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!();
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        bail!("no command given");
    };
    match command.as_str() {
        "test" => match rest {
            [] => test::run(&util::Ctx::new()?, None),
            [flag, words] if flag == "--only" => test::run(&util::Ctx::new()?, Some(words)),
            _ => bail!("usage: cargo xtask test [--only WORDS]\n\n{USAGE}"),
        },
        "bench" => bench::run(&util::Ctx::new()?, rest),
        "fuzz" => fuzz::run(&util::Ctx::new()?, rest),
        "flaky" => flaky::run(&util::Ctx::new()?, rest),
        "run" => run_relay(&util::Ctx::new()?, rest),
        "package" => match rest {
            [] => package::run(&util::Ctx::new()?),
            [flag] if flag == "--test" => package::node_tests(&util::Ctx::new()?),
            _ => bail!("usage: cargo xtask package [--test]"),
        },
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// `cargo xtask run [-- ARGS]`: the README's "start the server" command. Builds the relay
/// (release profile) and runs it on its embedded defaults: http://127.0.0.1:8080, SQLite in
/// `./securechat.db`, mail written to `./mail-outbox/*.eml`. ARGS go to `securechat-relay`
/// (see `cargo xtask run -- --help`). The web app is built (npm package, `web/dist`) when
/// missing or stale and served at `/`; if it cannot be built (no Node.js, say), the relay
/// starts without it and says why.
fn run_relay(ctx: &util::Ctx, args: &[String]) -> Result<()> {
    let args = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    let mut cmd = ctx.cargo_with(&[
        "run",
        "--release",
        "-p",
        "relay-server",
        "--bin",
        "securechat-relay",
    ]);
    cmd.arg("--");
    let web_dist = web::dist_dir(ctx);
    let has_web_dir_arg = args.iter().any(|a| a.starts_with("--web-dir"))
        || std::env::var_os("SECURECHAT_WEB_DIR").is_some();
    if !has_web_dir_arg {
        match web::build(ctx, false) {
            Ok(()) => {
                cmd.arg("--web-dir").arg(&web_dist);
            }
            Err(err) => {
                eprintln!("warning: the web app could not be built, serving the API only: {err:#}")
            }
        }
    }
    cmd.args(args);
    util::exec(&mut cmd)
}
