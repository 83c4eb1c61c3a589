//! The bytes the edge buffers. It keeps each request's body whole (to send it again on
//! failover) and each answer whole (to fail over until its last byte), so both are taken from
//! one budget shared by every request at once: past it, a request is answered 503 `overloaded`
//! with `Retry-After` at once, and the edge does not grow. A body that declares its length takes
//! all of it before a byte is read, so thousands of stalled bodies that each promise 100 KB are
//! refused after the budget's worth of them, not held.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most bytes of bodies and answers the edge holds at once, across all requests.
pub const BUFFER_BUDGET: usize = 128 << 20;

/// The shared budget: one permit per byte.
#[derive(Clone)]
pub struct Budget(Arc<Semaphore>);

/// Bytes taken from the budget, given back when dropped.
#[derive(Default)]
pub struct Held(Option<OwnedSemaphorePermit>);

/// Why a body could not be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Longer than the limit (or it said it would be).
    TooLarge,
    /// The budget is spent.
    Overloaded,
    /// It did not arrive in time ([`tandem_api::server::BodyTimeout`]).
    TimedOut,
    /// The connection broke while it was read.
    Broken,
}

impl Budget {
    pub fn new(bytes: usize) -> Budget {
        Budget(Arc::new(Semaphore::new(bytes)))
    }

    /// Bytes left.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }

    /// Takes `n` more bytes into `held`, if the budget has them.
    fn take(&self, n: usize, held: &mut Held) -> bool {
        if n == 0 {
            return true;
        }
        let Ok(n) = u32::try_from(n) else {
            return false;
        };
        match self.0.clone().try_acquire_many_owned(n) {
            Ok(permit) => {
                match &mut held.0 {
                    Some(h) => h.merge(permit),
                    None => held.0 = Some(permit),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Reads `body` whole, at most `limit` bytes, each byte taken from the budget before it is
    /// kept: a declared length all at once, before reading.
    pub async fn collect<B>(&self, body: B, limit: usize) -> Result<(Bytes, Held), Refused>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut held = Held::default();
        let declared = body
            .size_hint()
            .exact()
            .and_then(|n| usize::try_from(n).ok());
        let mut taken = 0;
        if let Some(n) = declared {
            if n > limit {
                return Err(Refused::TooLarge);
            }
            if !self.take(n, &mut held) {
                return Err(Refused::Overloaded);
            }
            taken = n;
        }
        let mut kept = BytesMut::with_capacity(declared.unwrap_or(0));
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(e.into()))?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers
            };
            if kept.len() + chunk.len() > limit {
                return Err(Refused::TooLarge);
            }
            let more = (kept.len() + chunk.len()).saturating_sub(taken);
            if !self.take(more, &mut held) {
                return Err(Refused::Overloaded);
            }
            taken += more;
            kept.extend_from_slice(&chunk);
        }
        Ok((kept.freeze(), held))
    }
}

fn classify(err: Box<dyn std::error::Error + Send + Sync>) -> Refused {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    while let Some(e) = source {
        if e.is::<tandem_api::server::BodyTimeout>() {
            return Refused::TimedOut;
        }
        source = e.source();
    }
    Refused::Broken
}

/// A kept body as a response body, giving its bytes back to the budget once it is sent (or the
/// client is gone).
pub fn body(bytes: Bytes, held: Held) -> Body {
    Body::new(HeldBody {
        inner: Full::new(bytes),
        _held: held,
    })
}

struct HeldBody {
    inner: Full<Bytes>,
    _held: Held,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_declared_length_is_taken_before_reading_and_given_back_when_dropped() {
        let budget = Budget::new(100);
        let (kept, held) = budget
            .collect(Full::new(Bytes::from(vec![1; 60])), 1000)
            .await
            .unwrap();
        assert_eq!((kept.len(), budget.available()), (60, 40));
        // Declared longer than the budget has left: refused before a byte is read.
        let refused = budget
            .collect(Full::new(Bytes::from(vec![1; 60])), 1000)
            .await;
        assert_eq!(refused.err(), Some(Refused::Overloaded));
        assert_eq!(budget.available(), 40, "a refusal keeps nothing");
        let refused = budget
            .collect(Full::new(Bytes::from(vec![1; 60])), 50)
            .await;
        assert_eq!(refused.err(), Some(Refused::TooLarge));
        // Sent on, the body gives its bytes back once it is done with.
        let response = body(kept, held);
        let sent = response.collect().await.unwrap().to_bytes();
        assert_eq!((sent.len(), budget.available()), (60, 100));
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_takes_its_bytes_as_they_come() {
        let budget = Budget::new(100);
        let chunks = futures::stream::iter(
            [30usize, 30, 30, 30]
                .map(|n| Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(vec![0; n])))),
        );
        let refused = budget
            .collect(http_body_util::StreamBody::new(chunks), 1000)
            .await;
        assert_eq!(refused.err(), Some(Refused::Overloaded));
        assert_eq!(budget.available(), 100);
    }
}
