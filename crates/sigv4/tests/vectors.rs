//! AWS's published SigV4 test suite (`shared/sigv4-test-suite`, one folder per
//! case), run against the verifier and the signer.
//!
//! Every case runs in both forms (Authorization header and presigned query)
//! with one exception:
//!
//! * `post-sts-header-after`, query form: the session token was appended to
//!   the URL *after* signing (`omit_session_token`), so the expected canonical
//!   query string leaves out an `X-Amz-Security-Token` parameter that the
//!   request carries. A server cannot tell such a parameter from a signed one,
//!   and accepting unsigned query parameters would defeat the signature, so
//!   verification of that form is skipped. Its signature is still reproduced
//!   with `presign_query`.
//!
//! The signer checks cover the cases the signer's fixed inputs can express.
//! Those below still run through the verifier, which is what they test:
//!
//! * `sign_headers` and `presign_query` always normalize the path (as the
//!   server does by default), so they do not reproduce the `*-unnormalized`
//!   cases whose path normalization changes: `get-relative-unnormalized`,
//!   `get-relative-relative-unnormalized`, `get-slash-dot-slash-unnormalized`,
//!   `get-slash-pointless-dot-unnormalized`, `get-slash-unnormalized`,
//!   `get-slashes-unnormalized`.
//! * `presign_query` signs only `host`, so it does not reproduce the cases
//!   that sign more headers: `get-header-key-duplicate`,
//!   `get-header-value-multiline`, `get-header-value-order`,
//!   `get-header-value-trim`, `post-header-key-sort`, `post-header-value-case`,
//!   `post-x-www-form-urlencoded`, `post-x-www-form-urlencoded-parameters`.
//!
//! Each skip is also printed with its reason when it happens.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{keys, parse_http, OwnedRequest};
use serde_json::Value;
use strato_sigv4::{
    canonical_request_for, canonical_uri, parse_auth, presign_query, sign_headers, string_to_sign,
    uri_encode, verify, VerifyError, VerifyOptions,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn suite_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sigv4-test-suite");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("STRATO_SKIP_SIGV4_VECTORS").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED: {} is missing and STRATO_SKIP_SIGV4_VECTORS=1",
            dir.display()
        );
        return None;
    }
    panic!(
        "SigV4 test vectors not found at {} (set STRATO_SKIP_SIGV4_VECTORS=1 to skip)",
        dir.display()
    );
}

struct Case {
    name: String,
    dir: PathBuf,
    akid: String,
    secret: String,
    token: Option<String>,
    omit_session_token: bool,
    region: String,
    service: String,
    timestamp: OffsetDateTime,
    normalize: bool,
    sign_body: bool,
}

impl Case {
    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.dir.join(file))
            .unwrap_or_else(|e| panic!("{}: reading {file}: {e}", self.name))
    }

    fn opts(&self) -> VerifyOptions {
        VerifyOptions {
            normalize_path: self.normalize,
            ..VerifyOptions::default()
        }
    }

    fn verify(&self, req: &OwnedRequest) -> Result<strato_sigv4::Verified, VerifyError> {
        verify(
            &req.as_request(),
            self.timestamp,
            &keys(&self.akid, &self.secret),
            &self.opts(),
        )
    }

    /// Whether the signer (which always normalizes) computes this case's
    /// canonical URI.
    fn signer_path_applies(&self, path: &str) -> bool {
        self.normalize || canonical_uri(path, true) == canonical_uri(path, false)
    }
}

