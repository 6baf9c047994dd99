//! The read-only gate: a layer at the top of the client's stack that refuses POST, PUT, PATCH
//! and DELETE in read-only mode, dry runs included, before anything leaves the process. Reads
//! pass untouched. No caller can write by mistake, because every request passes here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use http::{Method, Request};
use tower::{BoxError, Layer, Service};

/// A write that read-only mode stopped.
#[derive(Debug, thiserror::Error)]
#[error("read-only mode refused {method} {path}: nothing was sent")]
pub struct ReadOnlyRefused {
    pub method: Method,
    pub path: String,
}

/// Whether writes may leave the process, shared by the layer and whoever shows the mode.
#[derive(Clone, Debug)]
pub struct Gate {
    read_only: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
}

impl Gate {
    pub fn new(read_only: bool) -> Self {
        Gate {
            read_only: Arc::new(AtomicBool::new(read_only)),
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::SeqCst)
    }

    /// How many writes were refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Whether a request with this method may change something. Only GET, HEAD and OPTIONS
    /// are reads: any other method, an unusual spelling included, counts as a write.
    pub fn is_write(method: &Method) -> bool {
        !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

impl<S> Layer<S> for Gate {
    type Service = GateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GateService {
            inner,
            gate: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GateService<S> {
    inner: S,
    gate: Gate,
}

impl<S, B> Service<Request<B>> for GateService<S>
where
    S: Service<Request<B>>,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if self.gate.is_read_only() && Gate::is_write(request.method()) {
            self.gate.refused.fetch_add(1, Ordering::SeqCst);
            let refused = ReadOnlyRefused {
                method: request.method().clone(),
                path: request.uri().path().to_string(),
            };
            tracing::warn!(%refused, "write refused");
            return futures::future::ready(Err(Box::new(refused) as BoxError)).boxed();
        }
        self.inner
            .call(request)
            .map(|r| r.map_err(Into::into))
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn refuses_writes_and_passes_reads() {
        let calls = Arc::new(AtomicU64::new(0));
        let seen = calls.clone();
        let inner = tower::service_fn(move |_r: Request<()>| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, BoxError>("answer") }
        });
        let gate = Gate::new(true);
        let service = gate.layer(inner);
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let request = Request::builder()
                .method(method)
                .uri("/api/v1/namespaces/x/configmaps?dryRun=All")
                .body(())
                .unwrap();
            let error = service.clone().oneshot(request).await.unwrap_err();
            assert!(error.downcast_ref::<ReadOnlyRefused>().is_some(), "{error}");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "nothing reached the inner service"
        );
        assert_eq!(gate.refused(), 4);
        let read = Request::builder()
            .method(Method::GET)
            .uri("/api/v1/nodes")
            .body(())
            .unwrap();
        assert_eq!(service.clone().oneshot(read).await.unwrap(), "answer");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let writable = Gate::new(false).layer(tower::service_fn(|_r: Request<()>| async {
            Ok::<_, BoxError>("ok")
        }));
        let write = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/x")
            .body(())
            .unwrap();
        assert_eq!(writable.oneshot(write).await.unwrap(), "ok");
    }
}
