//! docs/protocol.md and the code must agree (issue #10, "Document and code must agree"): every
//! domain-separation string of the document is one the code uses and the other way round, the
//! version bytes the layouts show are the code's, and every constant of the limits table
//! (section 16) has the code's value. A change on one side only fails here.

#![cfg(not(target_family = "wasm"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crypto_core::{account, attachment, group, identity, message, pickle, prekeys, ratchet};
use crypto_core::{relay_challenge, safety_number};
use std::collections::BTreeSet;

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md")).unwrap()
}

/// The lines of one `## N. Title` section.
fn section(doc: &str, number: &str) -> Vec<String> {
    let heading = format!("## {number}. ");
    doc.lines()
        .skip_while(|l| !l.starts_with(&heading))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .map(str::to_owned)
        .collect()
}

fn code_strings() -> BTreeSet<String> {
    crypto_core::domain_strings()
        .into_iter()
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

#[test]
fn section_4_lists_exactly_the_code_strings() {
    let doc = doc();
    let table: Vec<String> = section(&doc, "4")
        .iter()
        .filter(|l| l.starts_with("| `SecureChat v"))
        .map(|l| l.split('`').nth(1).unwrap().to_owned())
        .collect();
    let listed: BTreeSet<String> = table.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        table.len(),
        "a string is listed twice: {table:?}"
    );
    assert_eq!(listed, code_strings());
}

#[test]
fn every_string_the_document_mentions_is_a_code_string() {
    let doc = doc();
    let code = code_strings();
    let mut mentioned = 0;
    for delimiter in ['`', '"'] {
        for (i, part) in doc.split(delimiter).enumerate() {
            if i % 2 == 1 && part.starts_with("SecureChat v") && !part.contains('\n') {
                assert!(code.contains(part), "docs/protocol.md mentions {part:?}");
                mentioned += 1;
            }
        }
    }
    assert!(mentioned >= code.len());
}

#[test]
fn layouts_show_the_code_versions() {
    let doc = doc();
    // Every wire format but the pickle, the attachment and the safety number starts with the
    // one protocol version byte.
    assert_eq!(message::MESSAGE_VERSION, identity::IDENTITY_VERSION);
    assert_eq!(message::MESSAGE_VERSION, prekeys::PREKEY_VERSION);
    let wire = format!("version `0x{:02x}`", message::MESSAGE_VERSION);
    let mut rows = 0;
    for line in doc.lines().filter(|l| l.starts_with("| 0 | 1 | version `")) {
        assert!(line.starts_with(&format!("| 0 | 1 | {wire}")), "{line}");
        rows += 1;
    }
    assert!(
        rows >= 6,
        "identity, signed prekey, one-time prekey, bundle, messages: {rows}"
    );
    assert!(doc.contains(&format!("this document specifies {wire}")));
    assert!(doc.contains(&format!(
        "# SecureChat protocol, version {}",
        message::MESSAGE_VERSION
    )));
    assert!(doc.contains(&format!(
        "| 0 | 1 | pickle version `0x{:02x}` (`PICKLE_VERSION`) |",
        pickle::PICKLE_VERSION
    )));
    // The attachment header and the safety number have versions of their own.
    let blob_start = format!("ciphertext   {:02x}10", attachment::VERSION);
    assert!(doc.contains(&blob_start), "{blob_start}");
    let fingerprint_version = format!(
        "`{:02x} {:02x}` (version {})",
        0,
        safety_number::VERSION,
        safety_number::VERSION
    );
    assert!(doc.contains(&fingerprint_version), "{fingerprint_version}");
}

/// `1 048 576 (1 MiB)` → 1048576; `2⁶⁴ − 1` and other non-numbers → None.
fn value(cell: &str) -> Option<u64> {
    let digits: String = cell
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ' ')
        .filter(char::is_ascii_digit)
        .collect();
    let rest = cell
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
    (!digits.is_empty() && (rest.is_empty() || rest.starts_with('(')))
        .then(|| digits.parse().unwrap())
}

