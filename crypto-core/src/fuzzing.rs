//! Decoder round-trip checks shared by the cargo-fuzz targets in `crypto-core/fuzz` and by the
//! corpus replay test `tests/fuzz_corpus.rs`, so a fuzzer finding and its regression test run
//! exactly the same code.
//!
//! Every check has the shape `fn(&[u8]) -> Result<(), String>`. An input that the decoder
//! refuses is `Ok`: refusing is correct, the point is not to panic. An input it accepts must
//! survive the round trip, otherwise the check returns `Err` with a description (the fuzz
//! target turns that into a crash):
//!
//! - Wire formats: `decode(input)` → `encode` → `decode` again. The re-decoded value must equal
//!   the first, re-encoding it must give the same bytes, and those bytes must be the input
//!   itself: a decoder that accepts two encodings of one value makes messages malleable.
//!   [`SenderKeyDistribution`] holds a secret and has no `PartialEq`; its public fields and
//!   its encodings are compared instead.
//! - Pickles ([`account_pickle`], [`session_pickle`], [`group_session_pickle`]): the input is
//!   tried twice, as a sealed pickle under [`FUZZ_PICKLE_KEY`] (reaches the envelope checks
//!   only, since a fuzzer cannot forge the tag) and as the plaintext state, which the check
//!   seals itself before opening (reaches the state parser). An opened object is pickled again
//!   and reopened. A sealed input is opened as the object its header names (a fuzzer cannot
//!   know the id otherwise); plaintext state is sealed as [`FUZZ_PICKLE_ID`] at counter 1.
//!   Each re-pickle must carry the same id and the next counter, the opened pickle must then
//!   be refused as rolled back, and the two re-pickled states must be equal byte for byte.
//!   Observable public state (identities, session id, members) and the next encrypted output
//!   are compared as well.
//!   A pickle's plaintext need not be canonical (a map ignores duplicate ids): pickles are
//!   authenticated and written by us, so only the second round trip must be stable.
//! - [`session_decrypt`] feeds the input as a message to a live session and checks that the
//!   session refuses it (unless it is a message the peer really sent) and still works after.
//! - [`attachment_decrypt`] runs a blob through one-shot and streaming decryption, cut into
//!   pieces the input chooses, and requires the same verdict and plaintext. In plaintext mode
//!   it encrypts the input first (so every chunk authenticates), requires streaming and
//!   one-shot encryption to agree byte for byte and every split to decrypt to the plaintext,
//!   and a flipped bit, a truncation or an inserted byte to be refused.
//! - [`safety_number_qr`] checks [`SafetyNumber::compare_qr`] against a fixed safety number
//!   (only the exact peer payload matches), and in a second mode builds safety numbers from
//!   keys and ids the input chooses and checks that both sides agree.
//!
//! Every session and key these checks build comes from a fixed seed, so a crash replays
//! exactly. The module holds no secrets of real users and is not needed by applications.

use crate::attachment::{
    AttachmentDecryptor, AttachmentEncryptor, AttachmentInfo, AttachmentKey, CHUNK_SIZE,
    ENCRYPTED_CHUNK_LEN, HEADER_LEN, ciphertext_len_for, decrypt_attachment,
    encrypt_attachment_with_rng, plaintext_len_for,
};
use crate::group::{GroupMessage, GroupSession, SenderKeyDistribution};
use crate::pickle::{self, PickleId, PickleKey, PickleKind, SealedPickle};
use crate::primitives::sha256;
use crate::safety_number::{self, KEY_BYTES_LEN, QR_PAYLOAD_LEN, SafetyNumber};
use crate::{
    Account, OneTimePrekey, PrekeyBundle, PrekeyMessage, PublicIdentity, RatchetMessage, Session,
    SessionMessage, SignedPrekey,
};
use core::convert::Infallible;
use core::fmt;
use rand_core::{TryCryptoRng, TryRng};
use std::sync::OnceLock;

/// A round-trip check: `Ok` if the input is refused or survives the round trip.
pub type Check = fn(&[u8]) -> Result<(), String>;

/// Every check, under the name of its fuzz target and seed corpus directory.
pub const CHECKS: &[(&str, Check)] = &[
    ("public_identity", public_identity),
    ("signed_prekey", signed_prekey),
    ("one_time_prekey", one_time_prekey),
    ("prekey_bundle", prekey_bundle),
    ("session_message", session_message),
    ("ratchet_message", ratchet_message),
    ("prekey_message", prekey_message),
    ("group_message", group_message),
    ("sender_key_distribution", sender_key_distribution),
    ("account_pickle", account_pickle),
    ("session_pickle", session_pickle),
    ("group_session_pickle", group_session_pickle),
    ("session_decrypt", session_decrypt),
    ("attachment_decrypt", attachment_decrypt),
    ("safety_number_qr", safety_number_qr),
];

/// The storage key every pickle check seals and opens with.
pub const FUZZ_PICKLE_KEY: [u8; 32] = [0x42; 32];
/// The pickle id under which the pickle checks seal plaintext state.
pub const FUZZ_PICKLE_ID: [u8; 16] = [0x24; 16];

/// [`PublicIdentity::decode`] round trip.
pub fn public_identity(data: &[u8]) -> Result<(), String> {
    wire_round_trip(
        "PublicIdentity",
        data,
        PublicIdentity::decode,
        PublicIdentity::encode,
    )
}

/// [`SignedPrekey::decode`] round trip.
pub fn signed_prekey(data: &[u8]) -> Result<(), String> {
    wire_round_trip(
        "SignedPrekey",
        data,
        SignedPrekey::decode,
        SignedPrekey::encode,
    )
}

/// [`OneTimePrekey::decode`] round trip.
pub fn one_time_prekey(data: &[u8]) -> Result<(), String> {
    wire_round_trip(
        "OneTimePrekey",
        data,
        OneTimePrekey::decode,
        OneTimePrekey::encode,
    )
}

/// [`PrekeyBundle::decode`] round trip.
pub fn prekey_bundle(data: &[u8]) -> Result<(), String> {
    wire_round_trip(
        "PrekeyBundle",
        data,
        PrekeyBundle::decode,
        PrekeyBundle::encode,
    )
}

/// [`SessionMessage::decode`] round trip (either kind).
pub fn session_message(data: &[u8]) -> Result<(), String> {
    wire_round_trip(
        "SessionMessage",
        data,
        SessionMessage::decode,
        SessionMessage::encode,
    )
}

/// [`RatchetMessage::decode`] round trip.
pub fn ratchet_message(data: &[u8]) -> Result<(), String> {
    wire_round_trip(
        "RatchetMessage",
        data,
        RatchetMessage::decode,
        RatchetMessage::encode,
    )
}

/// [`PrekeyMessage::decode`] round trip.
pub fn prekey_message(data: &[u8]) -> Result<(), String> {
    wire_round_trip(
        "PrekeyMessage",
        data,
        PrekeyMessage::decode,
        PrekeyMessage::encode,
    )
}

/// [`GroupMessage::decode`] round trip.
pub fn group_message(data: &[u8]) -> Result<(), String> {
    wire_round_trip(
        "GroupMessage",
        data,
        GroupMessage::decode,
        GroupMessage::encode,
    )
}

