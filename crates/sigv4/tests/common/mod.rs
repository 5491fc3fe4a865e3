//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;

use strato_sigv4::Request;

/// An HTTP/1.1 request parsed from text, owning its parts.
#[derive(Debug, Clone)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn as_request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    /// Values of header `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses request text as the test suite writes it: LF line endings, a
/// request line whose target may contain spaces (`GET /example space/
/// HTTP/1.1`), `Name:value` headers whose continuation lines start with
/// whitespace (obsolete line folding), a blank line and the body.
///
/// Header values get what an HTTP server hands on: optional whitespace
/// around the value removed, and each fold replaced by a space (RFC 7230
/// §3.2.4 lets a server do exactly that).
pub fn parse_http(text: &str) -> OwnedRequest {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => (text.trim_end_matches('\n'), ""),
    };
    let mut lines = head.split('\n');
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method");
    let (target, version) = rest.rsplit_once(' ').expect("HTTP version");
    assert!(
        version.starts_with("HTTP/"),
        "bad request line {request_line:?}"
    );
    let (path, query) = target.split_once('?').unwrap_or((target, ""));

    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation without a header");
            last.1.push(' ');
            last.1.push_str(line.trim_matches([' ', '\t']));
        } else {
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
        }
    }
    OwnedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// A one-key secret store.
pub fn keys(akid: &str, secret: &str) -> HashMap<String, String> {
    HashMap::from([(akid.to_owned(), secret.to_owned())])
}
