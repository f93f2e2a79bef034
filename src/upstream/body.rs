//! A request body that remembers whether *it* failed.
//!
//! When a client's body breaks while it is being forwarded (malformed chunked encoding, a
//! disconnect mid-upload, more bytes than `max_body_bytes`), hyper's client reports the
//! upstream exchange as failed, and its error chain looks much like a broken upstream
//! connection. Guessing from that chain would let any client pass its own fault off as an
//! upstream outage (a 502, an ERROR line, an upstream-error metric: ops alerts on demand).
//! Instead the body itself records, in a shared cell, that it was the one to fail and why;
//! the caller checks the cell before blaming the upstream. The record is written before
//! the error is handed to hyper, so it is always visible once hyper's error arrives.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::LengthLimitError;

/// Why a client's request body failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyFault {
    /// More bytes than allowed (`http_body_util::Limited` tripped): 413.
    #[error("request body larger than allowed")]
    TooLarge,
    /// The body could not be read: malformed framing or the client went away: 400.
    #[error("request body malformed or incomplete")]
    Malformed,
}

/// The shared record of a [`WatchedBody`]'s failure; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct BodyWatch(Arc<OnceLock<BodyFault>>);

impl BodyWatch {
    /// A fresh, empty record.
    pub fn new() -> BodyWatch {
        BodyWatch::default()
    }

    /// The body's failure, if it failed.
    pub fn fault(&self) -> Option<BodyFault> {
        self.0.get().copied()
    }
}

/// Wraps a body and records its first error in a [`BodyWatch`].
pub struct WatchedBody<B> {
    inner: B,
    watch: BodyWatch,
}

impl<B> WatchedBody<B> {
    /// Wraps `inner`; its errors are recorded in `watch`.
    pub fn new(inner: B, watch: BodyWatch) -> WatchedBody<B> {
        WatchedBody { inner, watch }
    }
}

/// Classifies a body error: only `Limited`'s own error means "too large"; everything else
/// the client's body stream yields is a malformed or incomplete body.
fn classify(e: &(dyn std::error::Error + 'static)) -> BodyFault {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.is::<LengthLimitError>() {
            return BodyFault::TooLarge;
        }
        current = err.source();
    }
    BodyFault::Malformed
}

impl<B> HttpBody for WatchedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                let e: axum::BoxError = e.into();
                let _ = self.watch.0.set(classify(e.as_ref()));
                Poll::Ready(Some(Err(e)))
            }
            other => other.map(|o| o.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, Limited};

    #[tokio::test]
    async fn over_the_limit_is_recorded_as_too_large() {
        let watch = BodyWatch::new();
        let body = WatchedBody::new(Limited::new(Full::new(Bytes::from(vec![0u8; 10])), 4), watch.clone());
        assert!(body.collect().await.is_err());
        assert_eq!(watch.fault(), Some(BodyFault::TooLarge));
    }

    #[tokio::test]
    async fn within_the_limit_records_nothing() {
        let watch = BodyWatch::new();
        let body = WatchedBody::new(Limited::new(Full::new(Bytes::from_static(b"abc")), 4), watch.clone());
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abc");
        assert_eq!(watch.fault(), None);
    }

    #[tokio::test]
    async fn any_other_body_error_is_malformed() {
        let watch = BodyWatch::new();
        let failing = http_body_util::StreamBody::new(futures_util::stream::iter([Err::<Frame<Bytes>, _>(
            std::io::Error::other("bad chunk size"),
        )]));
        let body = WatchedBody::new(Limited::new(failing, 4), watch.clone());
        assert!(body.collect().await.is_err());
        assert_eq!(watch.fault(), Some(BodyFault::Malformed));
    }
}