/// [`SenderKeyDistribution::decode`] round trip, comparing public fields and encodings (the
/// type holds a chain key and deliberately has no `PartialEq`). The decoder verifies the
/// distribution's signature, so only the seed corpus reaches the round trip itself.
pub fn sender_key_distribution(data: &[u8]) -> Result<(), String> {
    round_trip(
        "SenderKeyDistribution",
        data,
        SenderKeyDistribution::decode,
        |d| d.encode(),
        |d| {
            (
                d.room_id().to_owned(),
                *d.sender_identity().as_bytes(),
                d.device_id().to_owned(),
                d.chain_id(),
                d.iteration(),
                *d.signing_key().as_bytes(),
            )
        },
    )
}

/// [`Account::from_pickle`]: the input as a sealed pickle and as the plaintext state.
pub fn account_pickle(data: &[u8]) -> Result<(), String> {
    pickle_round_trip(
        "Account",
        PickleKind::Account,
        data,
        Account::from_pickle,
        |a, key, rng| a.pickle_with_rng(key, rng),
        |a| {
            (
                a.identity().clone(),
                a.signed_prekey().cloned(),
                a.one_time_prekeys(),
                a.prekey_bundle(true).ok(),
            )
        },
    )
}

/// [`Session::from_pickle`]: the input as a sealed pickle and as the plaintext state.
pub fn session_pickle(data: &[u8]) -> Result<(), String> {
    pickle_round_trip(
        "Session",
        PickleKind::Session,
        data,
        Session::from_pickle,
        |s, key, rng| s.pickle_with_rng(key, rng),
        |s| {
            (
                s.session_id(),
                s.remote_identity().clone(),
                s.has_received_message(),
                s.skipped_message_keys(),
            )
        },
    )?;
    // What the restored session sends next must not depend on having been pickled.
    let key = PickleKey::new(FUZZ_PICKLE_KEY);
    let sealed = seal_fixed(PickleKind::Session, data, &key)?;
    let id = PickleId::from_bytes(FUZZ_PICKLE_ID);
    let (Ok(mut first), Ok(mut second)) = (
        Session::from_pickle(&sealed, &key, &id, 0),
        Session::from_pickle(&sealed, &key, &id, 0),
    ) else {
        return Ok(());
    };
    let next = |s: &mut Session| {
        s.encrypt_with_rng(b"fuzz", &mut FuzzRng::new(b"session next"))
            .map(|m| m.encode())
    };
    if next(&mut first) != next(&mut second) {
        return Err("Session: two copies of one pickle encrypt differently".to_owned());
    }
    Ok(())
}

/// [`GroupSession::from_pickle`]: the input as a sealed pickle and as the plaintext state.
pub fn group_session_pickle(data: &[u8]) -> Result<(), String> {
    pickle_round_trip(
        "GroupSession",
        PickleKind::Group,
        data,
        GroupSession::from_pickle,
        |g, key, rng| g.pickle_with_rng(key, rng),
        |g| {
            let d = g.distribution();
            (
                g.room_id().to_owned(),
                g.members()
                    .map(|m| (m.to_owned(), g.member_identity(m).map(|k| *k.as_bytes())))
                    .collect::<Vec<_>>(),
                d.device_id().to_owned(),
                d.chain_id(),
                d.iteration(),
                *d.signing_key().as_bytes(),
            )
        },
    )
}

/// Feeds the input, decoded as a [`SessionMessage`], to Bob's side of a live session (built
/// from a fixed seed, with a skipped message key, a closed chain and a turned DH ratchet).
///
/// Bob may accept it only if it is one of the two messages Alice really sent and Bob has not
/// seen (a fuzzer cannot forge one, but the seed corpus contains them). Afterwards both of
/// those must still decrypt exactly once, and Bob's reply must reach Alice: a refused message
/// must leave the session as it was.
pub fn session_decrypt(data: &[u8]) -> Result<(), String> {
    let Ok(message) = SessionMessage::decode(data) else {
        return Ok(());
    };
    let mut live = LiveSession::new()?;
    let mut pending = vec![
        (live.held_back.clone(), HELD_BACK_TEXT),
        (live.next.clone(), NEXT_TEXT),
    ];
    if let Ok(plaintext) = live.bob.decrypt(&message) {
        let genuine = pending
            .iter()
            .position(|(m, _)| m.ratchet_message() == message.ratchet_message())
            .ok_or("Bob accepted a message Alice never sent")?;
        let (_, text) = pending.remove(genuine);
        if plaintext.as_slice() != text {
            return Err("Bob decrypted a genuine message to the wrong plaintext".to_owned());
        }
    }
    for (m, text) in &pending {
        match live.bob.decrypt(m) {
            Ok(plaintext) if plaintext.as_slice() == *text => {}
            Ok(_) => return Err("a genuine message decrypted to the wrong plaintext".to_owned()),
            Err(e) => {
                return Err(format!(
                    "after the input, Bob cannot decrypt a genuine message: {e}"
                ));
            }
        }
    }
    for m in [&live.held_back, &live.next] {
        if !matches!(
            live.bob.decrypt(m),
            Err(crate::SessionError::DuplicateMessage)
        ) {
            return Err("a genuine message was accepted twice".to_owned());
        }
    }
    let reply = live
        .bob
        .encrypt_with_rng(b"reply", &mut FuzzRng::new(b"bob reply"))
        .map_err(|e| format!("after the input, Bob cannot encrypt: {e}"))?;
    match live.alice.decrypt(&reply) {
        Ok(plaintext) if plaintext.as_slice() == b"reply" => Ok(()),
        Ok(_) => Err("Alice decrypted Bob's reply to the wrong plaintext".to_owned()),
        Err(e) => Err(format!(
            "after the input, Alice cannot decrypt Bob's reply: {e}"
        )),
    }
}

/// The messages of the [`session_decrypt`] scenario, encoded, for its seed corpus: those Bob
/// has already decrypted (replays), Bob's own reply, and the two he has not seen yet.
pub fn session_decrypt_seeds() -> Result<Vec<Vec<u8>>, String> {
    let live = LiveSession::new()?;
    let mut seeds: Vec<Vec<u8>> = live.delivered.iter().map(SessionMessage::encode).collect();
    seeds.push(live.held_back.encode());
    seeds.push(live.next.encode());
    Ok(seeds)
}

/// Bit 3 of [`attachment_decrypt`]'s first input byte: the payload is a plaintext to encrypt.
pub const ATTACHMENT_PLAINTEXT_MODE: u8 = 0b1000;

/// First byte of a [`safety_number_qr`] input that also builds two safety numbers from keys
/// and ids the rest of the input chooses (a QR payload never starts with it).
pub const SAFETY_NUMBER_SYMMETRY_MODE: u8 = 0xff;

/// [`HEADER_LEN`] as a position offset: `at(0, -HEADER_BACK)` is an attachment's version byte.
const HEADER_BACK: i16 = 53;
const _: () = assert!(HEADER_BACK as usize == HEADER_LEN);

/// Seed of the [`FuzzRng`] every attachment check encrypts with; the key is its first draw.
const ATTACHMENT_SEED: &[u8] = b"attachment";

