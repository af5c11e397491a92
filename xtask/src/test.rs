//! `cargo xtask test`: everything CI runs (`.ci/run`), in order, fail fast.
//!
//! To add a step (relay tests on SQLite and PostgreSQL, browser tests, ...), write a
//! `fn(&Ctx, &mut Toolbox) -> Result<()>` and add it to [`STEPS`]; if it needs a new outside
//! tool, add a [`Tool`] variant and provide it in [`crate::tools::ensure_all`].

use crate::steps::{Step, Tool, Toolbox, run_steps};
use crate::util::{Ctx, exec};
use anyhow::{Result, bail};

pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

const STEPS: &[Step] = &[
    Step {
        name: "tools: wasm32 target, wasm-bindgen-test-runner, rustfmt, clippy, node, postgres, chromium",
        needs: &[],
        run: crate::tools::ensure_all,
    },
    Step {
        name: "cargo fmt --check",
        needs: &[Tool::Rustfmt],
        run: fmt,
    },
    Step {
        name: "cargo clippy (native, all targets)",
        needs: &[Tool::Clippy],
        run: clippy,
    },
    Step {
        name: "cargo clippy (wasm32: crypto-core and wasm-client, lib + tests)",
        needs: &[Tool::Clippy, Tool::Wasm32Target],
        run: clippy_wasm,
    },
    Step {
        name: "cargo test (native: crypto-core, wasm-client against the relay binary, xtask; doc tests)",
        needs: &[],
        run: native_tests,
    },
    Step {
        name: "cargo test relay-server (API suites on SQLite and PostgreSQL)",
        needs: &[Tool::Postgres],
        run: relay_tests,
    },
    Step {
        name: "cargo build crypto-core and wasm-client for wasm32",
        needs: &[Tool::Wasm32Target],
        run: wasm_build,
    },
    Step {
        name: "cargo test crypto-core on wasm32 (Node)",
        needs: &[Tool::Wasm32Target, Tool::WasmBindgenTestRunner, Tool::Node],
        run: wasm_tests,
    },
    Step {
        name: "npm package of wasm-client: build, size gate, Node round trip, npm pack",
        needs: &[Tool::Wasm32Target, Tool::WasmBindgenTestRunner, Tool::Node],
        run: npm_package,
    },
    Step {
        name: "cargo test wasm-client in headless Chromium (IndexedDB store, remember me, relay round trip)",
        needs: &[
            Tool::Wasm32Target,
            Tool::WasmBindgenTestRunner,
            Tool::Chromium,
        ],
        run: browser_tests,
    },
    Step {
        name: "web app: npm ci, Vitest, build with size budget, end-to-end in headless Chromium (Playwright)",
        needs: &[
            Tool::Wasm32Target,
            Tool::WasmBindgenTestRunner,
            Tool::Node,
            Tool::Chromium,
        ],
        run: web_tests,
    },
];

/// All the steps, or with `only` the tools step and the steps whose name contains it
/// (ignoring case).
pub(crate) fn run(ctx: &Ctx, only: Option<&str>) -> Result<()> {
    if ctx.ci {
        println!("CI=true: non-interactive, cargo runs with --locked");
    }
    let Some(words) = only else {
        return run_steps(ctx, "test", STEPS);
    };
    let words = words.to_lowercase();
    let chosen: Vec<Step> = STEPS
        .iter()
        .enumerate()
        .filter(|(i, s)| *i == 0 || s.name.to_lowercase().contains(&words))
        .map(|(_, s)| Step {
            name: s.name,
            needs: s.needs,
            run: s.run,
        })
        .collect();
    if chosen.len() < 2 {
        bail!("no step of `cargo xtask test` has {words:?} in its name");
    }
    run_steps(ctx, "test", &chosen)
}

fn web_tests(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    crate::web::test(ctx)
}

fn fmt(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    let mut cmd = ctx.cargo();
    cmd.args(["fmt", "--all", "--", "--check"]);
    exec(&mut cmd).map_err(|e| e.context("code is not formatted: run `cargo fmt --all`"))
}

fn clippy(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    let mut cmd = ctx.cargo_with(&["clippy", "--workspace", "--all-targets", "--all-features"]);
    cmd.args(["--", "-D", "warnings"]);
    exec(&mut cmd)
}

/// `crypto-core/tests/wasm.rs` only exists for wasm32, so the native clippy never sees it.
/// `--lib --tests` leaves out benches (criterion is a native-only dev-dependency).
/// wasm-client's web transport and browser tests (`tests/browser.rs`) only exist for wasm32 too.
fn clippy_wasm(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    let mut cmd = ctx.cargo_with(&[
        "clippy",
        "-p",
        "crypto-core",
        "--target",
        WASM_TARGET,
        "--lib",
        "--tests",
        "--all-features",
    ]);
    cmd.args(["--", "-D", "warnings"]);
    exec(&mut cmd)?;
    let mut cmd = ctx.cargo_with(&[
        "clippy",
        "-p",
        "wasm-client",
        "--target",
        WASM_TARGET,
        "--lib",
        "--tests",
    ]);
    cmd.args(["--", "-D", "warnings"]);
    exec(&mut cmd)
}

