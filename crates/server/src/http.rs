//! Serving the router over TCP with limits that keep slow or greedy clients from
//! starving anyone.
//!
//! - **Header-read timeout**: a client that has not sent its whole request head within
//!   [`HttpLimits::header_read_timeout`] is disconnected (the slowloris defence).
//! - **Idle timeout**: a keep-alive connection with no request for
//!   [`HttpLimits::idle_timeout`] is closed.
//! - **Connection cap**: beyond [`HttpLimits::max_connections`] open connections a new
//!   one gets EC2's `RequestLimitExceeded` envelope (HTTP 503) and is closed, so the
//!   descriptors and memory of the process stay bounded.
//! - **Descriptor limit**: [`raise_fd_limit`] lifts the soft `RLIMIT_NOFILE` to the hard
//!   limit at start, so the cap, not the kernel, is what refuses connections.
//!
//! Requests with too many headers or a very long URI are answered by the router
//! (`guard_request` in the crate root) with EC2's XML envelope; hyper's own, larger
//! limits stay as the last resort.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use strato_ec2_wire::xml::Rope;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The limits of the EC2 endpoint's HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Hyper's own ceilings, above the router's checks (which answer with EC2's envelope).
const HYPER_MAX_HEADERS: usize = 400;
const HYPER_MAX_HEADER_BYTES: usize = 256 * 1024;

/// Raises the soft descriptor limit to the hard one (at most 2^20); returns it.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let target = lim.maximum.unwrap_or(1 << 20).min(1 << 20);
    if lim.current.is_some_and(|c| c >= target) {
        return Ok(lim.current.unwrap_or(target));
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: lim.maximum,
        },
    )
    .map_err(std::io::Error::from)?;
    Ok(target)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests
/// finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut refusals = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (mut stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = refusals.join_next(), if !refusals.is_empty() => continue,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the cap: one short answer, then close. Bounded too, so a flood of
            // connections cannot pile up refusals.
            if refusals.len() < 256 {
                refusals.spawn(async move {
                    let rid = uuid::Uuid::new_v4().to_string();
                    let body = strato_ec2_wire::xml::error(
                        "RequestLimitExceeded",
                        "Too many open connections; retry shortly.",
                        &rid,
                    );
                    let head = format!(
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/xml;charset=UTF-8\r\nx-amzn-requestid: {rid}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        stream.write_all(head.as_bytes()).await?;
                        stream.write_all(body.as_bytes()).await?;
                        stream.shutdown().await
                    })
                    .await;
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_headers(HYPER_MAX_HEADERS)
            .max_buf_size(HYPER_MAX_HEADER_BYTES.max(8192 + 1))
            .keep_alive(true)
            .serve_connection(
                TokioIo::new(IdleStream::new(stream, limits.idle_timeout)),
                svc,
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing them");
        }
    }
    Ok(())
}

/// A TCP stream that fails its reads once nothing has arrived for `idle`, which ends
/// a keep-alive connection whose client went quiet (hyper's header-read timeout only
/// runs once a request has begun).
struct IdleStream {
    inner: tokio::net::TcpStream,
    idle: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl IdleStream {
    fn new(inner: tokio::net::TcpStream, idle: Duration) -> Self {
        IdleStream {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl tokio::io::AsyncRead for IdleStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let before = buf.filled().len();
        match std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = tokio::time::Instant::now() + self.idle;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "idle connection",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl tokio::io::AsyncWrite for IdleStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    // Vectored writes pass through: without them hyper copies every body into its
    // own buffer before writing (megabytes per large listing) instead of handing the
    // body's pieces to one `writev`.
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An answer's body: the pieces of an encoded document ([`Rope`]), sent one frame each
/// with the whole length announced up front (`content-length`), so kept pieces reach
/// the socket without being copied into one buffer first.
pub struct RopeBody {
    pieces: std::collections::VecDeque<bytes::Bytes>,
    left: u64,
}

impl From<Rope> for RopeBody {
    fn from(r: Rope) -> Self {
        RopeBody {
            left: r.len() as u64,
            pieces: r.into_pieces().into(),
        }
    }
}

impl http_body::Body for RopeBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let next = self.pieces.pop_front();
        if let Some(p) = &next {
            self.left -= p.len() as u64;
        }
        std::task::Poll::Ready(next.map(|p| Ok(http_body::Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}
