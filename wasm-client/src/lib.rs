//! # wasm-client
//!
//! The SecureChat client library: a platform-independent client core (accounts, devices,
//! friends, end-to-end encrypted messages with a durable outbox, ack-after-store and dedup,
//! trust on first use) over two small traits, a [`transport::Transport`] to the relay and a
//! [`store::Store`] for sealed local state. Natively it runs on tokio with reqwest and
//! tokio-tungstenite; compiled to WebAssembly it is the npm package, with `fetch`, `WebSocket`
//! and IndexedDB. All protocol logic is in `crypto-core`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), wasm_client::ClientError> {
//! use wasm_client::store::{MemoryStore, sealed::{KdfParams, SealedStore}};
//! use wasm_client::transport::{SocketReceiver, native::NativeTransport};
//! use wasm_client::{Client, LoginOutcome};
//!
//! let transport = NativeTransport::new("http://127.0.0.1:8080").map_err(wasm_client::ClientError::Network)?;
//! let store = SealedStore::create(MemoryStore::new(), "local password", KdfParams::RECOMMENDED).await?;
//! let mut client = Client::new(transport, store).await?;
//! if client.login("ada@example.org", "correct horse battery staple").await? == LoginOutcome::SignedIn {
//!     client.ensure_device("laptop").await?;
//!     let mut socket = client.connect().await?;
//!     client.send_text(42, "hello").await?;
//!     loop {
//!         let event = socket.recv().await;
//!         for e in client.handle(event).await? {
//!             println!("{e:?}");
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod api;
#[doc(hidden)]
pub mod bench_support;
#[cfg(target_family = "wasm")]
pub mod bindings;
mod client;
mod error;
mod frames;
pub mod payload;
pub mod platform;
pub mod store;
pub mod transport;

pub use client::{
    Attachments, Client, ConnectionState, Conversation, ConversationSummary, DOWNLOAD_PIECE, Event,
    FailureReason, LoginOutcome, MAX_ATTACHMENT_BYTES, MAX_HELD, MAX_PAGE, Message, MessageStatus,
    ONE_TIME_PREKEY_BATCH, ONE_TIME_PREKEY_LOW, SIGNED_PREKEY_GRACE, SIGNED_PREKEY_LIFETIME,
    UPLOAD_PIECE,
};
pub use error::{ClientError, ErrorCode, Result};