fn load_cases() -> Option<Vec<Case>> {
    let dir = suite_dir()?;
    let mut cases = Vec::new();
    for entry in fs::read_dir(&dir).expect("read suite dir") {
        let path = entry.expect("dir entry").path();
        if !path.join("context.json").is_file() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let ctx: Value =
            serde_json::from_str(&fs::read_to_string(path.join("context.json")).unwrap())
                .unwrap_or_else(|e| panic!("{name}: context.json: {e}"));
        let s = |v: &Value| {
            v.as_str()
                .unwrap_or_else(|| panic!("{name}: {v}"))
                .to_owned()
        };
        let creds = &ctx["credentials"];
        cases.push(Case {
            akid: s(&creds["access_key_id"]),
            secret: s(&creds["secret_access_key"]),
            token: creds["token"].as_str().map(str::to_owned),
            omit_session_token: ctx["omit_session_token"].as_bool().unwrap_or(false),
            region: s(&ctx["region"]),
            service: s(&ctx["service"]),
            timestamp: OffsetDateTime::parse(&s(&ctx["timestamp"]), &Rfc3339).unwrap(),
            normalize: ctx["normalize"].as_bool().unwrap(),
            sign_body: ctx["sign_body"].as_bool().unwrap(),
            name,
            dir: path,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        cases.len() >= 30,
        "only {} cases found in {}",
        cases.len(),
        dir.display()
    );
    Some(cases)
}

/// Runs `check` for every case, reporting all failures together.
fn for_each_case(mut check: impl FnMut(&Case) -> Result<(), String>) {
    let Some(cases) = load_cases() else { return };
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Form {
    Header,
    Query,
}

impl Form {
    fn prefix(self) -> &'static str {
        match self {
            Form::Header => "header",
            Form::Query => "query",
        }
    }
}

fn skip_verify(case: &Case, form: Form) -> Option<&'static str> {
    (form == Form::Query && case.omit_session_token).then_some(
        "the session token was added to the query after signing; a server cannot verify that",
    )
}

/// Accepts the signed request, and reproduces canonical request, string to
/// sign and signature byte for byte.
fn check_accepts(case: &Case, form: Form) -> Result<(), String> {
    if let Some(reason) = skip_verify(case, form) {
        println!(
            "skip {} {}-form verification: {reason}",
            case.name,
            form.prefix()
        );
        return Ok(());
    }
    let p = form.prefix();
    let req = parse_http(&case.read(&format!("{p}-signed-request.txt")));
    let verified = case
        .verify(&req)
        .map_err(|e| format!("{p}: rejected: {e:?}"))?;
    if verified.access_key_id != case.akid
        || verified.region != case.region
        || verified.service != case.service
        || verified.presigned != (form == Form::Query)
    {
        return Err(format!("{p}: wrong Verified {verified:?}"));
    }

    let auth = parse_auth(&req.as_request()).map_err(|e| format!("{p}: parse_auth: {e:?}"))?;
    let creq = canonical_request_for(&req.as_request(), &auth, case.normalize)
        .map_err(|e| format!("{p}: canonical request: {e:?}"))?;
    let want = case.read(&format!("{p}-canonical-request.txt"));
    if creq != want {
        return Err(format!(
            "{p}: canonical request differs\n--- got\n{creq}\n--- want\n{want}"
        ));
    }
    let sts = string_to_sign(&auth.amz_date, &auth.credential_scope(), &creq);
    let want = case.read(&format!("{p}-string-to-sign.txt"));
    if sts != want {
        return Err(format!(
            "{p}: string to sign differs\n--- got\n{sts}\n--- want\n{want}"
        ));
    }
    let want = case.read(&format!("{p}-signature.txt"));
    if auth.signature != want.trim() {
        return Err(format!(
            "{p}: signature {} != {}",
            auth.signature,
            want.trim()
        ));
    }
    Ok(())
}

#[test]
fn header_form_is_accepted_and_canonicalized_exactly() {
    for_each_case(|c| check_accepts(c, Form::Header));
}

#[test]
fn query_form_is_accepted_and_canonicalized_exactly() {
    for_each_case(|c| check_accepts(c, Form::Query));
}

/// Where the signature lives in the request, so it can be altered.
fn with_signature(req: &OwnedRequest, form: Form, f: impl Fn(&str) -> String) -> OwnedRequest {
    let mut out = req.clone();
    match form {
        Form::Header => {
            for (name, value) in &mut out.headers {
                if name.eq_ignore_ascii_case("authorization") {
                    let (head, sig) = value.rsplit_once("Signature=").expect("Signature=");
                    *value = format!("{head}Signature={}", f(sig));
                }
            }
        }
        Form::Query => {
            let (head, sig) = out
                .query
                .rsplit_once("X-Amz-Signature=")
                .expect("X-Amz-Signature=");
            out.query = format!("{head}X-Amz-Signature={}", f(sig));
        }
    }
    out
}

fn expect_mismatch(case: &Case, req: &OwnedRequest, what: &str) -> Result<(), String> {
    match case.verify(req) {
        Err(VerifyError::SignatureMismatch { .. }) => Ok(()),
        other => Err(format!("{what}: expected SignatureMismatch, got {other:?}")),
    }
}

fn expect_rejected(case: &Case, req: &OwnedRequest, what: &str) -> Result<(), String> {
    match case.verify(req) {
        Err(_) => Ok(()),
        Ok(v) => Err(format!("{what}: accepted as {v:?}")),
    }
}

/// Every single-character change to the signature, to a signed header, the
/// method, the path, a query parameter or the body is rejected; an added
/// unsigned header is not.
fn check_tampering(case: &Case, form: Form) -> Result<(), String> {
    if skip_verify(case, form).is_some() {
        return Ok(());
    }
    let p = form.prefix();
    let req = parse_http(&case.read(&format!("{p}-signed-request.txt")));
    let auth = parse_auth(&req.as_request()).map_err(|e| format!("{e:?}"))?;

    // Signature: every position, replaced by another hex digit so the
    // change reaches the comparison rather than the syntax check.
    for i in 0..64 {
        let tampered = with_signature(&req, form, |sig| {
            let mut bytes = sig.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            String::from_utf8(bytes).unwrap()
        });
        expect_mismatch(case, &tampered, &format!("{p}: signature byte {i}"))?;
    }

    // Signed headers: each occurrence changed, or removed.
    for (i, (name, value)) in req.headers.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        if !auth.signed_headers.contains(&lower) {
            continue;
        }
        let mut tampered = req.clone();
        tampered.headers[i].1 = if lower == "x-amz-date" {
            // Still a valid date in the window and the scope, so only the
            // signature can catch it.
            value.replace("T123600Z", "T123601Z")
        } else {
            format!("{value}x")
        };
        expect_mismatch(case, &tampered, &format!("{p}: header {name} changed"))?;
        let mut removed = req.clone();
        removed.headers.remove(i);
        expect_rejected(case, &removed, &format!("{p}: header {name} removed"))?;
    }

    // Method.
    let mut tampered = req.clone();
    tampered.method = if req.method == "GET" { "POST" } else { "GET" }.to_owned();
    expect_mismatch(case, &tampered, &format!("{p}: method"))?;

    // Path.
    let mut tampered = req.clone();
    tampered.path.push('x');
    expect_mismatch(case, &tampered, &format!("{p}: path"))?;

    // Query: each parameter's value, and an extra parameter.
    let pieces: Vec<&str> = if req.query.is_empty() {
        Vec::new()
    } else {
        req.query.split('&').collect()
    };
    for (i, piece) in pieces.iter().enumerate() {
        if piece.starts_with("X-Amz-Signature=") {
            continue;
        }
        let mut changed = pieces.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        changed[i] = if piece.contains('=') {
            format!("{piece}0")
        } else {
            format!("{piece}=0")
        };
        let mut tampered = req.clone();
        tampered.query = changed.join("&");
        let what = format!("{p}: query parameter {piece}");
        if piece.starts_with("X-Amz-") {
            // Some of these fail a syntax or time check before the signature.
            expect_rejected(case, &tampered, &what)?;
        } else {
            expect_mismatch(case, &tampered, &what)?;
        }
    }
    let mut tampered = req.clone();
    tampered.query = if req.query.is_empty() {
        "extra=1".to_owned()
    } else {
        format!("{}&extra=1", req.query)
    };
    expect_mismatch(case, &tampered, &format!("{p}: added query parameter"))?;

    // Body.
    let mut tampered = req.clone();
    tampered.body.push(b'x');
    expect_mismatch(case, &tampered, &format!("{p}: body"))?;

    // Headers that are not signed may change freely.
    let mut extra = req.clone();
    extra
        .headers
        .push(("X-Unsigned-Extra".to_owned(), "anything".to_owned()));
    case.verify(&extra)
        .map_err(|e| format!("{p}: unsigned header rejected: {e:?}"))?;
    Ok(())
}

