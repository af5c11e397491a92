//! Process helpers shared by the commands: where the workspace is, whether we run in CI, and
//! running a command with a printed command line and a clear error when it fails.

use anyhow::{Context as _, Result, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What every command needs to know about its environment.
pub(crate) struct Ctx {
    /// The workspace root (the folder holding the top-level `Cargo.toml`).
    pub(crate) root: PathBuf,
    /// `CI` is set to `true` or `1`: never prompt, never skip a step for a missing tool.
    pub(crate) ci: bool,
    /// The cargo that runs us (`$CARGO`), so every step uses the same toolchain.
    pub(crate) cargo: PathBuf,
}

impl Ctx {
    pub(crate) fn new() -> Result<Self> {
        // xtask always runs from its own source tree, so its manifest folder's parent is the
        // workspace root wherever `cargo xtask` was started.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask has no parent folder")?
            .to_path_buf();
        std::env::set_current_dir(&root)
            .with_context(|| format!("cannot enter the workspace root {}", root.display()))?;
        let ci = std::env::var("CI").is_ok_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "true" || v == "1" || v == "yes"
        });
        let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
        Ok(Self { root, ci, cargo })
    }

    /// A `cargo` command for the toolchain that runs xtask.
    pub(crate) fn cargo(&self) -> Command {
        Command::new(&self.cargo)
    }

    /// A `cargo ARGS` command, with `--locked` in CI so that a stale Cargo.lock fails instead
    /// of being rewritten silently. Arguments for a test or bench binary go after this.
    pub(crate) fn cargo_with(&self, args: &[&str]) -> Command {
        let mut cmd = self.cargo();
        cmd.args(args);
        if self.ci {
            cmd.arg("--locked");
        }
        cmd
    }

    /// Cargo's target folder (`$CARGO_TARGET_DIR` or `<root>/target`).
    pub(crate) fn target_dir(&self) -> PathBuf {
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => self.root.join(dir),
            None => self.root.join("target"),
        }
    }
}

/// Prints a section header, easy to find in a long CI log.
pub(crate) fn header(text: &str) {
    println!();
    println!("==> {text}");
}

/// `program arg arg` as it would be typed in a shell (for logs and error messages).
pub(crate) fn display(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy()
        .into_owned();
    std::iter::once(program)
        .chain(cmd.get_args().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:+,@".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with inherited stdio; fails with the command line and exit status.
pub(crate) fn exec(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{line}` (is it installed and on PATH?)"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` with stderr inherited, echoes its stdout and returns it; fails like [`exec`].
pub(crate) fn exec_capture(cmd: &mut Command) -> Result<String> {
    let line = display(cmd);
    println!("$ {line}");
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{line}` (is it installed and on PATH?)"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Cargo's JSON messages are for us, not for the log.
    for l in stdout.lines().filter(|l| !l.starts_with('{')) {
        println!("{l}");
    }
    if !out.status.success() {
        bail!("`{line}` failed ({})", out.status);
    }
    Ok(stdout)
}

/// [`exec_capture`] for a program that might hang: killed (and an error) after `timeout`.
pub(crate) fn exec_capture_timeout(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let line = display(cmd);
    println!("$ {line}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `{line}` (is it installed and on PATH?)"))?;
    let mut stdout = child.stdout.take().context("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{line}` did not finish within {}: killed",
                format_duration(timeout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = reader.join().unwrap_or_default();
    print!("{text}");
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(text)
}

/// Runs `cmd` quietly and returns its trimmed stdout, or `None` if it cannot be started or
/// exits unsuccessfully (used to probe for tools).
pub(crate) fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `1m 02.3s` / `4.1s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        let minutes = (secs / 60.0).floor();
        format!("{minutes:.0}m {:04.1}s", secs - minutes * 60.0)
    } else {
        format!("{secs:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_millis(4_140)), "4.1s");
        assert_eq!(format_duration(Duration::from_millis(62_300)), "1m 02.3s");
    }

    #[test]
    fn command_lines_are_shell_quoted() {
        let mut cmd = Command::new("/usr/bin/cargo");
        cmd.args(["fmt", "--all", "--", "--check", "a b"]);
        assert_eq!(display(&cmd), "cargo fmt --all -- --check 'a b'");
    }
}
