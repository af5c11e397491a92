//! Protocol test vectors of `docs/protocol.md` ("Test vectors"), checked byte for byte.
//!
//! Every object is generated through the public API with [`TestRng`], a deterministic SHA-256
//! counter stream, and compared with `tests/vectors/protocol.txt`. Independently, each message
//! is rebuilt from the specification's formulas out of the primitives alone (X3DH, `KDF_RK`,
//! `KDF_CK`, the AEAD key/nonce expansion, header and associated-data layout, the group
//! signature, the sealed pickle layout), so the vectors check the document, not only the code.
//! The vectors are then decoded and decrypted by freshly generated accounts, and every vector
//! line must appear verbatim in `docs/protocol.md` (and every vector line of the document must
//! be a vector), so the document and the data cannot drift apart silently.
//!
//! Regenerate after an intended format change with
//! `SECURECHAT_REGEN_VECTORS=1 cargo test -p crypto-core --test vectors`: the vectors file is
//! rewritten and the `name = hex` lines of the document are updated in place.

#![cfg(not(target_family = "wasm"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::convert::Infallible;
use crypto_core::group::{GroupMessage, GroupSession, InboundGroupSession, SenderKeyDistribution};
use crypto_core::primitives::{
    Ed25519KeyPair, X25519PublicKey, X25519Secret, chacha20poly1305_seal, hkdf_sha256,
    hkdf_sha256_expand, hmac_sha256, sha256, xchacha20poly1305_open,
};
use crypto_core::x3dh::associated_data;
use crypto_core::{
    Account, PickleId, PickleKey, PrekeyBundle, PublicIdentity, Session, SessionMessage,
    SignedPrekey, verify_relay_challenge,
};
use rand_core::{TryCryptoRng, TryRng};
use std::sync::OnceLock;

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/protocol.txt");
const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
const REGEN_ENV: &str = "SECURECHAT_REGEN_VECTORS";

// ---------------------------------------------------------------------------------------------
// Fixed inputs (docs/protocol.md, "Test vectors" → "Inputs")

const ALICE_RNG: &[u8] = b"SecureChat test vectors: alice";
const BOB_RNG: &[u8] = b"SecureChat test vectors: bob";
const GROUP_RNG: &[u8] = b"SecureChat test vectors: group";
const PICKLE_RNG: &[u8] = b"SecureChat test vectors: pickle";
const SIGNED_PREKEY_CREATED_AT: u64 = 1_700_000_000;
const PICKLE_KEY: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];
const MSG1: &[u8] = b"Hello Bob! This is Alice.";
const REPLY: &[u8] = b"Hi Alice, Bob here.";
const MSG2: &[u8] = b"Great, the ratchet turned.";
const GROUP_PLAINTEXT: &[u8] = b"Hello, room!";
const RELAY_ORIGIN: &str = "https://relay.example";
const RELAY_CHALLENGE: [u8; 32] = [0xc0; 32];
const GROUP_ROOM_ID: &str = "room-1";
const GROUP_DEVICE_ID: &str = "alice/1";

// Info and context strings, repeated here on purpose: a change in the library must show up as
// a failing vector, not be followed silently.
const X3DH_INFO: &[u8] = b"SecureChat v2 X3DH";
const X3DH_AD_CONTEXT: &[u8] = b"SecureChat v2 X3DH AD";
const ROOT_KDF_INFO: &[u8] = b"SecureChat v2 ratchet root";
const MESSAGE_KDF_INFO: &[u8] = b"SecureChat v2 message keys";
const GROUP_KDF_INFO: &[u8] = b"SecureChat v2 group message keys";
const GROUP_SIGNATURE_CONTEXT: &[u8] = b"SecureChat v2 group message";
const DISTRIBUTION_SIGNATURE_CONTEXT: &[u8] = b"SecureChat v2 sender key distribution";
const PICKLE_KDF_INFO: &[u8] = b"SecureChat v2 pickle";
const IDENTITY_SIGNATURE_CONTEXT: &[u8] = b"SecureChat v2 identity key";
const SIGNED_PREKEY_CONTEXT: &[u8] = b"SecureChat v2 signed prekey";
const RELAY_CHALLENGE_CONTEXT: &[u8] = b"SecureChat v2 relay challenge";

// ---------------------------------------------------------------------------------------------
// The deterministic test RNG

/// `stream(label) = SHA-256(label || u32_be(0)) || SHA-256(label || u32_be(1)) || …`; every
/// request takes the next bytes of the stream, none are skipped. `next_u32`/`next_u64` read 4/8
/// stream bytes little-endian (crypto-core only uses `fill_bytes`). Predictable by design: for
/// test vectors only.
struct TestRng {
    label: &'static [u8],
    counter: u32,
    block: [u8; 32],
    used: usize,
}