#[test]
fn header_form_rejects_any_tampering() {
    for_each_case(|c| check_tampering(c, Form::Header));
}

#[test]
fn query_form_rejects_any_tampering() {
    for_each_case(|c| check_tampering(c, Form::Query));
}

/// The header of `req` as an `(owned name, value)` list, minus `skip` names.
fn headers_except(req: &OwnedRequest, skip: &[&str]) -> Vec<(String, String)> {
    req.headers
        .iter()
        .filter(|(n, _)| !skip.iter().any(|s| n.eq_ignore_ascii_case(s)))
        .cloned()
        .collect()
}

#[test]
fn sign_headers_reproduces_vectors() {
    let mut reproduced = 0;
    for_each_case(|c| {
        let unsigned = parse_http(&c.read("request.txt"));
        if !c.signer_path_applies(&unsigned.path) {
            println!(
                "skip {} for sign_headers: the signer normalizes the path, this case does not",
                c.name
            );
            return Ok(());
        }
        let mut headers = headers_except(&unsigned, &["host"]);
        if let (Some(token), false) = (&c.token, c.omit_session_token) {
            headers.push(("X-Amz-Security-Token".to_owned(), token.clone()));
        }
        if c.sign_body {
            headers.push(("x-amz-content-sha256".to_owned(), String::new()));
        }
        let host = unsigned.header("host")[0];
        let added = sign_headers(
            &unsigned.method,
            host,
            &unsigned.path,
            &unsigned.query,
            &headers,
            &unsigned.body,
            &c.akid,
            &c.secret,
            &c.region,
            &c.service,
            c.timestamp,
        );
        let signed = parse_http(&c.read("header-signed-request.txt"));
        let mut want: Vec<(String, String)> = headers_except(&signed, &["x-amz-security-token"])
            .into_iter()
            .filter(|(n, _)| unsigned.header(n).is_empty())
            .collect();
        let mut got = added.clone();
        want.sort();
        got.sort();
        if got != want {
            return Err(format!("sign_headers gave {got:?}, want {want:?}"));
        }
        // And the request as a client would send it verifies.
        let mut full = unsigned.clone();
        if let (Some(token), false) = (&c.token, c.omit_session_token) {
            full.headers
                .push(("X-Amz-Security-Token".to_owned(), token.clone()));
        }
        full.headers.extend(added);
        c.verify(&full).map_err(|e| format!("{e:?}"))?;
        reproduced += 1;
        Ok(())
    });
    if let Some(cases) = load_cases() {
        assert!(
            reproduced >= cases.len() - 6,
            "only {reproduced} reproduced"
        );
    }
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn presign_query_reproduces_vectors() {
    let mut reproduced = 0;
    for_each_case(|c| {
        let unsigned = parse_http(&c.read("request.txt"));
        if !c.signer_path_applies(&unsigned.path) {
            println!(
                "skip {} for presign_query: the signer normalizes the path, this case does not",
                c.name
            );
            return Ok(());
        }
        if unsigned.headers.len() != 1 || unsigned.header("host").len() != 1 {
            println!(
                "skip {} for presign_query: it signs headers besides host",
                c.name
            );
            return Ok(());
        }
        let signed = parse_http(&c.read("query-signed-request.txt"));
        let want_sig = c.read("query-signature.txt").trim().to_owned();
        let with_token = match (&c.token, c.omit_session_token) {
            (Some(token), false) => {
                let p = format!("X-Amz-Security-Token={}", uri_encode(token.as_bytes()));
                if unsigned.query.is_empty() {
                    p
                } else {
                    format!("{}&{p}", unsigned.query)
                }
            }
            _ => unsigned.query.clone(),
        };
        let got = presign_query(
            &unsigned.method,
            unsigned.header("host")[0],
            &unsigned.path,
            &with_token,
            &c.akid,
            &c.secret,
            &c.region,
            &c.service,
            c.timestamp,
            3600,
        );
        if c.token.is_none() {
            // Same parameter order as the suite, so the whole string matches.
            if got != signed.query {
                return Err(format!("presign_query gave\n{got}\nwant\n{}", signed.query));
            }
        } else if query_param(&got, "X-Amz-Signature") != Some(want_sig.as_str()) {
            return Err(format!(
                "presign_query gave {got}, want signature {want_sig}"
            ));
        }
        // And the result verifies (unless the token was left unsigned).
        if !c.omit_session_token {
            let mut req = unsigned.clone();
            req.query = got;
            c.verify(&req).map_err(|e| format!("{e:?}"))?;
        }
        reproduced += 1;
        Ok(())
    });
    if let Some(_cases) = load_cases() {
        assert!(reproduced >= 20, "only {reproduced} reproduced");
    }
}