/// The attachment decoder (header parsing, chunking, streaming buffers): one-shot and
/// streaming decryption must agree on every blob, cut at every position.
///
/// Input layout (bytes past the end read as zero):
///
/// ```text
/// flags     1 byte: bits 0-2 = number of cuts n, bit 3 = plaintext mode,
///                   bits 4-5 = mutation (plaintext mode: 0 none, 1 flip a bit, 2 truncate,
///                   3 insert a byte), bits 6-7 ignored
/// length    u16 BE position, plaintext mode only
/// mutation  u16 BE position, plaintext mode only
/// cuts      n × u16 BE positions where the streamed input is split
/// payload   the rest
/// ```
///
/// A position `p` counts from one of four anchors: `anchor[p >> 14] + (p & 0x3fff) - 8192`
/// (at least 0, at most the stream's length). For ciphertext the anchors are the end of the
/// header, the ends of the first two full chunks and the end of the blob; for plaintext 0, one
/// and two chunks and the end; for the plaintext length 0, 1, 2 and 0 chunks. So a cut or a length
/// can sit exactly on, or a few bytes around, every boundary where buffering changes.
///
/// - Ciphertext mode: the payload is a blob under the fixed key (the seeds hold valid ones),
///   expected to hash to its own SHA-256 so that the digest check passes and the chunks are
///   reached. [`decrypt_attachment`] and [`AttachmentDecryptor`] (built with
///   [`AttachmentDecryptor::new`] and with [`AttachmentDecryptor::for_attachment`]) must all
///   refuse it, or all return the same plaintext, of `plaintext_len_for(len)` bytes.
///   Streaming must release exactly the chunks known not to be the final one, a failed
///   `finish` must not touch the output, and after an error the stream must stay closed.
/// - Plaintext mode (a fuzzer cannot forge a Poly1305 tag, so this is what reaches every
///   buffering path with authentic chunks): the payload, repeated, becomes a plaintext of the
///   chosen length (at most 2 chunks and 8 KiB). It is encrypted with a fixed-seed RNG, in one shot and streamed in pieces
///   cut at the same positions: both must give the same blob and [`AttachmentInfo`], which
///   must agree with [`ciphertext_len_for`]/[`plaintext_len_for`]. Every decryption above must
///   return the plaintext, and the mutated blob (with its own digest, so only the chunks can
///   catch it) must be refused by all of them: STREAM catches truncation and extension.
pub fn attachment_decrypt(data: &[u8]) -> Result<(), String> {
    let mut input = InputReader(data);
    let flags = input.byte();
    let cuts_len = flags & 0b111;
    if flags & ATTACHMENT_PLAINTEXT_MODE == 0 {
        let cuts: Vec<u16> = (0..cuts_len).map(|_| input.u16()).collect();
        return attachment_ciphertext(input.0, &cuts);
    }
    let (length, mutation) = (input.u16(), input.u16());
    let cuts: Vec<u16> = (0..cuts_len).map(|_| input.u16()).collect();
    attachment_plaintext(input.0, length, (flags >> 4) & 0b11, mutation, &cuts)
}

/// Seeds for [`attachment_decrypt`]: valid blobs under its key with a few cut patterns,
/// broken blobs, and plaintext-mode inputs around every chunk boundary, with each mutation.
pub fn attachment_decrypt_seeds() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let blob = |plaintext: &[u8]| {
        encrypt_attachment_with_rng(&mut FuzzRng::new(ATTACHMENT_SEED), plaintext)
            .map(|(blob, _)| blob)
            .map_err(|e| format!("encrypting a seed failed: {e}"))
    };
    let ciphertext = |cuts: &[u16], blob: &[u8]| {
        let mut input = vec![u8::try_from(cuts.len()).unwrap_or(0) & 0b111];
        input.extend(cuts.iter().flat_map(|c| c.to_be_bytes()));
        input.extend_from_slice(blob);
        input
    };
    let plaintext = |mutation_op: u8, length: u16, mutation: u16, cuts: &[u16]| {
        let flags = (u8::try_from(cuts.len()).unwrap_or(0) & 0b111)
            | ATTACHMENT_PLAINTEXT_MODE
            | (mutation_op << 4);
        let mut input = vec![flags];
        input.extend(length.to_be_bytes());
        input.extend(mutation.to_be_bytes());
        input.extend(cuts.iter().flat_map(|c| c.to_be_bytes()));
        input.extend_from_slice(b"attachment plaintext seed");
        input
    };
    let empty = blob(b"")?;
    let one = blob(b"x")?;
    let short = blob(b"hello attachment")?;
    let text: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let four_k = blob(&text)?;
    let around_header = [at(0, -20), at(0, -1), at(0, 0), at(0, 1), at(3, -16)];
    let around_chunk = [at(0, 0), at(1, -1), at(1, 0), at(1, 1)];
    let every_boundary = [at(0, -1), at(1, 0), at(2, -1), at(2, 0), at(3, -1)];

    let mut header_only = short.clone();
    header_only.truncate(HEADER_LEN);
    let mut tag_cut = short.clone();
    tag_cut.pop();
    let mut tampered = short.clone();
    if let Some(b) = tampered.last_mut() {
        *b ^= 1;
    }
    let mut wrong_version = short.clone();
    let mut wrong_chunk_size = short.clone();
    let mut tampered_prefix = short.clone();
    let mut wrong_commitment = short.clone();
    for (blob, index, value) in [
        // Version 1: the format before the key commitment.
        (&mut wrong_version, 0, 1),
        (&mut wrong_chunk_size, 1, 17),
        (&mut tampered_prefix, 5, 0),
        (&mut wrong_commitment, HEADER_LEN - 1, 0),
    ] {
        if let Some(b) = blob.get_mut(index) {
            *b = value;
        }
    }

    Ok(vec![
        ("empty", Vec::new()),
        ("ciphertext-empty-plaintext", ciphertext(&[], &empty)),
        (
            "ciphertext-empty-plaintext-split",
            ciphertext(&around_header, &empty),
        ),
        ("ciphertext-one-byte", ciphertext(&[at(0, 0)], &one)),
        ("ciphertext-short-split", ciphertext(&around_header, &short)),
        (
            "ciphertext-4000",
            ciphertext(&[at(0, 2000), at(3, -1)], &four_k),
        ),
        ("ciphertext-header-only", ciphertext(&[], &header_only)),
        ("ciphertext-tag-cut", ciphertext(&[], &tag_cut)),
        (
            "ciphertext-tampered-tag",
            ciphertext(&[at(0, 3)], &tampered),
        ),
        (
            "ciphertext-tampered-prefix",
            ciphertext(&[], &tampered_prefix),
        ),
        ("ciphertext-wrong-version", ciphertext(&[], &wrong_version)),
        (
            "ciphertext-wrong-commitment",
            ciphertext(&[at(0, -1)], &wrong_commitment),
        ),
        (
            "ciphertext-wrong-chunk-size",
            ciphertext(&[at(0, -20)], &wrong_chunk_size),
        ),
        ("plaintext-empty", plaintext(0, at(0, 0), 0, &around_header)),
        (
            "plaintext-one-byte",
            plaintext(0, at(0, 1), 0, &around_header),
        ),
        (
            "plaintext-chunk-minus-one",
            plaintext(0, at(1, -1), 0, &around_chunk),
        ),
        (
            "plaintext-one-chunk",
            plaintext(0, at(1, 0), 0, &around_chunk),
        ),
        (
            "plaintext-chunk-plus-one",
            plaintext(0, at(1, 1), 0, &around_chunk),
        ),
        (
            "plaintext-two-chunks",
            plaintext(0, at(2, 0), 0, &every_boundary),
        ),
        (
            "plaintext-two-chunks-plus-one",
            plaintext(0, at(2, 1), 0, &every_boundary),
        ),
        ("plaintext-flip-tag", plaintext(1, at(1, 0), at(3, -1), &[])),
        (
            "plaintext-flip-version",
            plaintext(1, at(0, 5), at(0, -HEADER_BACK), &[]),
        ),
        (
            "plaintext-flip-commitment",
            plaintext(1, at(0, 5), at(0, -1), &[]),
        ),
        (
            "plaintext-flip-chunk-counter-region",
            plaintext(1, at(1, 1), at(1, -1), &around_chunk),
        ),
        (
            "plaintext-drop-final-chunk",
            plaintext(2, at(2, 5), at(2, 0), &every_boundary),
        ),
        (
            "plaintext-drop-tag-byte",
            plaintext(2, at(0, 7), at(3, -1), &[]),
        ),
        (
            "plaintext-append-after-full-chunk",
            plaintext(3, at(1, 0), at(3, 0), &around_chunk),
        ),
        (
            "plaintext-insert-in-header",
            plaintext(3, at(0, 7), at(0, -1), &[]),
        ),
    ])
}

