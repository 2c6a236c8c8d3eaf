//! The accept loop and what every connection is held to before and after its
//! requests reach the router.
//!
//! Written out rather than `axum::serve` because the limits below need a hand on each
//! connection:
//! - **header timeout**, counted from `accept`: protocol detection (the HTTP/2
//!   preface) and the first request's headers must arrive within it, so silent
//!   sockets and half prefaces are closed; later HTTP/1 requests are held to it by
//!   hyper's own header-read timeout;
//! - **idle timeout**: a connection with no request in flight (response bodies
//!   included) for that long is closed, HTTP/1 keep-alive and HTTP/2 alike; HTTP/2
//!   also sends keep-alive pings and drops peers that do not answer them;
//! - **write timeout**: a write the peer does not drain for that long fails and
//!   closes the connection, so a client that stops reading cannot pin a response;
//! - **connection cap**: past it, new connections are accepted and closed at once;
//! - **shutdown**: on the signal, the listener closes, every connection is asked to
//!   finish (HTTP/1 after its current request, HTTP/2 with `GOAWAY`), and after the
//!   shutdown timeout whatever is left is abandoned.

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// Limits on each connection, enforced before a request reaches the router.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From `accept` to the end of the first request's headers (protocol detection
    /// included); also each later HTTP/1 request's headers.
    pub header_timeout: Duration,
    /// Longest a connection stays open with no request in flight.
    pub idle_timeout: Duration,
    /// Longest one write may wait for the peer to make room (slow readers).
    pub write_timeout: Duration,
    /// Largest request head (request line and headers); past it, `431`.
    pub max_header_bytes: usize,
    /// Most header fields in one request; past it, `431`.
    pub max_headers: usize,
    /// Connections served at once; further ones are accepted and closed.
    pub max_connections: usize,
    /// After the shutdown signal, how long in-flight requests get to finish.
    pub shutdown_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_header_bytes: 64 << 10,
            max_headers: 100,
            max_connections: 4096,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// What the watchdog of one connection needs to know about its requests.
#[derive(Debug)]
struct Activity {
    /// Requests whose headers have arrived.
    started: AtomicU64,
    /// Requests not yet finished (until their response body is done or dropped).
    in_flight: AtomicUsize,
    /// When `in_flight` last dropped to zero.
    idle_since: Mutex<Instant>,
    changed: Notify,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity {
            started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            changed: Notify::new(),
        })
    }

    fn begin(self: &Arc<Self>) -> RequestGuard {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
        RequestGuard(Arc::clone(self))
    }

    /// When the connection must be closed if nothing changes meanwhile; `None`
    /// while a request is in flight.
    fn deadline(&self, accepted: Instant, limits: &ConnectionLimits) -> Option<Instant> {
        if self.started.load(Ordering::SeqCst) == 0 {
            return Some(accepted + limits.header_timeout);
        }
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = *self
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Some(since + limits.idle_timeout)
    }
}

/// Held by a request until its response body is finished or dropped.
#[derive(Debug)]
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        // Set before the count drops, so the watchdog never sees zero with a stale time.
        *activity
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        activity.in_flight.fetch_sub(1, Ordering::SeqCst);
        activity.changed.notify_one();
    }
}

/// A response body that keeps its request counted as in flight until it is done.
struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A stream whose writes fail with `TimedOut` when the peer leaves them pending
/// for longer than `timeout` (reads are bounded by the header and idle timeouts).
pub struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// After the inner write answered `ready`: forget the stall. After `pending`:
    /// start (or keep) the stall timer, and fail once it has run out.
    fn check<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer did not read the response in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, poll)
    }
}

fn builder(limits: &ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    // Pings every half idle timeout; a peer that does not answer within the write
    // timeout is gone. Idle-but-answering peers are closed by the idle watchdog.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval((limits.idle_timeout / 2).max(Duration::from_secs(1)))
        .keep_alive_timeout(limits.write_timeout)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Accepts connections until `shutdown` resolves, then gives in-flight requests
/// `limits.shutdown_timeout` to finish; returns whether they all did.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    service: axum::Router,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let builder = Arc::new(builder(limits));
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let connections = Arc::new(Semaphore::new(max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, usually: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&connections).try_acquire_owned() else {
            // Accepted and closed at once: the kernel's queue must not fill with
            // connections that wait behind idle ones.
            tracing::debug!(%peer, "connection refused: --max-connections reached");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let limits = *limits;
        let builder = Arc::clone(&builder);
        let service = service.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            serve_one(stream, peer, service, &builder, &limits, stopping).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let finished = tokio::time::timeout(limits.shutdown_timeout, connections.acquire_many(all))
        .await
        .is_ok();
    if !finished {
        tracing::warn!(
            open = max_connections - connections.available_permits(),
            "shutdown: gave up waiting for in-flight requests"
        );
    }
    finished
}

async fn serve_one(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    service: axum::Router,
    builder: &Builder<TokioExecutor>,
    limits: &ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let accepted = Instant::now();
    let activity = Activity::new();
    let counted = Arc::clone(&activity);
    let hyper_service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let guard = counted.begin();
        let service = service.clone();
        async move {
            let response = service.oneshot(request.map(Body::new)).await;
            response.map(|r| {
                r.map(|inner| {
                    Body::new(GuardedBody {
                        inner,
                        _guard: guard,
                    })
                })
            })
        }
    });
    let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
    let mut connection = std::pin::pin!(builder.serve_connection_with_upgrades(io, hyper_service));
    let mut draining = *stopping.borrow();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = activity.deadline(accepted, limits);
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = expired => {
                if activity.deadline(accepted, limits).is_some_and(|at| at <= Instant::now()) {
                    let phase = if activity.started.load(Ordering::SeqCst) == 0 {
                        "no complete request headers within --header-timeout"
                    } else {
                        "idle past --idle-timeout"
                    };
                    tracing::debug!(%peer, phase, "closing connection");
                    // Dropped: nothing is in flight, so nothing is lost.
                    return;
                }
            }
            () = activity.changed.notified() => {}
            changed = stopping.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_the_peer_never_drains_times_out() {
        // A duplex pipe with a 64-byte buffer nobody reads: the second write stalls.
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut stream = WriteDeadline::new(ours, Duration::from_millis(50));
        let err = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Err(e) = stream.write_all(&[0; 64]).await {
                    return e;
                }
            }
        })
        .await
        .expect("the stalled write failed rather than hanging");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_drained_stream_never_times_out() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut stream = WriteDeadline::new(ours, Duration::from_millis(50));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut theirs, &mut sink)
                .await
                .map(|_| sink.len())
        });
        stream.write_all(&[7; 64 * 100]).await.expect("drained");
        stream.shutdown().await.expect("closed");
        drop(stream);
        assert_eq!(reader.await.expect("joined").expect("read"), 6400);
    }
}
