//! The HTTP front door.
//!
//! Every request goes: parse parameters → authenticate (SigV4) → dispatch to the
//! action → encode XML. Each request gets an id that appears in the response
//! (`<requestId>`, `x-amzn-RequestId`) and on the request's log line. Errors are mapped
//! to EC2's codes in exactly one place ([`errors::to_wire`]).

pub mod actions;
pub mod auth;
pub mod errors;
pub mod metrics;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;
use strato_common::{Error, Result};
use strato_control::ControlPlane;
use strato_ec2_wire::{xml, Params};

/// Largest request body accepted (EC2's largest legitimate requests, RunInstances with
/// 16 KiB of base64 user data and many tags, are far below this).
pub const MAX_BODY: usize = 1024 * 1024;

/// Shared state of the front door.
pub struct AppState {
    pub control: Arc<ControlPlane>,
    pub metrics: metrics::Metrics,
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
    let since = strato_common::time_fmt::now_ms() - st.control.cfg.terminated_visibility_ms;
    let counts = st
        .control
        .db
        .read(|tx| tx.instance_state_counts(since))
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(&counts),
    )
        .into_response()
}

/// Actions that never change anything.
fn is_read_only(action: &str) -> bool {
    action.starts_with("Describe") || action.starts_with("Get")
}

/// The protocol a request speaks, which decides the error envelope.
#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Ec2,
    Sts,
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
            (w.status, w.code, body)
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
    xml_response(status, body, &request_id)
}

/// An XML answer with EC2's content type and the request id header.
fn xml_response(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        "text/xml;charset=UTF-8".parse().unwrap(),
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
) -> (String, Protocol, Result<String>) {
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
    let protocol = if actions::sts::is_sts(&action) {
        Protocol::Sts
    } else {
        Protocol::Ec2
    };
    let result = (|| {
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
        let service = if protocol == Protocol::Sts {
            "sts"
        } else {
            "ec2"
        };
        let caller = auth::authenticate(&st.control, &req, service)?;
        if action.is_empty() {
            return Err(Error::MissingParameter("Action".into()));
        }
        actions::dispatch(&st.control, &caller, &action, &params, request_id)
    })();
    // Any change may shape packets (rules, addresses, gateways, routes, instances);
    // the dataplane is recomputed after it commits. Reads never change it.
    // (A DryRun answers with an error, so it never gets here.)
    if result.is_ok() && !is_read_only(&action) {
        st.control.network_changed();
    }
    (action, protocol, result)
}