fn attachment_ciphertext(blob: &[u8], cuts: &[u16]) -> Result<(), String> {
    let len = len_u64(blob.len());
    let info = AttachmentInfo {
        key: fuzz_attachment_key()?,
        digest: sha256(blob),
        ciphertext_len: len,
        plaintext_len: plaintext_len_for(len).unwrap_or(0),
    };
    if let Some(plaintext) = decrypt_every_way(blob, &info, cuts)?
        && plaintext_len_for(len) != Some(len_u64(plaintext.len()))
    {
        return Err(format!(
            "a {len}-byte blob decrypted to {} bytes, plaintext_len_for says {:?}",
            plaintext.len(),
            plaintext_len_for(len)
        ));
    }
    Ok(())
}

fn attachment_plaintext(
    payload: &[u8],
    length: u16,
    mutation_op: u8,
    mutation: u16,
    cuts: &[u16],
) -> Result<(), String> {
    // Two chunks and one byte reach every path three would; anchor 3 reads as 0, which also
    // keeps most executions cheap.
    let len = position(length, [0, CHUNK_SIZE, 2 * CHUNK_SIZE, 0]);
    let plaintext: Vec<u8> = if payload.is_empty() {
        vec![0; len]
    } else {
        payload.iter().copied().cycle().take(len).collect()
    };
    let (blob, info) = encrypt_attachment_with_rng(&mut FuzzRng::new(ATTACHMENT_SEED), &plaintext)
        .map_err(|e| format!("encrypting {len} bytes failed: {e}"))?;
    let len64 = len_u64(len);
    if info.plaintext_len != len64
        || info.ciphertext_len != len_u64(blob.len())
        || ciphertext_len_for(len64) != Some(info.ciphertext_len)
        || plaintext_len_for(info.ciphertext_len) != Some(len64)
        || info.digest != sha256(&blob)
    {
        return Err(format!(
            "the info of a {len}-byte plaintext does not describe its {}-byte blob",
            blob.len()
        ));
    }

    // Streaming encryption, cut at the same positions (counted in the plaintext).
    let mut encryptor = AttachmentEncryptor::new_with_rng(&mut FuzzRng::new(ATTACHMENT_SEED))
        .map_err(|e| format!("AttachmentEncryptor::new_with_rng failed: {e}"))?;
    let mut streamed = Vec::new();
    let mut consumed = 0usize;
    let anchors = [0, CHUNK_SIZE, 2 * CHUNK_SIZE, len];
    for piece in split_at_positions(&plaintext, cuts, anchors) {
        encryptor
            .update(piece, &mut streamed)
            .map_err(|e| format!("AttachmentEncryptor::update failed: {e}"))?;
        consumed += piece.len();
        // A chunk is sealed as soon as a byte after it arrives, and not before.
        let sealed = consumed.saturating_sub(1) / CHUNK_SIZE;
        if streamed.len() != HEADER_LEN + sealed * ENCRYPTED_CHUNK_LEN {
            return Err(format!(
                "AttachmentEncryptor wrote {} bytes after {consumed} plaintext bytes, expected \
                 the header and {sealed} chunks",
                streamed.len()
            ));
        }
    }
    let streamed_info = encryptor
        .finish(&mut streamed)
        .map_err(|e| format!("AttachmentEncryptor::finish failed: {e}"))?;
    if streamed != blob || streamed_info != info {
        return Err(format!(
            "streaming encryption of {len} bytes differs from one-shot encryption"
        ));
    }

    match decrypt_every_way(&blob, &info, cuts)? {
        Some(decrypted) if decrypted == plaintext => {}
        Some(_) => return Err(format!("a {len}-byte plaintext decrypted to other bytes")),
        None => return Err(format!("the blob of a {len}-byte plaintext is refused")),
    }

    let Some(mutated) = mutate(&blob, mutation_op, mutation) else {
        return Ok(());
    };
    let mutated_len = len_u64(mutated.len());
    let mutated_info = AttachmentInfo {
        key: info.key.clone(),
        digest: sha256(&mutated),
        ciphertext_len: mutated_len,
        plaintext_len: plaintext_len_for(mutated_len).unwrap_or(0),
    };
    if decrypt_every_way(&mutated, &mutated_info, cuts)?.is_some() {
        return Err(format!(
            "a {}-byte blob was accepted after mutation {mutation_op} at {}",
            blob.len(),
            position(mutation, ciphertext_anchors(blob.len()))
        ));
    }
    Ok(())
}

/// Decrypts `blob` in one shot and streamed (without and with the lengths of `info`), cut at
/// `cuts`; all must agree. Returns the plaintext, or `None` if they all refuse the blob.
fn decrypt_every_way(
    blob: &[u8],
    info: &AttachmentInfo,
    cuts: &[u16],
) -> Result<Option<Vec<u8>>, String> {
    let one_shot = decrypt_attachment(blob, info).ok().map(|p| p.to_vec());
    let pieces = split_at_positions(blob, cuts, ciphertext_anchors(blob.len()));
    let mut decryptors = vec![(
        "AttachmentDecryptor::new",
        AttachmentDecryptor::new(&info.key, &info.digest),
    )];
    match AttachmentDecryptor::for_attachment(info) {
        Ok(decryptor) => decryptors.push(("AttachmentDecryptor::for_attachment", decryptor)),
        Err(e) if one_shot.is_some() => {
            return Err(format!(
                "for_attachment refuses lengths that decrypt_attachment accepts: {e}"
            ));
        }
        Err(_) => {}
    }
    for (what, decryptor) in decryptors {
        let streamed = stream_decrypt(what, decryptor, &pieces)?;
        if streamed != one_shot {
            let verdict = |r: &Option<Vec<u8>>| match r {
                Some(p) => format!("returned {} bytes", p.len()),
                None => "refused it".to_owned(),
            };
            return Err(format!(
                "{what} {} where decrypt_attachment {} ({}-byte blob, {} pieces)",
                verdict(&streamed),
                verdict(&one_shot),
                blob.len(),
                pieces.len()
            ));
        }
    }
    Ok(one_shot)
}

