//! The relay transport: HTTP requests and the delivery WebSocket (docs/api.md), behind one small
//! trait so that the same client core runs natively ([`native`]: reqwest + tokio-tungstenite)
//! and in the browser or Node (`web`: `fetch` + `WebSocket`).

#[cfg(not(target_family = "wasm"))]
pub mod native;
#[cfg(target_family = "wasm")]
pub mod web;

use futures_channel::mpsc;
use std::future::Future;

/// An HTTP method of the relay API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// A request to the relay's HTTP API.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path below the relay's base URL, starting with `/api/v1/`.
    pub path: String,
    /// The session token, sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// The body and its content type.
    pub body: Option<(&'static str, Vec<u8>)>,
    /// `Range: bytes=start-end` (inclusive), for attachment downloads in pieces.
    pub range: Option<(u64, u64)>,
}

/// The relay's answer.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, when present.
    pub retry_after: Option<u64>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why the WebSocket could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The relay refused the handshake with an HTTP answer (docs/api.md, "Handshake errors").
    /// Browsers do not expose the answer: they report [`ConnectError::Network`].
    Refused(Response),
    /// The connection failed.
    Network(String),
}

/// What the socket delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum SocketEvent {
    /// A text frame.
    Text(String),
    /// The connection ended, with the close code when the relay sent one.
    Closed(Option<u16>),
}

/// Frames to write to the socket; dropping every sender closes the socket.
#[derive(Debug)]
pub enum Outgoing {
    /// A text frame.
    Text(String),
    /// Close with this code (1000: the client closed).
    Close(u16),
}

/// The writing half of an open socket: cheap to clone, never blocks (the transport drains it).
pub type SocketSender = mpsc::UnboundedSender<Outgoing>;

/// The reading half of an open socket.
pub trait SocketReceiver {
    /// The next event; after [`SocketEvent::Closed`] it keeps answering `Closed`.
    fn recv(&mut self) -> impl Future<Output = SocketEvent>;
}

/// A way to reach the relay.
pub trait Transport {
    /// The reading half of this transport's sockets.
    type Receiver: SocketReceiver;

    /// Sends one HTTP request. Errors are network failures only: every HTTP answer, whatever
    /// its status, is a [`Response`].
    fn request(&self, request: Request) -> impl Future<Output = Result<Response, String>>;

    /// POSTs `pieces`, in order, to `path` as one `application/octet-stream` body of their
    /// total length, calling `progress(sent, total)` as the bytes leave (attachment uploads).
    /// Errors are network failures only, as for [`Transport::request`].
    fn upload(
        &self,
        path: &str,
        token: Option<&str>,
        pieces: Vec<Vec<u8>>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> impl Future<Output = Result<Response, String>>;

    /// Opens the delivery WebSocket as `device_id` with the session `token`.
    fn connect(
        &self,
        token: &str,
        device_id: i64,
    ) -> impl Future<Output = Result<(SocketSender, Self::Receiver), ConnectError>>;

    /// Waits `millis` milliseconds (reconnect back-off).
    fn sleep(&self, millis: u64) -> impl Future<Output = ()>;
}

/// The total length of an upload's pieces.
pub(crate) fn total_len(pieces: &[Vec<u8>]) -> u64 {
    pieces
        .iter()
        .map(|p| u64::try_from(p.len()).unwrap_or(u64::MAX))
        .fold(0, u64::saturating_add)
}

/// `Retry-After` as seconds (the relay only sends delta-seconds).
pub(crate) fn parse_retry_after(value: Option<&str>) -> Option<u64> {
    value.and_then(|v| v.trim().parse().ok())
}
