//! The EC2 instance metadata service (IMDS): `http://169.254.169.254/`, IMDSv1 and
//! IMDSv2, as cloud-init, the AWS SDKs and `ec2-metadata` expect it.
//!
//! One [`Imds`] per host serves every VPC: the agent binds a listener on
//! 169.254.169.254:80 inside each VPC namespace ([`bind_in_namespace`]) and runs
//! [`serve`] on it with that VPC's id. A caller is identified by (VPC of the
//! listener, TCP peer IPv4 address) through the [`MetadataSource`]; the dataplane's
//! anti-spoofing is what makes the peer address trustworthy.
//!
//! What a request gets, in order:
//!
//! | check                                                  | answer |
//! |--------------------------------------------------------|--------|
//! | method not GET/HEAD/PUT, PUT not on `/latest/api/token`, GET on it | 405 |
//! | no instance behind (VPC, peer address), IPv6 peer       | 404 |
//! | `HttpEndpoint` disabled                                 | 403 (EC2 drops the request instead) |
//! | PUT token with `X-Forwarded-For`                        | 403 |
//! | PUT token, TTL header missing / not 1–21600             | 400 |
//! | PUT token                                               | 200, the token, sent with IP TTL = hop limit |
//! | GET with a token that is bad, expired or another instance's | 401 |
//! | GET without token, `HttpTokens` required                | 401 |
//! | GET of a path the instance does not have                | 404 |
//! | GET                                                     | 200 |
//!
//! The hop limit (`HttpPutResponseHopLimit`) is EC2's defence against tokens
//! leaking to containers or other hosts behind the instance: a token response
//! leaves with IP TTL = hop limit, so it dies that many routers away. Each
//! connection is served by hyper over a socket wrapper that sets `IP_TTL` right
//! before response bytes are handed to the kernel. Other responses keep the
//! system default (64), except that once a connection has received a token its
//! TTL stays at the hop limit: TCP retransmits with the TTL current at that time,
//! so raising it for a later (pipelined) response could deliver the token after
//! all.
//!
//! Differences from EC2, on purpose: a disabled endpoint answers 403 rather than
//! not at all (a prompt, explicit refusal beats a client timeout, and nothing
//! depends on the silence); the signed identity documents (`signature`, `pkcs7`,
//! `rsa2048`) are absent, since no client could verify Strato's signature against
//! AWS's certificates; there is no IPv6 endpoint (`[fd00:ec2::254]`); an unknown
//! caller (which EC2 cannot have) gets 404; error pages are EC2's XHTML
//! `404 - Not Found` kind, `text/html`, everything else `text/plain`.

mod netns;
mod token;
mod tree;

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::RngCore;
use strato_agent_api::{InstanceMetadata, MetadataSource};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub use netns::bind_in_namespace;
pub use tree::VERSIONS;

use token::TokenKey;

/// Request header carrying an IMDSv2 token.
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Request header of a token PUT asking for a lifetime in seconds, and response
/// header of the lifetime granted.
pub const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// Longest token lifetime EC2 grants: six hours.
pub const MAX_TOKEN_TTL_SECS: u64 = 21_600;

/// Where the service reads the time from (token expiry); tests pass a fake.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Connections served at once per listener (one VPC). A guest that opens more waits
/// for accept; this keeps one VPC from exhausting the host's file descriptors.
const MAX_CONNECTIONS: usize = 512;
/// A client has this long to send a request's headers, which also bounds how long an
/// idle keep-alive connection is held.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The metadata service: shared by all VPC listeners of a host.
pub struct Imds {
    source: Arc<dyn MetadataSource>,
    /// Random per process: a restart of the service invalidates outstanding tokens.
    tokens: TokenKey,
    clock: Clock,
    /// Every write to a client socket with the IP TTL the socket had, so tests can
    /// check the TTL really set rather than the one asked for.
    #[cfg(test)]
    writes: std::sync::Mutex<Vec<WriteRecord>>,
}

#[cfg(test)]
#[derive(Clone, Debug)]
struct WriteRecord {
    peer: SocketAddr,
    ttl: u32,
    bytes: Vec<u8>,
}

impl Imds {
    /// A service answering from `source`, with the system clock and a fresh random
    /// token key.
    pub fn new(source: Arc<dyn MetadataSource>) -> Arc<Imds> {
        Imds::with_clock(source, Arc::new(SystemTime::now))
    }