/// Feeds `pieces` to `decryptor`, checking what it releases on the way.
fn stream_decrypt(
    what: &str,
    mut decryptor: AttachmentDecryptor,
    pieces: &[&[u8]],
) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut received = 0usize;
    for piece in pieces {
        if decryptor.update(piece, &mut out).is_err() {
            let before = out.len();
            if decryptor.update(&[], &mut out)
                != Err(crate::AttachmentError::AttachmentStreamClosed)
                || decryptor.finish(&mut out) != Err(crate::AttachmentError::AttachmentStreamClosed)
                || out.len() != before
            {
                return Err(format!("{what}: the stream is still usable after an error"));
            }
            return Ok(None);
        }
        received += piece.len();
        // Exactly the chunks followed by at least one more byte are known not to be the last.
        let released = received.saturating_sub(HEADER_LEN + 1) / ENCRYPTED_CHUNK_LEN;
        if out.len() != released * CHUNK_SIZE {
            return Err(format!(
                "{what}: released {} bytes after {received} ciphertext bytes, expected \
                 {released} chunks",
                out.len()
            ));
        }
    }
    let before = out.len();
    match decryptor.finish(&mut out) {
        Ok(()) => Ok(Some(out)),
        Err(_) if out.len() == before => Ok(None),
        Err(e) => Err(format!(
            "{what}: finish failed ({e}) but changed the output"
        )),
    }
}

/// The attachment key every attachment check uses: the first draw of its fixed-seed RNG.
fn fuzz_attachment_key() -> Result<AttachmentKey, String> {
    encrypt_attachment_with_rng(&mut FuzzRng::new(ATTACHMENT_SEED), b"")
        .map(|(_, info)| info.key)
        .map_err(|e| format!("encrypting an empty attachment failed: {e}"))
}

/// `blob` with one bit flipped, truncated, or with a byte inserted at `at`; `None` for no
/// mutation.
fn mutate(blob: &[u8], mutation_op: u8, at: u16) -> Option<Vec<u8>> {
    let at = position(at, ciphertext_anchors(blob.len()));
    let last = blob.len().checked_sub(1)?;
    let mut out = blob.to_vec();
    match mutation_op {
        1 => *out.get_mut(at.min(last))? ^= 1,
        2 => out.truncate(at.min(last)),
        3 => out.insert(at.min(blob.len()), 0),
        _ => return None,
    }
    Some(out)
}

fn ciphertext_anchors(len: usize) -> [usize; 4] {
    [
        HEADER_LEN,
        HEADER_LEN + ENCRYPTED_CHUNK_LEN,
        HEADER_LEN + 2 * ENCRYPTED_CHUNK_LEN,
        len,
    ]
}

/// `anchors[p >> 14] + (p & 0x3fff) - 8192`, at least 0.
fn position(p: u16, anchors: [usize; 4]) -> usize {
    let [a0, a1, a2, a3] = anchors;
    let anchor = match p >> 14 {
        0 => a0,
        1 => a1,
        2 => a2,
        _ => a3,
    };
    anchor
        .saturating_add(usize::from(p & 0x3fff))
        .saturating_sub(0x2000)
}

/// The position spec for `anchor` (0..=3) plus `offset` (−8192..=8191), for seeds.
fn at(anchor: u16, offset: i16) -> u16 {
    let offset = u16::try_from(0x2000 + i32::from(offset)).unwrap_or(0) & 0x3fff;
    (anchor << 14) | offset
}

/// `data` cut at the given positions (sorted, capped at its length); empty pieces included.
fn split_at_positions<'a>(data: &'a [u8], cuts: &[u16], anchors: [usize; 4]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| position(*c, anchors).min(data.len()))
        .collect();
    points.sort_unstable();
    points.push(data.len());
    let mut start = 0;
    let mut pieces = Vec::with_capacity(points.len());
    for end in points {
        pieces.push(data.get(start..end).unwrap_or_default());
        start = end;
    }
    pieces
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Reads a fuzz input front to back; bytes past its end read as zero.
struct InputReader<'a>(&'a [u8]);

impl InputReader<'_> {
    fn byte(&mut self) -> u8 {
        let Some((first, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        *first
    }

    fn u16(&mut self) -> u16 {
        let high = self.byte();
        u16::from_be_bytes([high, self.byte()])
    }
}

/// [`SafetyNumber::compare_qr`] of the input against a fixed safety number: it must refuse
/// exactly the inputs that are not a version-1 payload of [`QR_PAYLOAD_LEN`] bytes, and match
/// exactly one payload, the one the other party of that safety number shows.
///
/// An input starting with [`SAFETY_NUMBER_SYMMETRY_MODE`] also builds the safety number of two
/// parties from the rest (`id_a length (1 byte) || key_a (64) || key_b (64) || id_a || id_b`)
/// on both sides with [`SafetyNumber::from_key_bytes`]; keys cut short by the end of the input
/// must be refused with [`crate::SafetyNumberError::InvalidKeyLength`]. The digits must be equal,
/// each side's QR payload must match on the other side, and a payload matches its own side only
/// when both parties are the same (fingerprints are injective: every iteration hashes the key
/// again). That costs 4 × 5200 SHA-512, so only inputs that ask for it pay it.
pub fn safety_number_qr(data: &[u8]) -> Result<(), String> {
    let (fixed, peer_payload) = fixed_safety_number();
    let well_formed = data.len() == QR_PAYLOAD_LEN && data.first() == Some(&safety_number::VERSION);
    match fixed.compare_qr(data) {
        Ok(same) if well_formed => {
            if same != (data == peer_payload.as_slice()) {
                return Err(format!(
                    "compare_qr returned {same} for {} the peer's payload",
                    if same { "other than" } else { "exactly" }
                ));
            }
        }
        Ok(same) => {
            return Err(format!(
                "compare_qr returned Ok({same}) for a malformed {}-byte payload",
                data.len()
            ));
        }
        Err(e) if well_formed => {
            return Err(format!("compare_qr refused a well-formed payload: {e}"));
        }
        Err(e) => {
            if let Some(&got) = data.first()
                && got != safety_number::VERSION
                && e != crate::SafetyNumberError::Decode(crate::DecodeError::UnsupportedVersion {
                    expected: safety_number::VERSION,
                    got,
                })
            {
                return Err(format!("compare_qr: version {got} refused with {e}"));
            }
        }
    }
    match data.split_first() {
        Some((&SAFETY_NUMBER_SYMMETRY_MODE, rest)) => safety_number_symmetry(rest),
        _ => Ok(()),
    }
}

/// Seeds for [`safety_number_qr`]: the matching payload, near misses, malformed payloads and
/// symmetry-mode inputs.
pub fn safety_number_qr_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (fixed, peer_payload) = fixed_safety_number();
    let own = fixed.qr_payload();
    let with = |index: usize, value: u8| {
        let mut out = peer_payload.clone();
        if let Some(b) = out.get_mut(index) {
            *b = value;
        }
        out
    };
    let mut trailing = peer_payload.clone();
    trailing.push(0);
    let truncated = peer_payload
        .get(..QR_PAYLOAD_LEN - 1)
        .unwrap_or_default()
        .to_vec();
    let symmetry =
        |id_a: &[u8], key_a: [u8; KEY_BYTES_LEN], key_b: [u8; KEY_BYTES_LEN], id_b: &[u8]| {
            let mut out = vec![
                SAFETY_NUMBER_SYMMETRY_MODE,
                u8::try_from(id_a.len()).unwrap_or(0),
            ];
            out.extend_from_slice(&key_a);
            out.extend_from_slice(&key_b);
            out.extend_from_slice(id_a);
            out.extend_from_slice(id_b);
            out
        };
    vec![
        ("empty", Vec::new()),
        ("peer-payload", peer_payload.clone()),
        ("own-payload", own),
        ("peer-payload-last-byte", with(QR_PAYLOAD_LEN - 1, 0)),
        ("peer-payload-first-half", with(1, 0)),
        ("wrong-version", with(0, 1)),
        ("truncated", truncated),
        ("trailing-byte", trailing),
        ("version-only", vec![safety_number::VERSION]),
        (
            "symmetry-two-parties",
            symmetry(b"user:1", [1; KEY_BYTES_LEN], [2; KEY_BYTES_LEN], b"user:2"),
        ),
        (
            "symmetry-same-party",
            symmetry(b"user:1", [1; KEY_BYTES_LEN], [1; KEY_BYTES_LEN], b"user:1"),
        ),
        (
            "symmetry-same-key",
            symmetry(b"user:1", [1; KEY_BYTES_LEN], [1; KEY_BYTES_LEN], b"user:2"),
        ),
        ("symmetry-short", vec![SAFETY_NUMBER_SYMMETRY_MODE, 0, 7]),
    ]
}