/// All native tests of the workspace but the relay's, doc tests included. Fuzz seed corpora
/// are replayed by ordinary unit tests, so they run here too. `--all-features` turns on
/// crypto-core's `hazmat` and `fuzzing`, which the vector, known-answer and corpus tests need
/// (cargo skips them otherwise); the relay is tested without them, as it is built.
/// crypto-core's doc tests run a second time without features: there, `compile_fail` examples
/// show that applications cannot reach the raw primitives or the fuzz helpers.
/// wasm-client's tests start the real relay binary, built first (`target/debug/securechat-relay`).
fn native_tests(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    exec(&mut ctx.cargo_with(&["build", "-p", "relay-server", "--bin", "securechat-relay"]))?;
    let mut cmd = ctx.cargo_with(&[
        "test",
        "--workspace",
        "--exclude",
        "relay-server",
        "--all-features",
    ]);
    cmd.env(
        "SECURECHAT_RELAY_BIN",
        ctx.target_dir().join("debug").join("securechat-relay"),
    );
    exec(&mut cmd)?;
    exec(&mut ctx.cargo_with(&["test", "-p", "crypto-core", "--doc"]))
}

/// The relay's unit tests and API suites. Every scenario runs twice, on a fresh SQLite file and
/// on a fresh PostgreSQL database (`sc_test_*` on 127.0.0.1:5432, dropped afterwards). With
/// `CI=true` the harness fails when PostgreSQL is unreachable instead of skipping that half.
fn relay_tests(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    exec(&mut ctx.cargo_with(&["test", "-p", "relay-server"]))
}

fn wasm_build(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    exec(&mut ctx.cargo_with(&[
        "build",
        "-p",
        "crypto-core",
        "-p",
        "wasm-client",
        "--target",
        WASM_TARGET,
    ]))
}

/// The `wasm_bindgen_test` tests of crypto-core, run under Node by `wasm-bindgen-test-runner`
/// (the runner for wasm32 in `.cargo/config.toml`).
///
/// `--lib --tests` leaves out doc tests on purpose: since cargo 1.89 they are cross-compiled
/// for the target and handed to the runner, which finds no wasm-bindgen tests in them, prints
/// "no tests to run!" and succeeds even when an example's assertion is false. Doc tests run
/// natively in the previous step.
fn wasm_tests(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    exec(&mut ctx.cargo_with(&[
        "test",
        "-p",
        "crypto-core",
        "--target",
        WASM_TARGET,
        "--lib",
        "--tests",
        "--all-features",
    ]))
}

/// `wasm-client/tests/browser.rs` in headless Chromium: `wasm-bindgen-test-runner` (the
/// runner for wasm32 in `.cargo/config.toml`) starts chromedriver (`CHROMEDRIVER`, Debian's
/// `/usr/bin/chromedriver`), which starts Chromium headless (and `--no-sandbox` as root).
///
/// For the round trip against a real relay, the test page is served on a port chosen here
/// (`WASM_BINDGEN_TEST_ADDRESS`) so that the relay can allow exactly that origin
/// (`SECURECHAT_ALLOWED_ORIGINS`: its CORS and WebSocket origin check), and the relay's URL is
/// compiled into the test (`SECURECHAT_TEST_RELAY_URL`, read with `option_env!`).
fn browser_tests(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let page = format!("127.0.0.1:{port}");
    let origin = format!("http://{page}");
    let relay = crate::package::TestRelay::start(ctx, &[("SECURECHAT_ALLOWED_ORIGINS", &origin)])?;
    let mut cmd = ctx.cargo_with(&[
        "test",
        "-p",
        "wasm-client",
        "--target",
        WASM_TARGET,
        "--test",
        "browser",
    ]);
    cmd.env("WASM_BINDGEN_USE_BROWSER", "1")
        .env("WASM_BINDGEN_TEST_ADDRESS", &page)
        .env("WASM_BINDGEN_TEST_TIMEOUT", "180")
        .env("SECURECHAT_TEST_RELAY_URL", &relay.url);
    if std::env::var_os("CHROMEDRIVER").is_none()
        && let Some(driver) = crate::tools::chromedriver()
    {
        cmd.env("CHROMEDRIVER", driver);
    }
    exec(&mut cmd)
}

/// `cargo xtask package`, then the package in Node against a real relay (xtask/src/package.rs).
fn npm_package(ctx: &Ctx, _: &mut Toolbox) -> Result<()> {
    crate::package::node_tests(ctx)
}
