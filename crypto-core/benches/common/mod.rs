//! Shared by the criterion benches: reading criterion's results back and writing the ratio
//! table of a bench to `target/bench-NAME.txt`, which `cargo xtask bench` prints at the end.
//!
//! Every ratio divides two medians measured by criterion in the same process, one right after
//! the other, so that the noise of a shared machine mostly cancels out.

#![allow(dead_code)] // not every bench uses every helper

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::SystemTime;

/// Cargo's target folder: `$CARGO_TARGET_DIR`, else the workspace's `target/` (benches run in
/// the package folder, `crypto-core/`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
    }
}

/// Where the benches tell criterion to keep its results (also when a bench binary is run
/// directly, without cargo, where criterion's own default would be `./target/criterion`).
pub fn criterion_home() -> PathBuf {
    std::env::var_os("CRITERION_HOME").map_or_else(|| target_dir().join("criterion"), PathBuf::from)
}

/// Criterion with the settings of every bench here: short warm-up and measurement (shared
/// 2-core machines; `cargo xtask bench -- --measurement-time 10` for longer runs), results in
/// [`criterion_home`].
#[cfg(not(target_family = "wasm"))]
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .output_directory(&criterion_home())
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}

/// The median time in nanoseconds of benchmark `id` (`group/function`), if it ran in this
/// process (results older than `since` are stale: for example filtered out on the command
/// line).
pub fn median_ns(id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home().join(id).join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|m| m >= since);
    if !fresh {
        return None;
    }
    let json = std::fs::read_to_string(&path).ok()?;
    // {"mean":{...},"median":{"confidence_interval":{...},"point_estimate":123.4,...},...}
    let median = json.split_once("\"median\":")?.1;
    let value = median.split_once("\"point_estimate\":")?.1;
    let end = value.find([',', '}']).unwrap_or(value.len());
    value.get(..end)?.trim().parse().ok()
}

/// Which way a ratio has to go.
#[derive(Clone, Copy)]
pub enum Goal {
    /// The ratio must be at most this.
    AtMost(f64),
    /// The ratio must be at least this.
    AtLeast(f64),
    /// Reported for information.
    None,
}

/// One line of a ratio table: `numerator ÷ denominator` (criterion ids).
pub struct Ratio {
    pub label: String,
    pub numerator: String,
    pub denominator: String,
    /// When set, the ratio is inverted (`denominator ÷ numerator`): "how many times faster".
    pub invert: bool,
    pub goal: Goal,
}

impl Ratio {
    pub fn new(label: impl Into<String>, numerator: &str, denominator: &str, goal: Goal) -> Self {
        Self {
            label: label.into(),
            numerator: numerator.to_owned(),
            denominator: denominator.to_owned(),
            invert: false,
            goal,
        }
    }

    /// `denominator time ÷ numerator time`: how many times faster the numerator is.
    pub fn speedup(
        label: impl Into<String>,
        numerator: &str,
        denominator: &str,
        goal: Goal,
    ) -> Self {
        Self {
            invert: true,
            ..Self::new(label, numerator, denominator, goal)
        }
    }
}

fn fmt_time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Prints the table and writes it to `target/bench-NAME.txt`.
pub fn write_report(name: &str, title: &str, since: SystemTime, rows: &[Ratio]) {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "{:<46} {:>11} {:>11} {:>8}  goal",
        "ratio (medians, same run)", "numerator", "denominator", "ratio"
    );
    for row in rows {
        let num = median_ns(&row.numerator, since);
        let den = median_ns(&row.denominator, since);
        let (ratio_text, verdict, num_text, den_text) = match (num, den) {
            (Some(n), Some(d)) if n > 0.0 && d > 0.0 => {
                let ratio = if row.invert { d / n } else { n / d };
                let verdict = match row.goal {
                    Goal::AtMost(g) if ratio <= g => format!("<= {g} met"),
                    Goal::AtMost(g) => format!("<= {g} MISSED"),
                    Goal::AtLeast(g) if ratio >= g => format!(">= {g} met"),
                    Goal::AtLeast(g) => format!(">= {g} MISSED"),
                    Goal::None => "(info)".to_owned(),
                };
                (format!("{ratio:.2}"), verdict, fmt_time(n), fmt_time(d))
            }
            _ => (
                "n/a".to_owned(),
                "not measured in this run".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
            ),
        };
        let _ = writeln!(
            out,
            "{:<46} {:>11} {:>11} {:>8}  {verdict}",
            row.label, num_text, den_text, ratio_text
        );
    }
    let _ = writeln!(out, "poly1305 backend: {}", poly1305_backend());
    println!("\n{out}");
    let dir = target_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("bench-{name}.txt"));
    if let Err(err) = std::fs::write(&path, out) {
        eprintln!("cannot write {}: {err}", path.display());
    }
}

/// Which Poly1305 implementation this build uses (see docs/benchmarks.md).
pub fn poly1305_backend() -> &'static str {
    if cfg!(poly1305_backend = "soft") {
        "soft (--cfg poly1305_backend=\"soft\")"
    } else if cfg!(any(target_arch = "x86", target_arch = "x86_64")) {
        "autodetect (AVX2 when the CPU has it)"
    } else {
        "soft (no SIMD backend on this architecture)"
    }
}

/// Two established sessions (Alice's and Bob's): X3DH, first message, one reply, so that both
/// sides send ordinary ratchet messages; Alice has already turned her DH ratchet for the
/// reply, so her next messages are steady-state steps on one chain.
pub fn established_pair() -> (crypto_core::Session, crypto_core::Session) {
    use crypto_core::{Account, SessionMessage};
    let alice = Account::new().expect("account");
    let mut bob = Account::new().expect("account");
    bob.generate_signed_prekey(1_700_000_000).expect("spk");
    bob.generate_one_time_prekeys(1).expect("otk");
    let bundle = bob.prekey_bundle(true).expect("bundle");
    let mut to_bob = alice.create_outbound_session(&bundle).expect("outbound");
    let SessionMessage::Prekey(first) = to_bob.encrypt(b"hello").expect("encrypt") else {
        unreachable!("the first message is a prekey message")
    };
    let (mut to_alice, _) = bob.create_inbound_session(&first).expect("inbound");
    let reply = to_alice.encrypt(b"hi").expect("encrypt");
    to_bob.decrypt(&reply).expect("decrypt");
    // Alice's DH ratchet step happens on her first encryption after the reply.
    let m = to_bob.encrypt(b"warm").expect("encrypt");
    to_alice.decrypt(&m).expect("decrypt");
    (to_bob, to_alice)
}