/// The safety number of two fixed parties at the local side, and the QR payload the remote
/// side shows. Computed once per process (2 × 2 × 5200 SHA-512): public test data only.
fn fixed_safety_number() -> &'static (SafetyNumber, Vec<u8>) {
    static FIXED: OnceLock<(SafetyNumber, Vec<u8>)> = OnceLock::new();
    FIXED.get_or_init(|| {
        let (local_key, local_id) = ([0x11; KEY_BYTES_LEN], b"user:fuzz-local");
        let (remote_key, remote_id) = ([0x22; KEY_BYTES_LEN], b"user:fuzz-remote");
        let local = SafetyNumber::from_keys(&local_key, local_id, &remote_key, remote_id);
        let remote = SafetyNumber::from_keys(&remote_key, remote_id, &local_key, local_id);
        (local, remote.qr_payload())
    })
}

fn safety_number_symmetry(data: &[u8]) -> Result<(), String> {
    let mut input = InputReader(data);
    let id_a_len = usize::from(input.byte());
    let (key_a, rest) = input.0.split_at(input.0.len().min(KEY_BYTES_LEN));
    let (key_b, rest) = rest.split_at(rest.len().min(KEY_BYTES_LEN));
    let (id_a, id_b) = rest.split_at(rest.len().min(id_a_len));
    let (at_a, at_b) = match (
        SafetyNumber::from_key_bytes(key_a, id_a, key_b, id_b),
        SafetyNumber::from_key_bytes(key_b, id_b, key_a, id_a),
    ) {
        (Ok(at_a), Ok(at_b)) => (at_a, at_b),
        (Err(e_a), Err(e_b)) => {
            // Each side reports the first of its two keys that is short.
            let refusal =
                |first: &[u8], second: &[u8]| crate::SafetyNumberError::InvalidKeyLength {
                    expected: KEY_BYTES_LEN,
                    got: if first.len() == KEY_BYTES_LEN {
                        second.len()
                    } else {
                        first.len()
                    },
                };
            if e_a != refusal(key_a, key_b) || e_b != refusal(key_b, key_a) {
                return Err(format!("short keys refused with {e_a} / {e_b}"));
            }
            return Ok(());
        }
        (a, b) => return Err(format!("the two sides disagree on the keys: {a:?} / {b:?}")),
    };

    let digits = at_a.digits();
    if digits != at_b.digits() {
        return Err("the two sides compute different digits".to_owned());
    }
    let (low, high) = digits.split_at(digits.len().min(safety_number::DIGITS_LEN / 2));
    if digits.len() != safety_number::DIGITS_LEN
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || low > high
        || at_a.display().len() != safety_number::DIGITS_LEN + 11
        || at_a.display().replace(' ', "") != digits
    {
        return Err(format!("malformed safety number {at_a:?}"));
    }

    let (payload_a, payload_b) = (at_a.qr_payload(), at_b.qr_payload());
    let half = |p: &[u8], i: usize| p.get(1 + 32 * i..33 + 32 * i).unwrap_or_default().to_vec();
    let swapped: Vec<u8> = [
        vec![safety_number::VERSION],
        half(&payload_a, 1),
        half(&payload_a, 0),
    ]
    .concat();
    if payload_a.len() != QR_PAYLOAD_LEN || payload_b != swapped {
        return Err("the two sides' QR payloads are not each other's halves swapped".to_owned());
    }
    if at_a.compare_qr(&payload_b) != Ok(true) || at_b.compare_qr(&payload_a) != Ok(true) {
        return Err("a side does not accept the other side's QR payload".to_owned());
    }
    let same_party = key_a == key_b && id_a == id_b;
    if at_a.compare_qr(&payload_a) != Ok(same_party)
        || (half(&payload_a, 0) == half(&payload_a, 1)) != same_party
        || (at_a == at_b) != same_party
    {
        return Err(format!(
            "a QR payload matches its own side {}",
            if same_party {
                "not even for one party"
            } else {
                "for two different parties"
            }
        ));
    }
    Ok(())
}

/// Opens a pickle sealed under [`FUZZ_PICKLE_KEY`] and returns its plaintext state, to write
/// seeds for the pickle checks (which also try their input as plaintext state).
pub fn open_fuzz_pickle(sealed: &[u8]) -> Result<Vec<u8>, String> {
    let key = PickleKey::new(FUZZ_PICKLE_KEY);
    let kind = match sealed.get(1) {
        Some(1) => PickleKind::Account,
        Some(2) => PickleKind::Session,
        Some(3) => PickleKind::OutboundGroup,
        Some(4) => PickleKind::InboundGroup,
        Some(5) => PickleKind::Group,
        other => return Err(format!("not a pickle kind: {other:?}")),
    };
    pickle::open_unchecked(kind, sealed, &key)
        .map(|(_, plain)| plain.to_vec())
        .map_err(|e| e.to_string())
}

/// Decode → encode → decode for wire types with a (public, derived) `PartialEq`.
fn wire_round_trip<T: Clone + PartialEq + fmt::Debug, E: AsRef<[u8]>>(
    what: &str,
    data: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, crate::DecodeError>,
    encode: impl Fn(&T) -> E,
) -> Result<(), String> {
    round_trip(what, data, decode, encode, T::clone)
}