    /// Like [`Imds::new`], with the time read from `clock`.
    pub fn with_clock(source: Arc<dyn MetadataSource>, clock: Clock) -> Arc<Imds> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Arc::new(Imds {
            source,
            tokens: TokenKey::new(key),
            clock,
            #[cfg(test)]
            writes: Default::default(),
        })
    }

    fn now_ms(&self) -> u64 {
        (self.clock)()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// The answer to one request from `peer` in VPC `vpc_id`. Pure apart from the
    /// source lookup: the socket side (TTL) is applied by the caller from
    /// [`Reply::hop_limit`].
    fn respond(
        &self,
        vpc_id: &str,
        peer: IpAddr,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Reply {
        let segments = split_path(path);
        let token_path = segments == ["latest", "api", "token"];
        match (method, token_path) {
            (&Method::PUT, true) => {}
            (&Method::GET | &Method::HEAD, false) => {}
            (_, true) => return Reply::error(StatusCode::METHOD_NOT_ALLOWED).allow("PUT"),
            (_, false) => return Reply::error(StatusCode::METHOD_NOT_ALLOWED).allow("GET, HEAD"),
        }
        // IPv4-mapped IPv6 peers (a dual-stack listener) are IPv4 callers.
        let ip = match peer {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(ip) => ip.to_ipv4_mapped(),
        };
        let Some(md) = ip.and_then(|ip| self.source.instance_metadata(vpc_id, ip)) else {
            // EC2 always knows its caller; here a stray address (a host-side
            // process, a stopped instance's old address) simply has no metadata.
            return Reply::error(StatusCode::NOT_FOUND);
        };
        if !md.options.enabled {
            return Reply::error(StatusCode::FORBIDDEN);
        }
        if method == Method::PUT {
            self.issue_token(&md, headers)
        } else {
            self.serve_path(&md, &segments, headers)
        }
    }

    /// PUT /latest/api/token.
    fn issue_token(&self, md: &InstanceMetadata, headers: &HeaderMap) -> Reply {
        // A request relayed by a proxy (an SSRF through a reverse proxy, typically)
        // must not obtain a token: EC2 refuses any PUT carrying this header.
        if headers.contains_key("x-forwarded-for") {
            return Reply::error(StatusCode::FORBIDDEN);
        }
        let Some(ttl) = headers
            .get(TOKEN_TTL_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|t| (1..=MAX_TOKEN_TTL_SECS).contains(t))
        else {
            return Reply::error(StatusCode::BAD_REQUEST);
        };
        let token = self
            .tokens
            .issue(&md.instance_id, self.now_ms() + ttl * 1000);
        let mut reply = Reply::ok(token.into_bytes());
        reply.header(TOKEN_TTL_HEADER, &ttl.to_string());
        // IP TTL is 1–255; the API allows 1–64.
        reply.hop_limit = Some(md.options.hop_limit.clamp(1, 255));
        reply
    }

    /// GET/HEAD of a metadata path.
    fn serve_path(&self, md: &InstanceMetadata, segments: &[String], headers: &HeaderMap) -> Reply {
        match headers.get(TOKEN_HEADER) {
            Some(token) => {
                let valid = token
                    .to_str()
                    .ok()
                    .and_then(|t| self.tokens.check(t, &md.instance_id, self.now_ms()));
                // A token that is presented must be good even where IMDSv1 is allowed.
                if valid.is_none() {
                    return Reply::error(StatusCode::UNAUTHORIZED);
                }
            }
            None if md.options.tokens_required => return Reply::error(StatusCode::UNAUTHORIZED),
            None => {}
        }
        match tree::resolve(md, segments) {
            Some(node) => Reply::ok(node.into_body()),
            None => Reply::error(StatusCode::NOT_FOUND),
        }
    }
}

/// Non-empty, percent-decoded path segments: `//latest/meta-data/` is
/// `["latest", "meta-data"]`. The query string is not part of `path`.
fn split_path(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// A response before it becomes HTTP.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
    /// For token responses: the IP TTL the response must leave with.
    hop_limit: Option<u32>,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Reply {
        // EC2 labels everything text/plain, the JSON identity document included.
        Reply {
            status: StatusCode::OK,
            content_type: "text/plain",
            headers: Vec::new(),
            body,
            hop_limit: None,
        }
    }

    /// EC2's error page: a small XHTML document titled like `404 - Not Found`.
    fn error(status: StatusCode) -> Reply {
        let title = format!(
            "{} - {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n\
             <!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\
             \t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n\
             <html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n \
             <head>\n  <title>{title}</title>\n </head>\n \
             <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
        );
        Reply {
            status,
            content_type: "text/html",
            headers: Vec::new(),
            body: body.into_bytes(),
            hop_limit: None,
        }
    }

    fn allow(mut self, methods: &'static str) -> Reply {
        self.headers
            .push((ALLOW, HeaderValue::from_static(methods)));
        self
    }

    fn header(&mut self, name: &'static str, value: &str) {
        let value = HeaderValue::from_str(value).expect("header values we build are ASCII");
        self.headers.push((HeaderName::from_static(name), value));
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(Bytes::from(self.body)));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        h.insert(SERVER, HeaderValue::from_static("EC2ws"));
        for (name, value) in self.headers {
            h.append(name, value);
        }
        resp
    }
}