#[test]
fn section_16_limits_are_the_code_constants() {
    let code: &[(&str, u64)] = &[
        ("MAX_PLAINTEXT_LEN", message::MAX_PLAINTEXT_LEN as u64),
        ("RATCHET_HEADER_LEN", message::RATCHET_HEADER_LEN as u64),
        ("PUBLIC_IDENTITY_LEN", identity::PUBLIC_IDENTITY_LEN as u64),
        ("KEY_BYTES_LEN", safety_number::KEY_BYTES_LEN as u64),
        (
            "RELAY_CHALLENGE_LEN",
            relay_challenge::RELAY_CHALLENGE_LEN as u64,
        ),
        (
            "MAX_RELAY_ORIGIN_LEN",
            relay_challenge::MAX_RELAY_ORIGIN_LEN as u64,
        ),
        ("SIGNED_PREKEY_LEN", prekeys::SIGNED_PREKEY_LEN as u64),
        ("ONE_TIME_PREKEY_LEN", prekeys::ONE_TIME_PREKEY_LEN as u64),
        (
            "MAX_ONE_TIME_PREKEYS_PER_BATCH",
            account::MAX_ONE_TIME_PREKEYS_PER_BATCH as u64,
        ),
        ("MAX_ONE_TIME_PREKEYS", account::MAX_ONE_TIME_PREKEYS as u64),
        ("MAX_SIGNED_PREKEYS", account::MAX_SIGNED_PREKEYS as u64),
        (
            "MAX_REMEMBERED_BASE_KEYS",
            account::MAX_REMEMBERED_BASE_KEYS as u64,
        ),
        ("MAX_SKIP_PER_CHAIN", u64::from(ratchet::MAX_SKIP_PER_CHAIN)),
        ("MAX_SKIPPED_KEYS", ratchet::MAX_SKIPPED_KEYS as u64),
        ("MAX_PREVIOUS_CHAINS", ratchet::MAX_PREVIOUS_CHAINS as u64),
        ("GROUP_HEADER_LEN", group::GROUP_HEADER_LEN as u64),
        ("DISTRIBUTION_MIN_LEN", group::DISTRIBUTION_MIN_LEN as u64),
        ("DISTRIBUTION_MAX_LEN", group::DISTRIBUTION_MAX_LEN as u64),
        ("MAX_ROOM_ID_LEN", group::MAX_ROOM_ID_LEN as u64),
        ("MAX_GROUP_MEMBERS", group::MAX_GROUP_MEMBERS as u64),
        ("MAX_CHAINS_PER_MEMBER", group::MAX_CHAINS_PER_MEMBER as u64),
        ("MAX_DEVICE_ID_LEN", group::MAX_DEVICE_ID_LEN as u64),
        ("MAX_RETIRED_CHAINS", group::MAX_RETIRED_CHAINS as u64),
        ("PICKLE_VERSION", u64::from(pickle::PICKLE_VERSION)),
    ];
    let doc = doc();
    let mut seen = BTreeSet::new();
    let limits = section(&doc, "16");
    for line in &limits {
        let cells: Vec<&str> = line.split('|').collect();
        let [_, name, val, ..] = cells[..] else {
            continue;
        };
        let names: Vec<&str> = name.split('`').skip(1).step_by(2).collect();
        if names.len() != 1 {
            continue; // the header, `KEY_LEN, TAG_LEN, SIGNATURE_LEN` (below) and counter rows
        }
        let Some(documented) = value(val) else {
            continue;
        };
        let (_, actual) = code
            .iter()
            .find(|(n, _)| *n == names[0])
            .unwrap_or_else(|| {
                panic!(
                    "section 16 documents {} but this test does not know it",
                    names[0]
                )
            });
        assert_eq!(documented, *actual, "{}", names[0]);
        seen.insert(names[0]);
    }
    let missing: Vec<&str> = code
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !seen.contains(n))
        .collect();
    assert!(missing.is_empty(), "not in section 16: {missing:?}");
    assert!(doc.contains(&format!(
        "| `KEY_LEN`, `TAG_LEN`, `SIGNATURE_LEN` | {}, 16, {} |",
        32,
        crypto_core::SIGNATURE_LEN
    )));
}

/// The error enums of `crypto-core/src/error.rs` and their variants, read from the source:
/// `(enum, [variant, …])` for every `pub enum`.
fn error_enums() -> Vec<(String, Vec<String>)> {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/error.rs")).unwrap();
    let mut enums: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_enum = false;
    for line in source.lines() {
        if let Some(rest) = line.strip_prefix("pub enum ") {
            let name = rest.trim_end_matches(" {").to_owned();
            enums.push((name, Vec::new()));
            in_enum = true;
        } else if line == "}" {
            in_enum = false;
        } else if in_enum
            && let Some(rest) = line.strip_prefix("    ")
            && rest.starts_with(|c: char| c.is_ascii_uppercase())
        {
            let name: String = rest
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            if let Some((_, variants)) = enums.last_mut() {
                variants.push(name);
            }
        }
    }
    enums
}

#[test]
fn section_17_names_every_error_enum_and_variant() {
    let doc = doc();
    let text = section(&doc, "17").join("\n");
    let enums = error_enums();
    assert!(enums.len() > 10, "parsed {enums:?}");
    for (name, variants) in &enums {
        assert!(!variants.is_empty(), "{name}: no variants parsed");
        if name == "Error" {
            continue; // the umbrella: the union of the others
        }
        assert!(
            text.contains(&format!("`{name}`")),
            "section 17 lacks {name}"
        );
        for variant in variants {
            assert!(
                text.contains(&format!("`{variant}")),
                "section 17 lacks {name}::{variant}"
            );
        }
    }
}