/// Decode → encode → decode, comparing the values through `view`.
fn round_trip<T, E: AsRef<[u8]>, V: PartialEq + fmt::Debug>(
    what: &str,
    data: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, crate::DecodeError>,
    encode: impl Fn(&T) -> E,
    view: impl Fn(&T) -> V,
) -> Result<(), String> {
    let Ok(first) = decode(data) else {
        return Ok(());
    };
    let canonical = encode(&first);
    let canonical = canonical.as_ref();
    if canonical != data {
        return Err(format!(
            "{what}: accepted an input ({} bytes) that is not the encoding of what it decoded \
             to ({} bytes)",
            data.len(),
            canonical.len()
        ));
    }
    let second =
        decode(canonical).map_err(|e| format!("{what}: its own encoding does not decode: {e}"))?;
    let (a, b) = (view(&first), view(&second));
    if a != b {
        return Err(format!(
            "{what}: decodes to {b:?} after the round trip, {a:?} before"
        ));
    }
    if encode(&second).as_ref() != canonical {
        return Err(format!("{what}: the re-decoded value encodes differently"));
    }
    Ok(())
}

/// Opens `data` as a sealed pickle and as the plaintext state of one (sealed here), and checks
/// the round trip of whatever opens.
fn pickle_round_trip<T, V: PartialEq + fmt::Debug>(
    what: &str,
    kind: PickleKind,
    data: &[u8],
    open: impl Fn(&[u8], &PickleKey, &PickleId, u64) -> Result<T, crate::PickleError>,
    pickle: impl Fn(&mut T, &PickleKey, &mut FuzzRng) -> Result<SealedPickle, crate::PickleError>,
    view: impl Fn(&T) -> V,
) -> Result<(), String> {
    let key = PickleKey::new(FUZZ_PICKLE_KEY);
    let as_plaintext = seal_fixed(kind, data, &key)?;
    for input in [data, as_plaintext.as_slice()] {
        // A fuzzer cannot guess a pickle id: open the input as the object its header names.
        let (id, counter) =
            pickle::read_header(kind, input).unwrap_or((PickleId::from_bytes(FUZZ_PICKLE_ID), 0));
        let Ok(mut first) = open(input, &key, &id, counter) else {
            continue;
        };
        let repickle = |value: &mut T, previous: u64| {
            let sealed = match pickle(value, &key, &mut FuzzRng::new(b"pickle nonce")) {
                Err(crate::PickleError::ChainExhausted) if previous == u64::MAX => return Ok(None),
                other => other.map_err(|e| {
                    format!("{what}: an opened pickle cannot be pickled again: {e}")
                })?,
            };
            if sealed.pickle_id() != id || Some(sealed.counter()) != previous.checked_add(1) {
                return Err(format!(
                    "{what}: re-pickled as {:?} at counter {}, opened as {id:?} at {previous}",
                    sealed.pickle_id(),
                    sealed.counter()
                ));
            }
            Ok(Some(sealed))
        };
        let Some(sealed) = repickle(&mut first, counter)? else {
            continue;
        };
        if open(input, &key, &id, sealed.counter()).is_ok() {
            return Err(format!("{what}: an older pickle opens after a newer one"));
        }
        let mut second = open(sealed.as_bytes(), &key, &id, sealed.counter())
            .map_err(|e| format!("{what}: its own pickle does not open: {e}"))?;
        let (a, b) = (view(&first), view(&second));
        if a != b {
            return Err(format!(
                "{what}: state after re-pickling {b:?} differs from {a:?}"
            ));
        }
        let Some(again) = repickle(&mut second, sealed.counter())? else {
            continue;
        };
        if opened_state(kind, &sealed)? != opened_state(kind, &again)? {
            return Err(format!(
                "{what}: pickling the reopened object gives another state"
            ));
        }
    }
    Ok(())
}

/// The plaintext state of a pickle sealed under [`FUZZ_PICKLE_KEY`].
fn opened_state(kind: PickleKind, sealed: &SealedPickle) -> Result<Vec<u8>, String> {
    pickle::open_unchecked(kind, sealed.as_bytes(), &PickleKey::new(FUZZ_PICKLE_KEY))
        .map(|(_, plain)| plain.to_vec())
        .map_err(|e| format!("a fresh pickle does not open: {e}"))
}

/// Seals `plaintext` as a pickle of `kind`, object [`FUZZ_PICKLE_ID`], counter 1, with a fixed
/// nonce.
fn seal_fixed(kind: PickleKind, plaintext: &[u8], key: &PickleKey) -> Result<Vec<u8>, String> {
    pickle::seal_raw(
        kind,
        &PickleId::from_bytes(FUZZ_PICKLE_ID),
        1,
        plaintext,
        key,
        &mut FuzzRng::new(b"pickle nonce"),
    )
    .map_err(|e| format!("sealing failed: {e}"))
}

const HELD_BACK_TEXT: &[u8] = b"m1, held back";
const NEXT_TEXT: &[u8] = b"m4, not yet sent";

/// Alice and Bob after a few messages each way, built from fixed seeds.
struct LiveSession {
    alice: Session,
    bob: Session,
    /// Sent by Alice, seen by Bob (replays), and Bob's reply to Alice.
    delivered: Vec<SessionMessage>,
    /// Alice's second message (a prekey message), not delivered: Bob holds its skipped key.
    held_back: SessionMessage,
    /// Alice's next message on her current chain, not delivered.
    next: SessionMessage,
}

impl LiveSession {
    fn new() -> Result<Self, String> {
        Self::build().map_err(|e| format!("building the live session failed: {e}"))
    }

    fn build() -> crate::Result<Self> {
        let rng = &mut FuzzRng::new(b"live session");
        let alice_account = Account::new_with_rng(rng)?;
        let mut bob_account = Account::new_with_rng(rng)?;
        bob_account.generate_signed_prekey_with_rng(1_700_000_000, rng)?;
        bob_account.generate_one_time_prekeys_with_rng(2, rng)?;
        let bundle = bob_account.prekey_bundle(true)?;
        let mut alice = alice_account.create_outbound_session_with_rng(&bundle, rng)?;

        let m0 = alice.encrypt_with_rng(b"m0", rng)?;
        let held_back = alice.encrypt_with_rng(HELD_BACK_TEXT, rng)?;
        let m2 = alice.encrypt_with_rng(b"m2", rng)?;
        let SessionMessage::Prekey(first) = &m0 else {
            return Err(crate::Error::InvalidField);
        };
        let (mut bob, _) = bob_account.create_inbound_session(first)?;
        // m1 skipped: Bob keeps its key.
        bob.decrypt(&m2)?;
        let r0 = bob.encrypt_with_rng(b"r0", rng)?;
        alice.decrypt(&r0)?;
        // Alice's DH ratchet turns: Bob closes her first chain.
        let m3 = alice.encrypt_with_rng(b"m3", rng)?;
        bob.decrypt(&m3)?;
        let next = alice.encrypt_with_rng(NEXT_TEXT, rng)?;
        Ok(Self {
            alice,
            bob,
            delivered: vec![m0, m2, r0, m3],
            held_back,
            next,
        })
    }
}

/// Reproducible bytes: SHA-256 of a seed and a 64-bit block counter. NOT random: it exists so
/// that a fuzz input always meets the same keys and a crash replays exactly, and so that the
/// seed-corpus generator (`examples/gen_fuzz_corpus.rs`) writes the same files on every run.
/// Never use it for real keys.
pub struct FuzzRng {
    seed: &'static [u8],
    block: u64,
}

impl FuzzRng {
    /// The stream for `seed`, from its first block.
    #[must_use]
    pub fn new(seed: &'static [u8]) -> Self {
        Self { seed, block: 0 }
    }
}

