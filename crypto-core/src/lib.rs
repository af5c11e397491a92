//! # crypto-core
//!
//! The SecureChat end-to-end encryption protocol: device identities, signed and one-time
//! prekeys, X3DH session setup, the Double Ratchet, group sender keys, encrypted attachments,
//! safety numbers and sealed state at rest.
//!
//! It does no I/O, keeps no clock (times are parameters) and no global state, and builds for
//! the host and for `wasm32-unknown-unknown`.
//!
//! ```
//! use crypto_core::{Account, SessionMessage};
//!
//! # fn main() -> Result<(), crypto_core::Error> {
//! let alice = Account::new()?;
//! let mut bob = Account::new()?;
//! bob.generate_signed_prekey(1_700_000_000)?;
//! bob.generate_one_time_prekeys(1)?;
//! let bundle = bob.prekey_bundle(true)?; // published through the relay
//!
//! let mut to_bob = alice.create_outbound_session(&bundle)?;
//! let first = to_bob.encrypt(b"hello Bob")?;
//!
//! let SessionMessage::Prekey(prekey) = SessionMessage::decode(&first.encode())? else {
//!     unreachable!("the first message carries the X3DH parameters")
//! };
//! let (mut to_alice, plaintext) = bob.create_inbound_session(&prekey)?;
//! assert_eq!(&plaintext[..], b"hello Bob");
//!
//! let reply = to_alice.encrypt(b"hi Alice")?;
//! assert_eq!(&to_bob.decrypt(&reply)?[..], b"hi Alice");
//! # Ok(())
//! # }
//! ```
//!
//! Each module cites the section of the public specification it implements.

#![cfg_attr(not(test), warn(missing_docs))]

mod codec;
pub mod error;
pub mod primitives;

pub mod account;
pub mod attachment;
pub mod fuzzing;
pub mod group;
pub mod identity;
pub mod message;
pub mod pickle;
pub mod prekeys;
pub mod ratchet;
pub mod safety_number;
pub mod session;
pub mod x3dh;

pub use account::Account;
pub use error::{Error, Result};
pub use identity::PublicIdentity;
pub use message::{PrekeyMessage, RatchetMessage, SessionMessage};
pub use pickle::PickleKey;
pub use prekeys::{OneTimePrekey, PrekeyBundle, SignedPrekey};
pub use session::Session;