/// Serves connections from `listener` for VPC `vpc_id` until the returned future is
/// dropped (its task aborted); connections in progress end with it.
///
/// Accept errors (a peer that reset before accept, a full file table) are logged
/// and retried after a short pause, so the listener never stops on its own.
pub async fn serve(imds: Arc<Imds>, vpc_id: String, listener: TcpListener) {
    let vpc_id: Arc<str> = vpc_id.into();
    // Owning the connection tasks in a JoinSet aborts them when this future is
    // dropped.
    let mut conns = JoinSet::new();
    loop {
        while conns.len() >= MAX_CONNECTIONS {
            reap(conns.join_next().await);
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(serve_connection(imds.clone(), vpc_id.clone(), stream, peer));
                }
                Err(e) => {
                    tracing::warn!(vpc = %vpc_id, error = %e, "imds: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            done = conns.join_next(), if !conns.is_empty() => reap(done),
        }
    }
}

fn reap(done: Option<Result<(), tokio::task::JoinError>>) {
    if let Some(Err(e)) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "imds: connection task panicked");
        }
    }
}

/// One client connection, HTTP/1.1 with keep-alive.
///
/// Why not axum's `serve`: the hop limit needs the socket. Token responses must
/// leave with IP TTL = the instance's hop limit, so the connection is served here
/// over a [`TtlStream`] that sets the TTL the handler asked for right before
/// handing response bytes to the kernel.
async fn serve_connection(imds: Arc<Imds>, vpc_id: Arc<str>, stream: TcpStream, peer: SocketAddr) {
    let want_ttl = Arc::new(AtomicU32::new(0));
    let io = TtlStream {
        inner: stream,
        want: want_ttl.clone(),
        applied: 0,
        #[cfg(test)]
        log: (imds.clone(), peer),
    };
    let svc = service_fn(move |req: Request<Incoming>| {
        let imds = imds.clone();
        let vpc_id = vpc_id.clone();
        let want_ttl = want_ttl.clone();
        async move {
            let (parts, _body) = req.into_parts();
            let method = parts.method.clone();
            let path = parts.uri.path().to_string();
            // The source may block (a database query): keep it off the reactor.
            let reply = tokio::task::spawn_blocking(move || {
                imds.respond(&vpc_id, peer.ip(), &parts.method, &path, &parts.headers)
            })
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "imds: request handler failed");
                Reply::error(StatusCode::INTERNAL_SERVER_ERROR)
            });
            tracing::debug!(%peer, %method, uri = %parts.uri, status = reply.status.as_u16(), "imds");
            if let Some(hop_limit) = reply.hop_limit {
                // Never lowered back on this connection. TCP may retransmit the
                // token's segments later, and it does so with the socket's TTL at
                // that moment; a client beyond the hop limit could pipeline a GET
                // behind its PUT, and a reset to 64 for that GET would let the
                // retransmitted token reach it. A connection that asked for a
                // token keeps the limit; everything else on it still reaches a
                // client within the limit, the only kind that can use it.
                want_ttl.store(hop_limit, Ordering::Relaxed);
            }
            Ok::<_, Infallible>(reply.into_response())
        }
    });
    // Simple clients (`printf … | nc`) shut their sending side once the request is
    // out and still wait for the answer: a half-closed connection gets it.
    let conn = http1::Builder::new()
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc);
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "imds: connection ended with an error");
    }
}

/// A client socket that applies the IP TTL last asked for (`want`, 0 = leave the
/// system default) before each write, so a response leaves with the TTL chosen
/// when it was produced.
struct TtlStream {
    inner: TcpStream,
    want: Arc<AtomicU32>,
    /// The TTL currently set on the socket (0 = never changed).
    applied: u32,
    #[cfg(test)]
    log: (Arc<Imds>, SocketAddr),
}

impl AsyncRead for TtlStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TtlStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let want = this.want.load(Ordering::Relaxed);
        if want != 0 && want != this.applied {
            // On failure the write fails and hyper drops the connection: a token
            // is never sent with a TTL other than its hop limit.
            this.inner.set_ttl(want)?;
            this.applied = want;
        }
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        #[cfg(test)]
        if let Poll::Ready(Ok(n)) = res {
            let (imds, peer) = &this.log;
            let ttl = this.inner.ttl().unwrap_or(0);
            imds.writes.lock().unwrap().push(WriteRecord {
                peer: *peer,
                ttl,
                bytes: buf[..n].to_vec(),
            });
        }
        res
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
