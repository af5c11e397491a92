//! HTTP transport rules for every request, below the routes (issue #12, items 11 and 18):
//!
//! - a request body must keep coming: each read waits at most `--body-read-timeout-secs`
//!   for the next bytes; a body that stalls longer is refused with `408 request_timeout`;
//! - a response to a request whose body was not read to its end (refused early, like a
//!   chunked upload over the size limit, or stalled) closes the connection
//!   (`Connection: close`): the unread rest must not be taken for the next request, nor
//!   leave that request unanswered;
//! - a connection over the per-address cap ([`crate::peer`]) is answered `429 rate_limited`
//!   and closed.

use crate::api::error::{ApiError, ErrorCode};
use crate::peer::PeerSlot;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, header};
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, ResponseError};
use futures_util::Stream;
use futures_util::future::LocalBoxFuture;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// What became of a request's body.
#[derive(Debug, Default)]
struct BodyState {
    /// Read to its end.
    finished: Cell<bool>,
    /// A read waited longer than the timeout.
    timed_out: Cell<bool>,
}

/// A request body whose every read is bounded in time.
struct TimedBody {
    inner: Payload,
    timeout: Duration,
    /// Started when a read finds nothing ready; dropped when bytes arrive.
    timer: Option<Pin<Box<Sleep>>>,
    state: Rc<BodyState>,
}

fn stalled() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body stopped arriving",
    ))
}

impl Stream for TimedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.state.timed_out.get() {
            return Poll::Ready(Some(Err(stalled())));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(item)) => {
                this.timer = None;
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                this.state.finished.set(true);
                Poll::Ready(None)
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.state.timed_out.set(true);
                        Poll::Ready(Some(Err(stalled())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// Whether the request announces a body (`Content-Length` above 0, or chunked).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// Puts a [`TimedBody`] in place of the request's body, if it has one.
fn watch_body(req: &mut ServiceRequest, timeout: Duration) -> Option<Rc<BodyState>> {
    if !has_body(req) {
        return None;
    }
    let state = Rc::new(BodyState::default());
    let body = TimedBody {
        inner: req.take_payload(),
        timeout,
        timer: None,
        state: state.clone(),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    Some(state)
}

fn close_after(res: &mut ServiceResponse<BoxBody>) {
    res.response_mut()
        .head_mut()
        .set_connection_type(ConnectionType::Close);
}

/// The response once the handler is done with the body: 408 if it stalled, and the
/// connection closed unless the body was read to its end.
fn settle(res: ServiceResponse<BoxBody>, body: &BodyState) -> ServiceResponse<BoxBody> {
    let mut res = if body.timed_out.get() {
        let refusal = ApiError::new(
            ErrorCode::RequestTimeout,
            "the request body stopped arriving; send it without pauses",
        );
        res.into_response(refusal.error_response())
    } else {
        res
    };
    if !body.finished.get() {
        close_after(&mut res);
    }
    res
}

/// The middleware (`App::wrap_fn`): refuses a connection over its address's cap, bounds the
/// body's reads, and closes the connection after a body left unread.
pub fn guard<S, B>(
    mut req: ServiceRequest,
    srv: &S,
    body_read_timeout: Duration,
) -> LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    if req
        .conn_data::<PeerSlot>()
        .is_some_and(|slot| !slot.admitted())
    {
        let refusal = ApiError {
            message: "too many open connections from your address; close some and retry".into(),
            ..ApiError::rate_limited(1)
        };
        let mut res = req.into_response(refusal.error_response());
        close_after(&mut res);
        return Box::pin(std::future::ready(Ok(res)));
    }
    let body = watch_body(&mut req, body_read_timeout);
    let call = srv.call(req);
    Box::pin(async move {
        let res = call.await?.map_into_boxed_body();
        Ok(match body {
            Some(body) => settle(res, &body),
            None => res,
        })
    })
}
