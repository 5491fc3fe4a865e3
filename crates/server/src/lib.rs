//! The HTTP front door.
//!
//! Every request goes: parse parameters → authenticate (SigV4) → dispatch to the
//! action → encode XML. Each request gets an id that appears in the response
//! (`<requestId>`, `x-amzn-RequestId`) and on the request's log line. Errors are mapped
//! to EC2's codes in exactly one place ([`errors::to_wire`]).

pub mod actions;
pub mod auth;
pub mod errors;
pub mod http;
pub mod metrics;
pub mod throttle;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::RopeBody;
use std::sync::Arc;
use std::time::Instant;
use strato_common::{Error, Result};
use strato_control::ControlPlane;
use strato_ec2_wire::xml::{self, Rope};
use strato_ec2_wire::Params;

/// Largest request body accepted (EC2's largest legitimate requests, RunInstances with
/// 16 KiB of base64 user data and many tags, are far below this).
pub const MAX_BODY: usize = 1024 * 1024;

/// Shared state of the front door.
pub struct AppState {
    pub control: Arc<ControlPlane>,
    pub metrics: metrics::Metrics,
    pub throttle: throttle::Throttle,
}

/// Builds the router: the EC2 endpoint at `/` (GET and POST), `/metrics`, `/healthz`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(api_handler)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn metrics_handler(State(st): State<Arc<AppState>>) -> Response {
    let counts = st.control.instance_state_counts().unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(&counts),
    )
        .into_response()
}

/// Whether a successful `action` may have changed what the dataplane enforces (the
/// model's effect table; STS and unknown names change nothing).
fn shapes_packets(action: &str) -> bool {
    strato_ec2_model::Operation::from_name(action)
        .is_some_and(|op| op.effect() == strato_ec2_model::Effect::Network)
}

/// The throttling class of one request: EC2 sizes buckets by whether the action
/// mutates and, for reads, whether it asks for everything at once.
fn action_class(op: strato_ec2_model::Operation, p: &Params) -> throttle::ActionClass {
    use throttle::ActionClass as C;
    if op.effect() != strato_ec2_model::Effect::Read {
        return C::Mutating;
    }
    let narrowed = p
        .keys()
        .any(|k| !matches!(k, "Action" | "Version" | "DryRun") && !k.starts_with("X-Amz-"));
    if op.name().starts_with("Describe") && !narrowed {
        C::UnfilteredNonMutating
    } else {
        C::NonMutating
    }
}

/// The AWS services this endpoint serves, each by the name requests are signed for
/// (the service of the SigV4 credential scope): the signed name, not the action,
/// decides which service's actions and error envelope a request gets, as it does at
/// AWS, where each service has an endpoint of its own.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Protocol {
    /// `ec2`: the EC2 Query protocol (and every request that names no service).
    Ec2,
    /// `sts`: GetCallerIdentity, which tools call first.
    Sts,
}

impl Protocol {
    /// The service a signing name selects; `None` for a service Strato does not serve.
    fn from_signing_name(name: &str) -> Option<Protocol> {
        match name {
            "ec2" => Some(Protocol::Ec2),
            "sts" => Some(Protocol::Sts),
            _ => None,
        }
    }

    fn signing_name(self) -> &'static str {
        match self {
            Protocol::Ec2 => "ec2",
            Protocol::Sts => "sts",
        }
    }
}

/// The service named by the request's credential scope (`Credential=AKID/date/region/
/// service/aws4_request`, in the Authorization header or a presigned query), read
/// before the signature is checked so that even an authentication failure is answered
/// in that service's envelope.
fn signed_service<'a>(headers: &'a HeaderMap, params: &'a Params) -> Option<&'a str> {
    let scope = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => auth
            .split([',', ' '])
            .find_map(|part| part.trim().strip_prefix("Credential="))?,
        None => params.get("X-Amz-Credential")?,
    };
    scope.split('/').nth(3)
}

