//! Helpers shared by several test targets (`mod common;`): a Bob with prekeys, an established
//! session pair, and SplitMix64 for reproducible choices. Nothing here needs a feature, so every
//! target can include it whatever `required-features` it has; each target uses only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use crypto_core::{Account, PrekeyBundle, Session, SessionMessage};

/// Bob with a signed prekey and `one_time_prekeys` one-time prekeys (ids from 1).
pub(crate) fn bob_account(one_time_prekeys: usize) -> Account {
    let mut bob = Account::new().unwrap();
    bob.generate_signed_prekey(1_700_000_000).unwrap();
    bob.generate_one_time_prekeys(one_time_prekeys).unwrap();
    bob
}

/// Both sides of a pairwise session.
pub(crate) struct Pair {
    pub(crate) alice: Session,
    pub(crate) bob: Session,
}

/// A fresh Alice's session with a Bob of `bob_account(one_time_prekeys)`, set up through the
/// encoded bundle and the encoded first message, whose plaintext `first` Bob must read.
pub(crate) fn establish(one_time_prekeys: usize, first: &[u8]) -> Pair {
    let alice_account = Account::new().unwrap();
    let mut bob_account = bob_account(one_time_prekeys);
    let bundle = PrekeyBundle::decode(&bob_account.prekey_bundle(true).unwrap().encode()).unwrap();
    let mut alice = alice_account.create_outbound_session(&bundle).unwrap();
    let message = alice.encrypt(first).unwrap();
    let SessionMessage::Prekey(prekey) = SessionMessage::decode(&message.encode()).unwrap() else {
        panic!("the first message must be a prekey message");
    };
    let (bob, plaintext) = bob_account.create_inbound_session(&prekey).unwrap();
    assert_eq!(&plaintext[..], first);
    Pair { alice, bob }
}

/// SplitMix64: reproducible sizes, split points and orders for the tests (not for keys).
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value below `n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n as u64).unwrap()
    }
}
