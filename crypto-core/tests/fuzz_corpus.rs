//! Replays the fuzz seed corpus (`fuzz/corpus/<target>/*`) through the checks of
//! `crypto_core::fuzzing` on stable, so every input a fuzzer ever crashed on stays a
//! regression test. Also keeps the three lists in step: the checks, the corpus directories and
//! the cargo-fuzz targets — nothing goes untested silently.
#![cfg(not(target_family = "wasm"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crypto_core::fuzzing::CHECKS;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    out.sort();
    out
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

fn check_names() -> BTreeSet<String> {
    CHECKS.iter().map(|(name, _)| (*name).to_owned()).collect()
}

#[test]
fn every_corpus_file_passes_its_check() {
    let mut replayed = 0;
    let mut failures = Vec::new();
    for dir in entries(&fuzz_dir().join("corpus")) {
        assert!(dir.is_dir(), "{} is not a directory", dir.display());
        let target = file_name(&dir);
        let (_, check) = CHECKS
            .iter()
            .find(|(name, _)| *name == target)
            .unwrap_or_else(|| panic!("corpus directory `{target}` has no check in CHECKS"));
        let files = entries(&dir);
        assert!(!files.is_empty(), "corpus directory `{target}` is empty");
        for file in files {
            let data = fs::read(&file).unwrap();
            if let Err(e) = check(&data) {
                failures.push(format!("{target}/{}: {e}", file_name(&file)));
            }
            replayed += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "corpus failures:\n{}",
        failures.join("\n")
    );
    assert!(replayed >= CHECKS.len());
}

#[test]
fn every_check_has_a_corpus_and_a_fuzz_target() {
    let checks = check_names();
    let corpus: BTreeSet<String> = entries(&fuzz_dir().join("corpus"))
        .iter()
        .map(|p| file_name(p))
        .collect();
    assert_eq!(corpus, checks, "corpus directories differ from the checks");

    let targets: BTreeSet<String> = entries(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .map(|p| file_name(p).strip_suffix(".rs").unwrap().to_owned())
        .collect();
    assert_eq!(targets, checks, "fuzz targets differ from the checks");

    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &checks {
        let source =
            fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            source.contains(&format!("crypto_core::fuzzing::{name}(data)")),
            "fuzz_targets/{name}.rs does not run the check `{name}`"
        );
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml has no [[bin]] for `{name}`"
        );
    }
}
