//! The native transport: reqwest for HTTP, tokio-tungstenite for the WebSocket. Needs a tokio
//! runtime (the socket writer is a spawned task).

use super::{
    ConnectError, Outgoing, Request, Response, SocketEvent, SocketReceiver, SocketSender,
    Transport, parse_retry_after,
};
use futures_channel::mpsc;
use futures_util::SinkExt;
use futures_util::stream::{SplitStream, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Reaches a relay at `base_url` (`http://127.0.0.1:8080`, no trailing slash).
#[derive(Clone, Debug)]
pub struct NativeTransport {
    base_url: String,
    http: reqwest::Client,
}

impl NativeTransport {
    /// A transport for the relay at `base_url`.
    pub fn new(base_url: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The relay's base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl Transport for NativeTransport {
    type Receiver = NativeReceiver;

    async fn request(&self, request: Request) -> Result<Response, String> {
        let url = format!("{}{}", self.base_url, request.path);
        let method = match request.method {
            super::Method::Get => reqwest::Method::GET,
            super::Method::Post => reqwest::Method::POST,
            super::Method::Put => reqwest::Method::PUT,
            super::Method::Patch => reqwest::Method::PATCH,
            super::Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.http.request(method, url);
        if let Some(token) = &request.token {
            builder = builder.bearer_auth(token);
        }
        if let Some((start, end)) = request.range {
            builder = builder.header("range", format!("bytes={start}-{end}"));
        }
        if let Some((content_type, body)) = request.body {
            builder = builder.header("content-type", content_type).body(body);
        }
        let answer = builder.send().await.map_err(|e| e.to_string())?;
        response(answer).await
    }

    async fn connect(
        &self,
        token: &str,
        device_id: i64,
    ) -> Result<(SocketSender, NativeReceiver), ConnectError> {
        let ws_url = if let Some(rest) = self.base_url.strip_prefix("https://") {
            format!("wss://{rest}/api/v1/ws")
        } else if let Some(rest) = self.base_url.strip_prefix("http://") {
            format!("ws://{rest}/api/v1/ws")
        } else {
            return Err(ConnectError::Network(format!(
                "not an http(s) URL: {}",
                self.base_url
            )));
        };
        let mut request = ws_url
            .into_client_request()
            .map_err(|e| ConnectError::Network(e.to_string()))?;
        let headers = request.headers_mut();
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| ConnectError::Network("token is not a valid header value".into()))?;
        headers.insert("authorization", bearer);
        let device = device_id
            .to_string()
            .parse()
            .map_err(|_| ConnectError::Network("bad device id".into()))?;
        headers.insert("x-securechat-device", device);
        let ws = match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => ws,
            Err(tungstenite::Error::Http(answer)) => {
                let status = answer.status().as_u16();
                let retry_after = parse_retry_after(
                    answer
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()),
                );
                let body = answer.into_body().unwrap_or_default();
                return Err(ConnectError::Refused(Response {
                    status,
                    retry_after,
                    body,
                }));
            }
            Err(e) => return Err(ConnectError::Network(e.to_string())),
        };
        let (mut sink, stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded::<Outgoing>();
        tokio::spawn(async move {
            while let Some(out) = rx.next().await {
                let result = match out {
                    Outgoing::Text(text) => sink.send(Message::Text(text.into())).await,
                    Outgoing::Close(code) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code: CloseCode::from(code),
                                reason: "".into(),
                            })))
                            .await;
                        break;
                    }
                };
                if result.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        Ok((
            tx,
            NativeReceiver {
                stream,
                closed: None,
            },
        ))
    }

    async fn upload(
        &self,
        path: &str,
        token: Option<&str>,
        pieces: Vec<Vec<u8>>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Response, String> {
        let total = super::total_len(&pieces);
        // Each piece reports its length when hyper takes it for the socket; the request runs
        // while this task turns those reports into `progress` calls.
        let (sent_tx, mut sent_rx) = mpsc::unbounded::<u64>();
        let body = futures_util::stream::iter(pieces.into_iter().map(move |piece| {
            let _ = sent_tx.unbounded_send(u64::try_from(piece.len()).unwrap_or(u64::MAX));
            Ok::<_, std::io::Error>(piece)
        }));
        let mut builder = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/octet-stream")
            .header("content-length", total)
            .body(reqwest::Body::wrap_stream(body));
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        let send = builder.send();
        futures_util::pin_mut!(send);
        let mut sent = 0u64;
        let answer = loop {
            match futures_util::future::select(sent_rx.next(), &mut send).await {
                futures_util::future::Either::Left((Some(n), _)) => {
                    sent = sent.saturating_add(n).min(total);
                    progress(sent, total);
                }
                futures_util::future::Either::Left((None, _)) => break send.await,
                futures_util::future::Either::Right((answer, _)) => break answer,
            }
        };
        let answer = answer.map_err(|e| e.to_string())?;
        if sent < total {
            progress(total, total);
        }
        response(answer).await
    }

    async fn sleep(&self, millis: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}

/// The reading half of a native socket.
#[derive(Debug)]
pub struct NativeReceiver {
    stream: SplitStream<Ws>,
    closed: Option<Option<u16>>,
}

impl SocketReceiver for NativeReceiver {
    async fn recv(&mut self) -> SocketEvent {
        if let Some(code) = self.closed {
            return SocketEvent::Closed(code);
        }
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => return SocketEvent::Text(text.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code));
                    self.closed = Some(code);
                    return SocketEvent::Closed(code);
                }
                // Pings are answered by tungstenite; binary frames are not part of the protocol.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    self.closed = Some(None);
                    return SocketEvent::Closed(None);
                }
            }
        }
    }
}

/// Reads an HTTP answer into a [`Response`].
async fn response(answer: reqwest::Response) -> Result<Response, String> {
    let status = answer.status().as_u16();
    let retry_after = parse_retry_after(
        answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
    );
    let body = answer.bytes().await.map_err(|e| e.to_string())?.to_vec();
    Ok(Response {
        status,
        retry_after,
        body,
    })
}