async fn api_handler(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Some((status, code, message)) = guard_request(&uri, &headers) {
        tracing::info!(request_id = %request_id, status = status.as_u16(), code, "request");
        st.metrics
            .observe("unknown", code, started.elapsed().as_secs_f64());
        return xml_response(status, xml::error(code, message, &request_id), &request_id);
    }
    // An unreadable or oversized body still gets EC2's envelope and a request id.
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let e = Error::RequestTooLarge(format!(
                "The request body could not be read: {}",
                rejection.body_text()
            ));
            let w = errors::to_wire(&e);
            let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                w.code.clone()
            } else {
                "InvalidRequest".to_string()
            };
            tracing::info!(request_id = %request_id, status = rejection.status().as_u16(), code = %code, "request");
            st.metrics
                .observe("unknown", &code, started.elapsed().as_secs_f64());
            return xml_response(
                rejection.status(),
                xml::error(&code, &w.message, &request_id),
                &request_id,
            );
        }
    };
    let st2 = st.clone();
    let rid = request_id.clone();
    // Actions do blocking work (SQLite, RSA key generation): keep it off the reactor.
    let joined =
        tokio::task::spawn_blocking(move || serve(&st2, &rid, &method, &uri, &headers, &body))
            .await;
    let (action, protocol, result) = match joined {
        Ok(r) => r,
        Err(e) => (
            "unknown".to_string(),
            Protocol::Ec2,
            Err(Error::Internal(format!("handler panicked: {e}"))),
        ),
    };
    let elapsed = started.elapsed();
    let (status, code, body) = match result {
        Ok(body) => (StatusCode::OK, "OK".to_string(), body),
        Err(e) => {
            let w = errors::to_wire(&e);
            if w.status.is_server_error() {
                tracing::error!(request_id = %request_id, action = %action, error = %e, "request failed");
            }
            let body = match protocol {
                Protocol::Ec2 => xml::error(&w.code, &w.message, &request_id),
                Protocol::Sts => actions::sts::error(&w, &request_id),
            };
            (w.status, w.code, Rope::from(body))
        }
    };
    tracing::info!(
        request_id = %request_id,
        action = %action,
        status = status.as_u16(),
        code = %code,
        micros = elapsed.as_micros() as u64,
        "request"
    );
    let metric_action = if actions::is_known(&action) {
        action.as_str()
    } else {
        "unknown"
    };
    st.metrics
        .observe(metric_action, &code, elapsed.as_secs_f64());
    let mut resp = xml_response(status, body, &request_id);
    // The time spent in the server (decode, auth, handler, encode; not the network),
    // in the standard Server-Timing header, so clients and benchmarks can tell server
    // time from transport time without scraping logs.
    if let Ok(v) =
        axum::http::HeaderValue::from_str(&format!("strato;dur={:.3}", elapsed.as_secs_f64() * 1e3))
    {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

/// The most headers and the longest URI a request may have. Real SDK requests carry
/// about ten headers and, for GET, URIs of a few kilobytes at most.
pub const MAX_HEADERS: usize = 100;
pub const MAX_URI: usize = 16 * 1024;

/// Refuses a request whose head is out of bounds, with EC2's envelope (hyper's own
/// limits, set higher, would answer with an empty body).
fn guard_request(
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<(StatusCode, &'static str, &'static str)> {
    if headers.len() > MAX_HEADERS {
        return Some((
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "RequestHeaderFieldsTooLarge",
            "The request has more headers than this endpoint accepts.",
        ));
    }
    let uri_len = uri.path().len() + uri.query().map_or(0, |q| q.len() + 1);
    if uri_len > MAX_URI {
        return Some((
            StatusCode::URI_TOO_LONG,
            "RequestURITooLong",
            "The request URI is longer than this endpoint accepts; send the parameters in a POST body.",
        ));
    }
    None
}

/// An XML answer with EC2's content type and the request id header.
fn xml_response(status: StatusCode, body: impl Into<Rope>, request_id: &str) -> Response {
    let mut resp = (status, axum::body::Body::new(RopeBody::from(body.into()))).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    if let Ok(v) = request_id.parse() {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// Decodes, authenticates and runs one request; returns the action name, its protocol
/// and the XML body or the error.
fn serve(
    st: &AppState,
    request_id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (String, Protocol, Result<Rope>) {
    let query = uri.query().unwrap_or("");
    if *method != Method::POST && *method != Method::GET {
        return (
            String::new(),
            Protocol::Ec2,
            Err(Error::InvalidRequest(format!(
                "The HTTP method {method} is not supported; use POST or GET."
            ))),
        );
    }
    let params = Params::parse(query, if *method == Method::POST { body } else { b"" });
    let action = params.get("Action").unwrap_or("").to_string();
    let signed = signed_service(headers, &params);
    let protocol = signed
        .and_then(Protocol::from_signing_name)
        .unwrap_or(Protocol::Ec2);
    let result = (|| {
        if let Some(name) = signed.filter(|n| Protocol::from_signing_name(n).is_none()) {
            // As AWS answers a request whose scope names another service than the
            // endpoint's: an authentication failure (this endpoint is ec2's and sts's).
            return Err(Error::AuthFailure(format!(
                "Credential should be scoped to correct service: 'ec2' or 'sts', not '{}'.",
                strato_ec2_wire::validate::echo(name)
            )));
        }
        let header_list: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let req = strato_sigv4::Request {
            method: method.as_str(),
            path: uri.path(),
            query,
            headers: &header_list,
            body,
        };
        let caller = auth::authenticate(&st.control, &req, protocol.signing_name())?;
        if action.is_empty() {
            return Err(Error::MissingParameter("Action".into()));
        }
        match protocol {
            Protocol::Sts => {
                actions::sts::dispatch(&st.control, &caller, &action, &params, request_id)
                    .map(Rope::from)
            }
            Protocol::Ec2 => {
                if let Some(op) = strato_ec2_model::Operation::from_name(&action) {
                    st.throttle
                        .admit(&caller.account, op.name(), action_class(op, &params))?;
                }
                actions::dispatch(&st.control, &caller, &action, &params, request_id)
            }
        }
    })();
    // A change that may shape packets (rules, addresses, gateways, routes, instances)
    // has the dataplane recomputed after it commits; reads and record-only writes
    // (tags, key pairs) never change it. (A DryRun answers with an error, so it never
    // gets here.)
    if result.is_ok() && protocol == Protocol::Ec2 && shapes_packets(&action) {
        st.control.network_changed();
    }
    (action, protocol, result)
}
