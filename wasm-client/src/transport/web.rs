//! The WebAssembly transport: the global `fetch` and `WebSocket` (browsers, workers, and
//! Node 20 with a `WebSocket` global such as the `ws` package's).
//!
//! Browsers cannot set headers on a WebSocket: the token and device travel as subprotocols
//! (`securechat.v1`, `token.<token>`, `device.<id>`, docs/api.md §1), and a refused handshake
//! is only seen as a failed connection ([`ConnectError::Network`]).

use super::{
    ConnectError, Outgoing, Request, Response, SocketEvent, SocketReceiver, SocketSender,
    Transport, parse_retry_after,
};
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, CloseEvent, MessageEvent, ProgressEvent, RequestInit, WebSocket, XmlHttpRequest,
    XmlHttpRequestResponseType,
};

/// What an `XMLHttpRequest` upload reported.
enum UploadEvent {
    /// Bytes of the body sent so far.
    Sent(f64),
    /// The relay answered (any status).
    Answered,
    /// A network error, an abort or a timeout.
    Failed,
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &web_sys::Request) -> Promise;

    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, millis: i32) -> JsValue;
}

fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| "JavaScript error".to_owned())
}

/// Reaches a relay at `base_url` (`https://relay.example.org`, or `""` for the page's origin).
#[derive(Clone, Debug)]
pub struct WebTransport {
    base_url: String,
}

impl WebTransport {
    /// A transport for the relay at `base_url` (no trailing slash; empty: same origin).
    #[must_use]
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    fn origin(&self) -> Result<String, String> {
        if !self.base_url.is_empty() {
            return Ok(self.base_url.clone());
        }
        let location = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("location"))
            .map_err(js_error)?;
        let origin =
            js_sys::Reflect::get(&location, &JsValue::from_str("origin")).map_err(js_error)?;
        origin
            .as_string()
            .ok_or_else(|| "no relay URL and no page origin".to_owned())
    }
}

impl Transport for WebTransport {
    type Receiver = WebReceiver;

    async fn request(&self, request: Request) -> Result<Response, String> {
        let url = format!("{}{}", self.origin()?, request.path);
        let init = RequestInit::new();
        init.set_method(request.method.as_str());
        let headers = web_sys::Headers::new().map_err(js_error)?;
        if let Some(token) = &request.token {
            headers
                .set("authorization", &format!("Bearer {token}"))
                .map_err(js_error)?;
        }
        if let Some((start, end)) = request.range {
            headers
                .set("range", &format!("bytes={start}-{end}"))
                .map_err(js_error)?;
        }
        if let Some((content_type, body)) = &request.body {
            headers
                .set("content-type", content_type)
                .map_err(js_error)?;
            let array = Uint8Array::from(body.as_slice());
            init.set_body(&array);
        }
        init.set_headers(&headers);
        let req = web_sys::Request::new_with_str_and_init(&url, &init).map_err(js_error)?;
        let answer: JsValue = JsFuture::from(global_fetch(&req)).await.map_err(js_error)?;
        let answer: web_sys::Response = answer
            .dyn_into()
            .map_err(|_| "fetch did not answer a Response".to_owned())?;
        let status = answer.status();
        let retry_after = parse_retry_after(
            answer
                .headers()
                .get("retry-after")
                .ok()
                .flatten()
                .as_deref(),
        );
        let buffer: JsValue = JsFuture::from(answer.array_buffer().map_err(js_error)?)
            .await
            .map_err(js_error)?;
        let body = Uint8Array::new(&buffer).to_vec();
        Ok(Response {
            status,
            retry_after,
            body,
        })
    }