impl TryRng for FuzzRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(32) {
            let mut input = self.seed.to_vec();
            input.extend_from_slice(&self.block.to_be_bytes());
            self.block = self.block.wrapping_add(1);
            for (d, s) in chunk.iter_mut().zip(sha256(&input)) {
                *d = s;
            }
        }
        Ok(())
    }
}

impl TryCryptoRng for FuzzRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_session_is_reproducible_and_its_messages_pass() {
        let seeds = session_decrypt_seeds().unwrap();
        assert_eq!(seeds, session_decrypt_seeds().unwrap());
        assert_eq!(seeds.len(), 6);
        for seed in &seeds {
            session_decrypt(seed).unwrap();
        }
    }

    #[test]
    fn session_decrypt_passes_tampered_messages_that_are_refused() {
        let seeds = session_decrypt_seeds().unwrap();
        let mut forged = seeds.last().unwrap().clone();
        *forged.last_mut().unwrap() ^= 1;
        session_decrypt(&forged).unwrap();
    }

    #[test]
    fn round_trip_reports_non_canonical_acceptance() {
        // A decoder that ignores a trailing byte must be reported.
        let lenient = |d: &[u8]| -> Result<u8, crate::DecodeError> {
            d.first().copied().ok_or(crate::DecodeError::InvalidField)
        };
        let err = wire_round_trip("lenient", &[1, 2], lenient, |v: &u8| vec![*v]).unwrap_err();
        assert!(err.contains("not the encoding"), "{err}");
        wire_round_trip("lenient", &[1], lenient, |v: &u8| vec![*v]).unwrap();
        wire_round_trip("lenient", &[], lenient, |v: &u8| vec![*v]).unwrap();
    }

    #[test]
    fn pickle_checks_accept_real_pickles_both_ways() {
        let key = PickleKey::new(FUZZ_PICKLE_KEY);
        let mut account = Account::new_with_rng(&mut FuzzRng::new(b"test")).unwrap();
        account.generate_signed_prekey(1).unwrap();
        account.generate_one_time_prekeys(3).unwrap();
        let sealed = account.pickle(&key).unwrap().into_bytes();
        account_pickle(&sealed).unwrap();
        let plain = open_fuzz_pickle(&sealed).unwrap();
        let sealed_here = seal_fixed(PickleKind::Account, &plain, &key).unwrap();
        let id = PickleId::from_bytes(FUZZ_PICKLE_ID);
        assert!(Account::from_pickle(&sealed_here, &key, &id, 1).is_ok());
        assert!(matches!(
            Account::from_pickle(&sealed_here, &key, &id, 2),
            Err(crate::PickleError::PickleRolledBack { .. })
        ));
        account_pickle(&plain).unwrap();
        // A pickle of another kind is refused, not confused.
        session_pickle(&sealed).unwrap();
    }

    #[test]
    fn positions_count_from_their_anchor() {
        let anchors = [10, 100, 1000, 5];
        for (anchor, offset, expected) in [(0, 0, 10), (0, -10, 0), (0, -11, 0), (1, 1, 101)] {
            assert_eq!(position(at(anchor, offset), anchors), expected);
        }
        assert_eq!(position(at(2, 8191), anchors), 1000 + 8191);
        assert_eq!(position(at(3, -1), anchors), 4);
        let pieces = split_at_positions(b"abcdef", &[at(0, -8), at(0, -9), at(3, 9)], anchors);
        assert_eq!(pieces, [&b"a"[..], b"b", b"cdef", b""]);
    }

    #[test]
    fn attachment_seeds_pass_and_valid_blobs_decrypt() {
        let seeds = attachment_decrypt_seeds().unwrap();
        assert_eq!(seeds, attachment_decrypt_seeds().unwrap());
        for (name, seed) in &seeds {
            attachment_decrypt(seed).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(seed.len() < 8192, "{name}");
        }
        // The valid ciphertext seeds reach the plaintext: the fixed key is the one they use.
        let key = fuzz_attachment_key().unwrap();
        for name in ["ciphertext-empty-plaintext", "ciphertext-short-split"] {
            let (_, seed) = seeds.iter().find(|(n, _)| *n == name).unwrap();
            let mut input = InputReader(seed);
            let cuts: Vec<u16> = (0..input.byte() & 0b111).map(|_| input.u16()).collect();
            let blob = input.0;
            let len = len_u64(blob.len());
            let info = AttachmentInfo {
                key: key.clone(),
                digest: sha256(blob),
                ciphertext_len: len,
                plaintext_len: plaintext_len_for(len).unwrap(),
            };
            assert!(
                decrypt_every_way(blob, &info, &cuts).unwrap().is_some(),
                "{name}"
            );
        }
    }

    #[test]
    fn attachment_plaintext_mode_covers_every_boundary() {
        let lengths = [
            at(0, 0),
            at(0, 1),
            at(1, -1),
            at(1, 0),
            at(1, 1),
            at(2, 0),
            at(2, 1),
        ];
        let cuts = [
            at(0, -HEADER_BACK),
            at(0, 0),
            at(1, -1),
            at(1, 0),
            at(1, 16),
            at(2, 0),
            at(3, -1),
        ];
        for length in lengths {
            for op in 0..4u8 {
                for mutation in [
                    at(0, -HEADER_BACK),
                    at(0, -1),
                    at(1, 0),
                    at(2, 0),
                    at(3, -1),
                    at(3, 0),
                ] {
                    let mut input = vec![ATTACHMENT_PLAINTEXT_MODE | (op << 4) | 7];
                    input.extend(length.to_be_bytes());
                    input.extend(mutation.to_be_bytes());
                    input.extend(cuts.iter().flat_map(|c| c.to_be_bytes()));
                    input.extend_from_slice(b"xyz");
                    attachment_decrypt(&input).unwrap();
                }
            }
        }
    }

    #[test]
    fn mutations_change_the_blob() {
        let blob = vec![7u8; 40];
        for op in 1..4 {
            for spec in [at(0, -30), at(0, 0), at(3, -1), at(3, 0), u16::MAX] {
                assert_ne!(mutate(&blob, op, spec).unwrap(), blob, "op {op}");
            }
        }
        assert_eq!(mutate(&blob, 0, 0), None);
        assert_eq!(mutate(&[], 1, 0), None);
    }

    #[test]
    fn safety_number_seeds_pass_and_only_the_peer_payload_matches() {
        let seeds = safety_number_qr_seeds();
        for (name, seed) in &seeds {
            safety_number_qr(seed).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let (fixed, peer_payload) = fixed_safety_number();
        assert_eq!(fixed.compare_qr(peer_payload), Ok(true));
        assert_eq!(fixed.compare_qr(&fixed.qr_payload()), Ok(false));
    }

    #[test]
    fn fuzz_rng_is_deterministic_and_seeded() {
        let mut a = [0u8; 40];
        let mut b = [0u8; 40];
        FuzzRng::new(b"x").try_fill_bytes(&mut a).unwrap();
        FuzzRng::new(b"x").try_fill_bytes(&mut b).unwrap();
        assert_eq!(a, b);
        FuzzRng::new(b"y").try_fill_bytes(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a[..32], a[8..40]);
    }
}
