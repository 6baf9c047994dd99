//! The layer every answer from the apiserver passes through: a cap on the size of its body,
//! enforced while it streams in (a server or proxy sending an endless body costs at most the
//! cap, never all the memory), and the Retry-After of an answer that sheds load (429).
//! It never retries and never waits.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// One MiB.
pub const MIB: usize = 1024 * 1024;

/// The most a response body may hold unless the request says otherwise: a Kubernetes object
/// is at most 1.5 MiB (etcd's limit), so an answer about one object, a Status or a plan's
/// read is far below this.
pub const MAX_RESPONSE_BYTES: usize = 16 * MIB;

/// How large a list one refresh reads may be. Lists are decoded as they stream in and only
/// the fields triage reads are kept, so memory stays far below this: a list of 100,000 real
/// nodes (about 10 KiB each as JSON) fits.
pub const MAX_LIST_BYTES: usize = 2048 * MIB;

/// How large `/metrics` may be (parsed line by line as it streams in).
pub const MAX_METRICS_BYTES: usize = 512 * MIB;

/// How large a health answer may be (`/livez?verbose` is a few KiB).
pub const MAX_HEALTH_BYTES: usize = MIB;

/// A request's own cap on its response body, as a request extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// An answer larger than its cap.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("response from {path} larger than {} MiB (kube-rescue's limit; the answer was not read further)", limit / MIB)]
pub struct TooLarge {
    pub path: String,
    pub limit: usize,
}

/// The longest Retry-After seen since it was last taken.
#[derive(Clone, Debug, Default)]
pub struct RetryAfter(Arc<Mutex<Option<Duration>>>);

impl RetryAfter {
    fn note(&self, wait: Duration) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(slot.map_or(wait, |w| w.max(wait)));
    }

    /// The longest Retry-After since the last call, and forgets it.
    pub fn take(&self) -> Option<Duration> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A Retry-After header's value as the apiserver sends it: whole seconds (capped at an
/// hour). An HTTP date is not what the apiserver sends and is ignored.
pub fn retry_after_seconds(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

/// The layer: see the module's documentation.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    pub retry_after: RetryAfter,
}

impl<S> tower::Layer<S> for Transport {
    type Service = TransportService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TransportService {
            inner,
            retry_after: self.retry_after.clone(),
        }
    }
}

pub struct TransportService<S> {
    inner: S,
    retry_after: RetryAfter,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for TransportService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + Unpin + 'static,
    ResBody::Error: Into<tower::BoxError>,
{
    type Response = http::Response<Capped<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map_or(MAX_RESPONSE_BYTES, |l| l.0);
        let path = request.uri().path().to_string();
        let retry_after = self.retry_after.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            if response.status() == http::StatusCode::TOO_MANY_REQUESTS
                && let Some(wait) = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after_seconds)
            {
                retry_after.note(wait);
            }
            // A declared length over the cap is refused before a byte of it is read.
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let over = declared.is_some_and(|n| n > limit as u64);
            Ok(response.map(|inner| Capped {
                inner,
                seen: 0,
                limit,
                path,
                over,
            }))
        })
    }
}

/// A response body that fails once more than `limit` bytes came in.
pub struct Capped<B> {
    inner: B,
    seen: usize,
    limit: usize,
    path: String,
    /// The declared length is already over the cap.
    over: bool,
}

impl<B> Capped<B> {
    fn too_large(&self) -> tower::BoxError {
        Box::new(TooLarge {
            path: self.path.clone(),
            limit: self.limit,
        })
    }
}

impl<B> Body for Capped<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<tower::BoxError>,
{
    type Data = Bytes;
    type Error = tower::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.over {
            return Poll::Ready(Some(Err(self.too_large())));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen = self.seen.saturating_add(data.len());
                    if self.seen > self.limit {
                        self.over = true;
                        return Poll::Ready(Some(Err(self.too_large())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.over && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    #[tokio::test]
    async fn a_body_over_its_cap_fails_with_the_path_and_the_limit() {
        let body = Capped {
            inner: Full::new(Bytes::from(vec![b'x'; 2 * MIB + 1])),
            seen: 0,
            limit: 2 * MIB,
            path: "/api/v1/nodes".into(),
            over: false,
        };
        let error = body.collect().await.err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "response from /api/v1/nodes larger than 2 MiB (kube-rescue's limit; the answer was not read further)"
            )
        );
        let small = Capped {
            inner: Full::new(Bytes::from_static(b"{}")),
            seen: 0,
            limit: 2 * MIB,
            path: "/version".into(),
            over: false,
        };
        assert_eq!(
            small.collect().await.ok().map(|b| b.to_bytes()).as_deref(),
            Some(&b"{}"[..])
        );
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        assert_eq!(retry_after_seconds(" 5"), Some(Duration::from_secs(5)));
        assert_eq!(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(
            retry_after_seconds("999999"),
            Some(Duration::from_secs(3600))
        );
    }
}