    async fn upload(
        &self,
        path: &str,
        token: Option<&str>,
        pieces: Vec<Vec<u8>>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Response, String> {
        let total = super::total_len(&pieces);
        let has_xhr = js_sys::Reflect::has(&js_sys::global(), &JsValue::from_str("XMLHttpRequest"))
            .unwrap_or(false);
        if !has_xhr {
            // Node has `fetch` but no `XMLHttpRequest`, and `fetch` reports no upload
            // progress: one report when the relay has answered.
            let answer = self
                .request(Request {
                    method: super::Method::Post,
                    path: path.to_owned(),
                    token: token.map(str::to_owned),
                    body: Some(("application/octet-stream", pieces.concat())),
                    range: None,
                })
                .await?;
            progress(total, total);
            return Ok(answer);
        }
        let url = format!("{}{path}", self.origin()?);
        let xhr = XmlHttpRequest::new().map_err(js_error)?;
        xhr.open_with_async("POST", &url, true).map_err(js_error)?;
        if let Some(token) = token {
            xhr.set_request_header("authorization", &format!("Bearer {token}"))
                .map_err(js_error)?;
        }
        xhr.set_request_header("content-type", "application/octet-stream")
            .map_err(js_error)?;
        xhr.set_response_type(XmlHttpRequestResponseType::Arraybuffer);
        // The ciphertext leaves wasm memory piece by piece, into a Blob the browser keeps.
        let parts = Array::new();
        for piece in pieces {
            parts.push(&Uint8Array::from(piece.as_slice()));
        }
        let blob = Blob::new_with_u8_array_sequence(&parts).map_err(js_error)?;
        drop(parts);

        let (tx, mut rx) = mpsc::unbounded::<UploadEvent>();
        let on_progress = {
            let tx = tx.clone();
            Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| {
                let _ = tx.unbounded_send(UploadEvent::Sent(e.loaded()));
            })
        };
        let on_load = {
            let tx = tx.clone();
            Closure::<dyn FnMut()>::new(move || {
                let _ = tx.unbounded_send(UploadEvent::Answered);
            })
        };
        let on_fail = Closure::<dyn FnMut()>::new(move || {
            let _ = tx.unbounded_send(UploadEvent::Failed);
        });
        let upload = xhr.upload().map_err(js_error)?;
        upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
        xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
        xhr.set_onerror(Some(on_fail.as_ref().unchecked_ref()));
        xhr.set_onabort(Some(on_fail.as_ref().unchecked_ref()));
        xhr.set_ontimeout(Some(on_fail.as_ref().unchecked_ref()));
        let sent = xhr.send_with_opt_blob(Some(&blob)).map_err(js_error);
        let outcome = match sent {
            Err(e) => Err(e),
            Ok(()) => loop {
                match rx.next().await {
                    Some(UploadEvent::Sent(loaded)) => {
                        // `loaded` is a byte count below 2^53: exact as an f64.
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        let loaded = loaded.max(0.0) as u64;
                        progress(loaded.min(total), total);
                    }
                    Some(UploadEvent::Answered) => break Ok(()),
                    Some(UploadEvent::Failed) | None => {
                        break Err("the upload failed (network error)".to_owned());
                    }
                }
            },
        };
        upload.set_onprogress(None);
        xhr.set_onload(None);
        xhr.set_onerror(None);
        xhr.set_onabort(None);
        xhr.set_ontimeout(None);
        outcome?;
        progress(total, total);
        let status = xhr.status().map_err(js_error)?;
        let retry_after = parse_retry_after(
            xhr.get_response_header("retry-after")
                .ok()
                .flatten()
                .as_deref(),
        );
        let body = xhr
            .response()
            .ok()
            .filter(|b| !b.is_null() && !b.is_undefined())
            .map(|b| Uint8Array::new(&b).to_vec())
            .unwrap_or_default();
        Ok(Response {
            status,
            retry_after,
            body,
        })
    }