impl TestRng {
    fn new(label: &'static [u8]) -> Self {
        Self {
            label,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn fill(&mut self, dst: &mut [u8]) {
        for byte in dst {
            if self.used == self.block.len() {
                let mut input = self.label.to_vec();
                input.extend_from_slice(&self.counter.to_be_bytes());
                self.block = sha256(&input);
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }
}

impl TryRng for TestRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_le_bytes(self.take()))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from_le_bytes(self.take()))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

impl TryCryptoRng for TestRng {}

#[test]
fn test_rng_is_the_documented_counter_stream() {
    let mut rng = TestRng::new(b"x");
    let mut got = [0u8; 40];
    rng.fill(&mut got[..5]);
    rng.fill(&mut got[5..]);
    let mut expected = sha256(b"x\x00\x00\x00\x00").to_vec();
    expected.extend_from_slice(&sha256(b"x\x00\x00\x00\x01")[..8]);
    assert_eq!(got.to_vec(), expected);
}

// ---------------------------------------------------------------------------------------------
// The specification, re-implemented from the primitives

fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    *X25519Secret::from_bytes(secret).public_key().as_bytes()
}

fn dh(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    *X25519Secret::from_bytes(secret)
        .diffie_hellman(&X25519PublicKey::from_bytes(*public))
        .unwrap()
}

/// `KDF_RK`: HKDF-SHA256(salt = root key, ikm = DH output, info) → (root key, chain key).
fn kdf_rk(root_key: &[u8; 32], dh_out: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let mut okm = [0u8; 64];
    hkdf_sha256(root_key, dh_out, ROOT_KDF_INFO, &mut okm).unwrap();
    (okm[..32].try_into().unwrap(), okm[32..].try_into().unwrap())
}

/// `KDF_CK`: (message key, next chain key) = (HMAC(ck, 0x01), HMAC(ck, 0x02)).
fn kdf_ck(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (
        *hmac_sha256(chain_key, &[0x01]),
        *hmac_sha256(chain_key, &[0x02]),
    )
}

/// HKDF-Expand(message key, info, 44) → (AEAD key, nonce).
fn aead_key_nonce(message_key: &[u8; 32], info: &[u8]) -> ([u8; 32], [u8; 12]) {
    let mut okm = [0u8; 44];
    hkdf_sha256_expand(message_key, info, &mut okm).unwrap();
    (okm[..32].try_into().unwrap(), okm[32..].try_into().unwrap())
}

/// A ratchet message built from the spec: header || ChaCha20-Poly1305(ad = AD || header).
fn spec_ratchet_message(
    x3dh_ad: &[u8; 32],
    message_key: &[u8; 32],
    ratchet_key: &[u8; 32],
    previous_chain_length: u32,
    index: u32,
    plaintext: &[u8],
) -> Vec<u8> {
    let mut header = vec![0x02, 0x01];
    header.extend_from_slice(ratchet_key);
    header.extend_from_slice(&previous_chain_length.to_be_bytes());
    header.extend_from_slice(&index.to_be_bytes());
    assert_eq!(header.len(), 42);
    let (key, nonce) = aead_key_nonce(message_key, MESSAGE_KDF_INFO);
    let mut ad = x3dh_ad.to_vec();
    ad.extend_from_slice(&header);
    let mut body = plaintext.to_vec();
    let tag = chacha20poly1305_seal(&key, &nonce, &ad, &mut body).unwrap();
    let mut out = header;
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    out
}

/// Encode(IK) of the spec: the 128-byte identity body minus the signature is what `key_bytes`
/// returns; the wire form carries the signature too.
fn identity_body(seed: &[u8; 32], x25519_secret: &[u8; 32]) -> Vec<u8> {
    let signing = Ed25519KeyPair::from_seed(seed);
    let agreement = x25519_public(x25519_secret);
    let mut signed = IDENTITY_SIGNATURE_CONTEXT.to_vec();
    signed.extend_from_slice(&agreement);
    let mut out = signing.public_key().as_bytes().to_vec();
    out.extend_from_slice(&agreement);
    out.extend_from_slice(&signing.sign(&signed));
    out
}

// ---------------------------------------------------------------------------------------------
// Generation

type Vectors = Vec<(&'static str, String)>;

struct Parties {
    alice_account: Account,
    bob_account: Account,
    alice_rng: TestRng,
    bob_rng: TestRng,
}

/// Both accounts as the vectors describe them; used by the generator and by the decoding test.
fn parties() -> Parties {
    let mut alice_rng = TestRng::new(ALICE_RNG);
    let mut bob_rng = TestRng::new(BOB_RNG);
    let alice_account = Account::new_with_rng(&mut alice_rng).unwrap();
    let mut bob_account = Account::new_with_rng(&mut bob_rng).unwrap();
    bob_account
        .generate_signed_prekey_with_rng(SIGNED_PREKEY_CREATED_AT, &mut bob_rng)
        .unwrap();
    bob_account
        .generate_one_time_prekeys_with_rng(1, &mut bob_rng)
        .unwrap();
    Parties {
        alice_account,
        bob_account,
        alice_rng,
        bob_rng,
    }
}

fn generate() -> Vectors {
    let mut v: Vectors = Vec::new();
    let mut put = |name: &'static str, bytes: &[u8]| v.push((name, hex::encode(bytes)));

    // The RNG draws, in the order the API consumes them.
    let mut a = TestRng::new(ALICE_RNG);
    let alice_seed: [u8; 32] = a.take();
    let alice_ik: [u8; 32] = a.take();
    let _alice_account_pickle_id: [u8; 16] = a.take();
    let alice_ek: [u8; 32] = a.take();
    let _alice_session_pickle_id: [u8; 16] = a.take();
    // Alice's first ratchet key is her X3DH ephemeral key (protocol §9.2): no draw of its own.
    let alice_ratchet1 = alice_ek;
    let alice_ratchet2: [u8; 32] = a.take();
    let mut b = TestRng::new(BOB_RNG);
    let bob_seed: [u8; 32] = b.take();
    let bob_ik: [u8; 32] = b.take();
    let _bob_account_pickle_id: [u8; 16] = b.take();
    let bob_spk: [u8; 32] = b.take();
    let bob_opk: [u8; 32] = b.take();
    let bob_session_pickle_id: [u8; 16] = b.take();
    let bob_ratchet1: [u8; 32] = b.take();
    put("alice_ed25519_seed", &alice_seed);
    put("alice_x25519_identity_secret", &alice_ik);
    put("alice_x3dh_ephemeral_secret", &alice_ek);
    put("alice_ratchet_secret_2", &alice_ratchet2);
    put("bob_ed25519_seed", &bob_seed);
    put("bob_x25519_identity_secret", &bob_ik);
    put("bob_signed_prekey_secret", &bob_spk);
    put("bob_one_time_prekey_secret", &bob_opk);
    put("bob_ratchet_secret_1", &bob_ratchet1);

    let Parties {
        alice_account,
        mut bob_account,
        mut alice_rng,
        mut bob_rng,
    } = parties();

    // Identity.
    let alice_identity = alice_account.identity().encode();
    let bob_identity = bob_account.identity().encode();
    assert_eq!(alice_identity[0], 2);
    assert_eq!(
        alice_identity[1..],
        identity_body(&alice_seed, &alice_ik)[..]
    );
    assert_eq!(bob_identity[1..], identity_body(&bob_seed, &bob_ik)[..]);
    put("alice_public_identity", &alice_identity);
    put("bob_public_identity", &bob_identity);

    // Relay challenge answer: Sig(context || u32 len(origin) || origin || challenge).
    let answer = alice_account
        .sign_relay_challenge(RELAY_ORIGIN, &RELAY_CHALLENGE)
        .unwrap();
    let mut signed = RELAY_CHALLENGE_CONTEXT.to_vec();
    signed.extend_from_slice(&u32::try_from(RELAY_ORIGIN.len()).unwrap().to_be_bytes());
    signed.extend_from_slice(RELAY_ORIGIN.as_bytes());
    signed.extend_from_slice(&RELAY_CHALLENGE);
    assert_eq!(answer, Ed25519KeyPair::from_seed(&alice_seed).sign(&signed));
    put("relay_challenge", &RELAY_CHALLENGE);
    put("alice_relay_challenge_answer", &answer);

    // Signed prekey: version || id || key || created_at || Sig(context || id || key || created_at).
    let spk = bob_account.signed_prekey().unwrap().encode();
    let mut spk_signed = SIGNED_PREKEY_CONTEXT.to_vec();
    spk_signed.extend_from_slice(&1u32.to_be_bytes());
    spk_signed.extend_from_slice(&x25519_public(&bob_spk));
    spk_signed.extend_from_slice(&SIGNED_PREKEY_CREATED_AT.to_be_bytes());
    let mut expected = vec![0x02];
    expected.extend_from_slice(&spk_signed[SIGNED_PREKEY_CONTEXT.len()..]);
    expected.extend_from_slice(&Ed25519KeyPair::from_seed(&bob_seed).sign(&spk_signed));
    assert_eq!(spk, expected);
    put("bob_signed_prekey", &spk);

    let otpk = bob_account.one_time_prekeys()[0].encode();
    let mut expected = vec![0x02, 0, 0, 0, 1];
    expected.extend_from_slice(&x25519_public(&bob_opk));
    assert_eq!(otpk, expected);
    put("bob_one_time_prekey", &otpk);

    // Bundle: version || flags (0x01) || identity body || signed prekey body || id || key.
    let bundle = bob_account.prekey_bundle(true).unwrap();
    let bundle_bytes = bundle.encode();
    let mut expected = vec![0x02, 0x01];
    expected.extend_from_slice(&bob_identity[1..]);
    expected.extend_from_slice(&spk[1..]);
    expected.extend_from_slice(&otpk[1..]);
    assert_eq!(bundle_bytes, expected);
    put("bob_prekey_bundle", &bundle_bytes);

    // X3DH (not observable through the API: derived here and proven right by the messages).
    let bob_spk_pub = x25519_public(&bob_spk);
    let dh1 = dh(&alice_ik, &bob_spk_pub);
    let dh2 = dh(&alice_ek, &x25519_public(&bob_ik));
    let dh3 = dh(&alice_ek, &bob_spk_pub);
    let dh4 = dh(&alice_ek, &x25519_public(&bob_opk));
    assert_eq!(dh1, dh(&bob_spk, &x25519_public(&alice_ik)));
    let mut ikm = vec![0xFF; 32];
    for part in [dh1, dh2, dh3, dh4] {
        ikm.extend_from_slice(&part);
    }
    let mut sk = [0u8; 32];
    hkdf_sha256(&[0u8; 32], &ikm, X3DH_INFO, &mut sk).unwrap();
    let ad = associated_data(alice_account.identity(), bob_account.identity());
    let mut ad_input = X3DH_AD_CONTEXT.to_vec();
    ad_input.extend_from_slice(&alice_identity[1..65]);
    ad_input.extend_from_slice(&bob_identity[1..65]);
    assert_eq!(ad, sha256(&ad_input));
    put("x3dh_dh1", &dh1);
    put("x3dh_dh2", &dh2);
    put("x3dh_dh3", &dh3);
    put("x3dh_dh4", &dh4);
    put("x3dh_shared_secret", &sk);
    put("x3dh_associated_data", &ad);

    // Message 1, Alice → Bob: RatchetInitAlice with EK_A as the first ratchet key, so the first
    // root step consumes DH3 again; then one KDF_CK step.
    let mut alice = alice_account
        .create_outbound_session_with_rng(&bundle, &mut alice_rng)
        .unwrap();
    let msg1 = alice
        .encrypt_with_rng(MSG1, &mut alice_rng)
        .unwrap()
        .encode();
    assert_eq!(dh(&alice_ratchet1, &bob_spk_pub), dh3);
    let (root1, chain_a1) = kdf_rk(&sk, &dh3);
    let (mk, _) = kdf_ck(&chain_a1);
    let (aead_key, nonce) = aead_key_nonce(&mk, MESSAGE_KDF_INFO);
    let ratchet1 = spec_ratchet_message(&ad, &mk, &x25519_public(&alice_ratchet1), 0, 0, MSG1);
    let mut expected = vec![0x02, 0x02, 0x01];
    expected.extend_from_slice(&alice_identity[1..]);
    expected.extend_from_slice(&x25519_public(&alice_ek));
    expected.extend_from_slice(&1u32.to_be_bytes());
    expected.extend_from_slice(&1u32.to_be_bytes());
    expected.extend_from_slice(&ratchet1);
    assert_eq!(msg1, expected);
    put("msg1_root_key", &root1);
    put("msg1_chain_key", &chain_a1);
    put("msg1_message_key", &mk);
    put("msg1_aead_key", &aead_key);
    put("msg1_aead_nonce", &nonce);
    put("msg1_plaintext", MSG1);
    put("msg1_prekey_message", &msg1);

    // Bob answers: his sending ratchet turns lazily at this first encryption.
    let SessionMessage::Prekey(prekey) = SessionMessage::decode(&msg1).unwrap() else {
        panic!("message 1 must be a prekey message");
    };
    let (mut bob, plaintext) = bob_account
        .create_inbound_session_with_rng(&prekey, &mut bob_rng)
        .unwrap();
    assert_eq!(&plaintext[..], MSG1);
    assert_eq!(bob.pickle_id().to_bytes(), bob_session_pickle_id);
    let reply = bob.encrypt_with_rng(REPLY, &mut bob_rng).unwrap();
    assert!(matches!(reply, SessionMessage::Ratchet(_)));
    let reply = reply.encode();
    let alice_ratchet1_pub = x25519_public(&alice_ratchet1);
    let (root2, chain_b1) = kdf_rk(&root1, &dh(&bob_ratchet1, &alice_ratchet1_pub));
    let (mk, _) = kdf_ck(&chain_b1);
    let bob_ratchet1_pub = x25519_public(&bob_ratchet1);
    let expected = spec_ratchet_message(&ad, &mk, &bob_ratchet1_pub, 0, 0, REPLY);
    assert_eq!(reply, expected);
    put("reply_root_key", &root2);
    put("reply_plaintext", REPLY);
    put("reply_ratchet_message", &reply);

    // Alice receives (receiving half of the DH ratchet) and sends on a fresh ratchet key.
    assert_eq!(
        &alice
            .decrypt(&SessionMessage::decode(&reply).unwrap())
            .unwrap()[..],
        REPLY
    );
    let msg2 = alice.encrypt_with_rng(MSG2, &mut alice_rng).unwrap();
    assert!(matches!(msg2, SessionMessage::Ratchet(_)));
    let msg2 = msg2.encode();
    let (root3, chain_a2) = kdf_rk(&root2, &dh(&alice_ratchet2, &bob_ratchet1_pub));
    let (mk, _) = kdf_ck(&chain_a2);
    let alice_ratchet2_pub = x25519_public(&alice_ratchet2);
    let expected = spec_ratchet_message(&ad, &mk, &alice_ratchet2_pub, 1, 0, MSG2);
    assert_eq!(msg2, expected);
    put("msg2_root_key", &root3);
    put("msg2_plaintext", MSG2);
    put("msg2_ratchet_message", &msg2);

    // Group sender keys: chain id (4 bytes, big-endian), chain key (32), signing seed (32).
    let mut g = TestRng::new(GROUP_RNG);
    let chain_id: [u8; 4] = g.take();
    let chain_key: [u8; 32] = g.take();
    let group_seed: [u8; 32] = g.take();
    put("group_chain_id", &chain_id);
    put("group_chain_key", &chain_key);
    put("group_signing_seed", &group_seed);
    // Alice's sender chain in room GROUP_ROOM_ID as device GROUP_DEVICE_ID.
    let mut group = GroupSession::new_with_rng(
        GROUP_ROOM_ID,
        GROUP_DEVICE_ID,
        alice_account.identity(),
        &mut TestRng::new(GROUP_RNG),
    )
    .unwrap();
    let distribution = group.distribution().encode();
    let group_signing = Ed25519KeyPair::from_seed(&group_seed);
    // origin = u32 len || room id || sender identity key || u32 len || device id
    let mut origin = (GROUP_ROOM_ID.len() as u32).to_be_bytes().to_vec();
    origin.extend_from_slice(GROUP_ROOM_ID.as_bytes());
    origin.extend_from_slice(
        Ed25519KeyPair::from_seed(&alice_seed)
            .public_key()
            .as_bytes(),
    );
    origin.extend_from_slice(&(GROUP_DEVICE_ID.len() as u32).to_be_bytes());
    origin.extend_from_slice(GROUP_DEVICE_ID.as_bytes());
    let mut expected = vec![0x02, 0x04];
    expected.extend_from_slice(&origin);
    expected.extend_from_slice(&chain_id);
    expected.extend_from_slice(&0u32.to_be_bytes());
    expected.extend_from_slice(&chain_key);
    expected.extend_from_slice(group_signing.public_key().as_bytes());
    let mut signed = DISTRIBUTION_SIGNATURE_CONTEXT.to_vec();
    signed.extend_from_slice(&expected);
    expected.extend_from_slice(&group_signing.sign(&signed));
    assert_eq!(distribution[..], expected[..]);
    put("group_sender_key_distribution", &distribution);

    let group_message = group.encrypt(GROUP_PLAINTEXT).unwrap().encode();
    let (mk, _) = kdf_ck(&chain_key);
    let (key, nonce) = aead_key_nonce(&mk, GROUP_KDF_INFO);
    let mut expected = vec![0x02, 0x03];
    expected.extend_from_slice(&chain_id);
    expected.extend_from_slice(&0u32.to_be_bytes());
    let mut body = GROUP_PLAINTEXT.to_vec();
    let tag = chacha20poly1305_seal(&key, &nonce, &expected, &mut body).unwrap();
    expected.extend_from_slice(&body);
    expected.extend_from_slice(&tag);
    let mut signed = GROUP_SIGNATURE_CONTEXT.to_vec();
    signed.extend_from_slice(&origin);
    signed.extend_from_slice(&expected);
    expected.extend_from_slice(&group_signing.sign(&signed));
    assert_eq!(group_message, expected);
    put("group_plaintext", GROUP_PLAINTEXT);
    put("group_message", &group_message);

    // Bob's session after message 2, sealed under the fixed pickle key and nonce.
    assert_eq!(
        &bob.decrypt(&SessionMessage::decode(&msg2).unwrap())
            .unwrap()[..],
        MSG2
    );
    // Its first pickle: counter 1.
    let key = PickleKey::new(PICKLE_KEY);
    let sealed = bob
        .pickle_with_rng(&key, &mut TestRng::new(PICKLE_RNG))
        .unwrap();
    assert_eq!(sealed.counter(), 1);
    let sealed = sealed.into_bytes();
    let nonce: [u8; 24] = TestRng::new(PICKLE_RNG).take();
    let mut subkey = [0u8; 32];
    hkdf_sha256_expand(&PICKLE_KEY, PICKLE_KDF_INFO, &mut subkey).unwrap();
    // Header = version 0x02 || kind 0x02 (Session) || pickle id (16) || counter (u64 BE),
    // all of it the associated data; then the nonce, the ciphertext and the tag.
    let mut header = vec![0x02, 0x02];
    header.extend_from_slice(&bob_session_pickle_id);
    header.extend_from_slice(&1u64.to_be_bytes());
    assert_eq!(header.len(), 26);
    assert_eq!(sealed[..26], header[..]);
    assert_eq!(sealed[26..50], nonce);
    let (body, tag) = sealed[50..].split_at(sealed.len() - 50 - 16);
    let mut plaintext = body.to_vec();
    xchacha20poly1305_open(
        &subkey,
        &nonce,
        &header,
        &mut plaintext,
        tag.try_into().unwrap(),
    )
    .unwrap();
    // The documented Session pickle layout, field by field.
    let (_, chain_a2_next) = kdf_ck(&chain_a2);
    let mut expected = bob_identity[1..].to_vec(); // local identity
    expected.extend_from_slice(&alice_identity[1..]); // remote identity
    expected.extend_from_slice(&x25519_public(&alice_ek)); // base key
    expected.push(0); // we_initiated = false
    expected.extend_from_slice(&1u32.to_be_bytes()); // signed prekey id
    expected.extend_from_slice(&[1, 0, 0, 0, 1]); // Some(one-time prekey id 1)
    expected.push(0); // send_prekey_messages = false
    expected.extend_from_slice(&root3); // root key
    expected.extend_from_slice(&bob_ratchet1); // our ratchet secret
    expected.push(1); // Some(their ratchet key)
    expected.extend_from_slice(&alice_ratchet2_pub);
    expected.push(0); // sending chain: None (turns at the next encryption)
    expected.extend_from_slice(&1u32.to_be_bytes()); // previous sending chain length
    expected.push(1); // Some(receiving chain)
    expected.extend_from_slice(&alice_ratchet2_pub);
    expected.extend_from_slice(&chain_a2_next);
    expected.extend_from_slice(&1u32.to_be_bytes()); // its next index
    expected.extend_from_slice(&0u32.to_be_bytes()); // no skipped keys
    expected.extend_from_slice(&1u32.to_be_bytes()); // one previous receiving chain
    expected.extend_from_slice(&alice_ratchet1_pub);
    assert_eq!(hex::encode(&plaintext), hex::encode(&expected));
    put("pickle_key", &PICKLE_KEY);
    put("bob_session_pickle_id", &bob_session_pickle_id);
    put("pickle_nonce", &nonce);
    put("session_pickle_plaintext", &plaintext);
    put("session_pickle", &sealed);

    v
}

// ---------------------------------------------------------------------------------------------
// Files: the vectors file and the document

fn parse_vector_line(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.trim().split_once(" = ")?;
    let is_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let is_hex = !value.is_empty()
        && value.len() % 2 == 0
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (is_name && is_hex).then_some((name, value))
}

fn read_vectors() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(VECTORS_PATH).expect("tests/vectors/protocol.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let (name, value) = parse_vector_line(l)
                .unwrap_or_else(|| panic!("malformed line in protocol.txt: {l:?}"));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn vector(name: &str) -> Vec<u8> {
    let vectors = read_vectors();
    let (_, value) = vectors
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    hex::decode(value).unwrap()
}

/// With `SECURECHAT_REGEN_VECTORS=1`, rewrites the vectors file and the document's vector
/// lines once, before any test reads them.
fn ensure_regenerated() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if std::env::var_os(REGEN_ENV).is_none_or(|v| v.is_empty() || v == "0") {
            return;
        }
        let generated = generate();
        let mut file = String::from(
            "# SecureChat protocol test vectors (docs/protocol.md, \"Test vectors\").\n\
             # Generated by crypto-core/tests/vectors.rs with SECURECHAT_REGEN_VECTORS=1.\n\
             # Format: `name = lowercase hex`, one per line.\n",
        );
        for (name, value) in &generated {
            file.push_str(&format!("{name} = {value}\n"));
        }
        std::fs::write(VECTORS_PATH, file).unwrap();

        let doc = std::fs::read_to_string(DOC_PATH).unwrap();
        let mut out = String::with_capacity(doc.len());
        for line in doc.split_inclusive('\n') {
            let replaced = parse_vector_line(line).and_then(|(name, _)| {
                generated.iter().find(|(n, _)| *n == name).map(|(n, v)| {
                    let indent = &line[..line.len() - line.trim_start().len()];
                    let eol = if line.ends_with('\n') { "\n" } else { "" };
                    format!("{indent}{n} = {v}{eol}")
                })
            });
            out.push_str(replaced.as_deref().unwrap_or(line));
        }
        std::fs::write(DOC_PATH, out).unwrap();
        println!("regenerated {VECTORS_PATH} and the vector lines of {DOC_PATH}");
    });
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn generated_vectors_equal_the_file_byte_for_byte() {
    ensure_regenerated();
    let file = read_vectors();
    let generated = generate();
    let file_names: Vec<&str> = file.iter().map(|(n, _)| n.as_str()).collect();
    let generated_names: Vec<&str> = generated.iter().map(|(n, _)| *n).collect();
    assert_eq!(file_names, generated_names, "vector names or order differ");
    for ((name, expected), (_, got)) in file.iter().zip(&generated) {
        assert_eq!(got, expected, "vector {name} differs from protocol.txt");
    }
}

#[test]
fn document_shows_exactly_the_vectors() {
    ensure_regenerated();
    let vectors = read_vectors();
    let doc = std::fs::read_to_string(DOC_PATH).expect("docs/protocol.md");
    for (name, value) in &vectors {
        let line = format!("{name} = {value}");
        assert!(
            doc.lines().any(|l| l.trim() == line),
            "docs/protocol.md lacks the line `{name} = …` with the current value \
             (regenerate with {REGEN_ENV}=1 and add missing lines by hand)"
        );
    }
    // And no stale or unknown vector line in the document.
    for line in doc.lines() {
        if let Some((name, value)) = parse_vector_line(line) {
            let known = vectors.iter().find(|(n, _)| n == name);
            assert_eq!(
                known.map(|(_, v)| v.as_str()),
                Some(value),
                "docs/protocol.md has a vector line `{name} = …` that is not in protocol.txt"
            );
        }
    }
}

#[test]
fn vectors_decode_and_decrypt() {
    ensure_regenerated();
    let Parties {
        alice_account,
        mut bob_account,
        mut alice_rng,
        mut bob_rng,
    } = parties();

    // Public encodings decode, verify and re-encode to the same bytes.
    let identity = vector("alice_public_identity");
    assert_eq!(
        PublicIdentity::decode(&identity).unwrap().encode(),
        identity
    );
    let bob_identity = PublicIdentity::decode(&vector("bob_public_identity")).unwrap();
    let answer: [u8; 64] = vector("alice_relay_challenge_answer").try_into().unwrap();
    let challenge: [u8; 32] = vector("relay_challenge").try_into().unwrap();
    let alice_identity = PublicIdentity::decode(&identity).unwrap();
    verify_relay_challenge(&alice_identity, RELAY_ORIGIN, &challenge, &answer).unwrap();
    assert_eq!(
        verify_relay_challenge(&bob_identity, RELAY_ORIGIN, &challenge, &answer),
        Err(crypto_core::RelayChallengeError::BadSignature)
    );
    let spk = vector("bob_signed_prekey");
    let decoded = SignedPrekey::decode(&spk).unwrap();
    decoded.verify(&bob_identity).unwrap();
    assert_eq!(decoded.encode(), spk);
    let bundle_bytes = vector("bob_prekey_bundle");
    let bundle = PrekeyBundle::decode(&bundle_bytes).unwrap();
    assert_eq!(bundle.encode(), bundle_bytes);

    // Bob, generated from his RNG stream, opens Alice's first message.
    let msg1 = vector("msg1_prekey_message");
    let SessionMessage::Prekey(prekey) = SessionMessage::decode(&msg1).unwrap() else {
        panic!("msg1 must be a prekey message");
    };
    // A flipped tag bit is refused and must not consume the one-time prekey.
    let mut bytes = msg1.clone();
    *bytes.last_mut().unwrap() ^= 1;
    let SessionMessage::Prekey(tampered) = SessionMessage::decode(&bytes).unwrap() else {
        panic!("still a prekey message");
    };
    assert_eq!(
        bob_account.create_inbound_session(&tampered).unwrap_err(),
        crypto_core::SessionError::DecryptionFailed
    );
    let (mut bob, plaintext) = bob_account
        .create_inbound_session_with_rng(&prekey, &mut bob_rng)
        .unwrap();
    assert_eq!(&plaintext[..], &vector("msg1_plaintext")[..]);

    // Alice, generated from hers, opens Bob's reply (which Bob's state reproduces exactly);
    // Bob opens her second message.
    let reply = vector("reply_ratchet_message");
    assert_eq!(
        bob.encrypt_with_rng(&vector("reply_plaintext"), &mut bob_rng)
            .unwrap()
            .encode(),
        reply
    );
    let mut alice = alice_account
        .create_outbound_session_with_rng(&bundle, &mut alice_rng)
        .unwrap();
    let reply = SessionMessage::decode(&reply).unwrap();
    assert_eq!(
        &alice.decrypt(&reply).unwrap()[..],
        &vector("reply_plaintext")[..]
    );
    let mut bytes = vector("msg2_ratchet_message");
    let msg2 = SessionMessage::decode(&bytes).unwrap();
    bytes[50] ^= 1; // a ciphertext byte
    assert_eq!(
        bob.decrypt(&SessionMessage::decode(&bytes).unwrap())
            .unwrap_err(),
        crypto_core::SessionError::DecryptionFailed
    );
    assert_eq!(
        &bob.decrypt(&msg2).unwrap()[..],
        &vector("msg2_plaintext")[..]
    );

    // Bob's session seals to the stored pickle, which opens as his session (and no other)
    // under the fixed key; re-sealed, it carries the next counter and the same state.
    let key = PickleKey::new(vector("pickle_key").try_into().unwrap());
    let sealed = vector("session_pickle");
    let id = PickleId::from_bytes(vector("bob_session_pickle_id").try_into().unwrap());
    assert_eq!(bob.pickle_id(), id);
    assert_eq!(
        bob.pickle_with_rng(&key, &mut TestRng::new(PICKLE_RNG))
            .unwrap()
            .into_bytes(),
        sealed
    );
    let mut restored = Session::from_pickle(&sealed, &key, &id, 1).unwrap();
    assert_eq!(restored.session_id(), bob.session_id());
    assert_eq!(restored.pickle_counter(), 1);
    let again = restored
        .pickle_with_rng(&key, &mut TestRng::new(PICKLE_RNG))
        .unwrap();
    assert_eq!(again.counter(), 2);
    let again = again.into_bytes();
    assert_eq!(again[..18], sealed[..18]);
    assert_eq!(again[18..26], 2u64.to_be_bytes());
    // Same key and nonce: same keystream, so the same state gives the same ciphertext.
    assert_eq!(again[26..again.len() - 16], sealed[26..sealed.len() - 16]);
    assert_eq!(
        Session::from_pickle(&sealed, &key, &id, 2).unwrap_err(),
        crypto_core::PickleError::PickleRolledBack {
            counter: 1,
            latest: 2
        }
    );
    assert!(Session::from_pickle(&sealed, &PickleKey::new([0xAA; 32]), &id, 1).is_err());
    assert!(matches!(
        Session::from_pickle(&sealed, &key, &alice.pickle_id(), 0),
        Err(crypto_core::PickleError::PickleIdMismatch { .. })
    ));

    // A member holding the distribution verifies and decrypts the group message.
    let distribution = SenderKeyDistribution::decode(&vector("group_sender_key_distribution"))
        .expect("distribution decodes");
    assert_eq!(distribution.room_id(), GROUP_ROOM_ID);
    assert_eq!(distribution.device_id(), GROUP_DEVICE_ID);
    // It arrives over Bob's session with Alice; a session with anyone else is refused.
    assert_eq!(
        InboundGroupSession::new(GROUP_ROOM_ID, GROUP_DEVICE_ID, &alice, &distribution)
            .unwrap_err(),
        crypto_core::GroupError::DistributionIdentityMismatch
    );
    let mut inbound =
        InboundGroupSession::new(GROUP_ROOM_ID, GROUP_DEVICE_ID, &bob, &distribution).unwrap();
    let mut bytes = vector("group_message");
    let message = GroupMessage::decode(&bytes).unwrap();
    *bytes.last_mut().unwrap() ^= 1; // a signature byte
    assert_eq!(
        inbound
            .decrypt(&GroupMessage::decode(&bytes).unwrap())
            .unwrap_err(),
        crypto_core::GroupError::BadSignature
    );
    assert_eq!(
        &inbound.decrypt(&message).unwrap()[..],
        &vector("group_plaintext")[..]
    );
}
