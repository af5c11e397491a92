//! `cargo xtask`: the SecureChat workspace's task runner (the `xtask` pattern, see
//! <https://github.com/matklad/cargo-xtask>). The alias lives in `.cargo/config.toml`.
//!
//! ```text
//! cargo xtask test                      everything CI runs (.ci/run), fail fast
//! cargo xtask bench [crypto|all] [-- ARGS]   criterion benches (ARGS go to criterion)
//! cargo xtask fuzz [TARGET] [--seconds N]    cargo-fuzz targets of crypto-core, N s each
//! cargo xtask run                       the relay server (arrives with issue #3)
//! ```
//!
//! Arguments are parsed by hand from `std::env::args`: there are four subcommands and two
//! options, which does not justify a dependency.

mod bench;
mod fuzz;
mod steps;
mod test;
mod tools;
mod util;

use anyhow::{Result, bail};
use std::process::ExitCode;

const USAGE: &str = "\
Usage: cargo xtask <COMMAND>

Commands:
  test                         Check tools, then fmt, clippy, native tests (with doc tests),
                               wasm32 build and wasm tests under Node. This is what CI runs.
  bench [crypto|all] [-- ARGS] Run the criterion benches of crypto-core (one `cargo bench
                               --bench NAME` per file in crypto-core/benches), then the
                               wasm-vs-native hook; ARGS are passed to every bench binary.
  fuzz [TARGET] [--seconds N]  Run each cargo-fuzz target of crypto-core/fuzz (or only TARGET)
                               for N seconds (default 30). Installs cargo-fuzz if missing and
                               needs a nightly toolchain.
  run                          Start the relay server (not yet: it arrives with issue #3).
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
        "test" => {
            if let Some(arg) = rest.first() {
                bail!("`cargo xtask test` takes no arguments (got `{arg}`)\n\n{USAGE}");
            }
            test::run(&util::Ctx::new()?)
        }
        "bench" => bench::run(&util::Ctx::new()?, rest),
        "fuzz" => fuzz::run(&util::Ctx::new()?, rest),
        "run" => run_relay(),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// `cargo xtask run`: the README's "start the server" command. The relay server is issue #3;
/// until it lands this says so and fails, so no script mistakes it for a running server.
fn run_relay() -> Result<()> {
    bail!(
        "`cargo xtask run` starts the relay server (securechat-relay), which is not in the \
         workspace yet: it arrives with issue #3. Today the workspace holds only crypto-core; \
         try `cargo xtask test`."
    )
}