    async fn connect(
        &self,
        token: &str,
        device_id: i64,
    ) -> Result<(SocketSender, WebReceiver), ConnectError> {
        let origin = self.origin().map_err(ConnectError::Network)?;
        let ws_url = if let Some(rest) = origin.strip_prefix("https://") {
            format!("wss://{rest}/api/v1/ws")
        } else if let Some(rest) = origin.strip_prefix("http://") {
            format!("ws://{rest}/api/v1/ws")
        } else {
            return Err(ConnectError::Network(format!(
                "not an http(s) URL: {origin}"
            )));
        };
        let protocols = Array::new();
        protocols.push(&JsValue::from_str("securechat.v1"));
        protocols.push(&JsValue::from_str(&format!("token.{token}")));
        protocols.push(&JsValue::from_str(&format!("device.{device_id}")));
        let ws = WebSocket::new_with_str_sequence(&ws_url, &protocols)
            .map_err(|e| ConnectError::Network(js_error(e)))?;

        let (events_tx, events_rx) = mpsc::unbounded::<SocketEvent>();
        let (open_tx, open_rx) = oneshot::channel::<bool>();
        let open_tx = std::rc::Rc::new(std::cell::RefCell::new(Some(open_tx)));

        let on_message = {
            let tx = events_tx.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                if let Some(text) = e.data().as_string() {
                    let _ = tx.unbounded_send(SocketEvent::Text(text));
                }
            })
        };
        let on_close = {
            let tx = events_tx.clone();
            let open_tx = open_tx.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
                if let Some(open) = open_tx.borrow_mut().take() {
                    let _ = open.send(false);
                }
                // 1005/1006: closed without a close frame (network failure).
                let code = e.code();
                let code = if code == 1005 || code == 1006 {
                    None
                } else {
                    Some(code)
                };
                let _ = tx.unbounded_send(SocketEvent::Closed(code));
            })
        };
        let on_open = {
            let open_tx = open_tx.clone();
            Closure::<dyn FnMut()>::new(move || {
                if let Some(open) = open_tx.borrow_mut().take() {
                    let _ = open.send(true);
                }
            })
        };
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));

        if !open_rx.await.unwrap_or(false) {
            ws.set_onmessage(None);
            ws.set_onclose(None);
            ws.set_onopen(None);
            return Err(ConnectError::Network(
                "the WebSocket handshake failed (signed out, unknown device, or offline)".into(),
            ));
        }

        let (out_tx, mut out_rx) = mpsc::unbounded::<Outgoing>();
        let writer_ws = ws.clone();
        wasm_bindgen_futures::spawn_local(async move {
            // The closures live as long as the writer: until the client closes the socket or
            // drops every sender.
            let _keep = (on_message, on_close, on_open);
            while let Some(out) = out_rx.next().await {
                match out {
                    Outgoing::Text(text) => {
                        if writer_ws.send_with_str(&text).is_err() {
                            break;
                        }
                    }
                    Outgoing::Close(code) => {
                        let _ = writer_ws.close_with_code(code);
                        break;
                    }
                }
            }
            if writer_ws.ready_state() == WebSocket::OPEN {
                let _ = writer_ws.close_with_code(1000);
            }
            writer_ws.set_onmessage(None);
            writer_ws.set_onopen(None);
            // Report the end ourselves: onclose no longer runs once its closure is gone.
            writer_ws.set_onclose(None);
            let _ = events_tx.unbounded_send(SocketEvent::Closed(Some(1000)));
        });
        Ok((
            out_tx,
            WebReceiver {
                rx: events_rx,
                closed: None,
            },
        ))
    }

    async fn sleep(&self, millis: u64) {
        let millis = i32::try_from(millis).unwrap_or(i32::MAX);
        let promise = Promise::new(&mut |resolve, _| {
            let _ = set_timeout(&resolve, millis);
        });
        let _: Result<JsValue, JsValue> = JsFuture::from(promise).await;
    }
}

/// The reading half of a browser socket.
#[derive(Debug)]
pub struct WebReceiver {
    rx: mpsc::UnboundedReceiver<SocketEvent>,
    closed: Option<Option<u16>>,
}

impl SocketReceiver for WebReceiver {
    async fn recv(&mut self) -> SocketEvent {
        if let Some(code) = self.closed {
            return SocketEvent::Closed(code);
        }
        let event = self.rx.next().await.unwrap_or(SocketEvent::Closed(None));
        if let SocketEvent::Closed(code) = event {
            self.closed = Some(code);
        }
        event
    }
}
