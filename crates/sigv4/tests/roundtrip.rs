//! Signing then verifying, the time windows, and each error kind.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::{keys, OwnedRequest};
use strato_sigv4::{
    canonical_headers, canonical_query_string, canonical_request, canonical_uri, credential_scope,
    presign_query, sha256_hex, sign_headers, signature, signing_key, string_to_sign, verify,
    Verified, VerifyError, VerifyOptions,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const AKID: &str = "AKIDSTRATOEXAMPLE";
const SECRET: &str = "strato/secret+key/EXAMPLE";
const HOST: &str = "ec2.us-east-1.strato.test:8773";
const T0: OffsetDateTime = datetime!(2024-03-01 10:00:00 UTC);

/// A request signed at `at` with `sign_headers`.
fn signed(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    at: OffsetDateTime,
) -> OwnedRequest {
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let added = sign_headers(
        method,
        HOST,
        path,
        query,
        &headers,
        body,
        AKID,
        SECRET,
        "us-east-1",
        "ec2",
        at,
    );
    // A placeholder x-amz-content-sha256 is replaced by the value returned.
    headers.retain(|(n, v)| !(n.eq_ignore_ascii_case("x-amz-content-sha256") && v.is_empty()));
    headers.push(("Host".to_owned(), HOST.to_owned()));
    headers.extend(added);
    OwnedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.to_vec(),
    }
}

fn check(req: &OwnedRequest, now: OffsetDateTime) -> Result<Verified, VerifyError> {
    verify(
        &req.as_request(),
        now,
        &keys(AKID, SECRET),
        &VerifyOptions::default(),
    )
}

fn get() -> OwnedRequest {
    signed(
        "GET",
        "/",
        "Action=DescribeRegions&Version=2016-11-15",
        &[],
        b"",
        T0,
    )
}

fn set_header(req: &mut OwnedRequest, name: &str, value: &str) {
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    req.headers.push((name.to_owned(), value.to_owned()));
}

fn assert_incomplete(req: &OwnedRequest, needle: &str) {
    match check(req, T0) {
        Err(VerifyError::Incomplete(msg)) => {
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}")
        }
        other => panic!("expected Incomplete({needle:?}), got {other:?}"),
    }
}

#[test]
fn ec2_post_example_verifies() {
    let body = b"Action=DescribeInstances&Version=2016-11-15";
    let req = signed(
        "POST",
        "/",
        "",
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        body,
        T0,
    );
    let auth = req.header("authorization")[0];
    assert!(
        auth.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20240301/us-east-1/ec2/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature="
        )),
        "{auth}"
    );
    assert_eq!(req.header("x-amz-date"), ["20240301T100000Z"]);
    assert_eq!(
        check(&req, T0),
        Ok(Verified {
            access_key_id: AKID.to_owned(),
            region: "us-east-1".to_owned(),
            service: "ec2".to_owned(),
            presigned: false,
        })
    );

    // The body is the action: changing it must break the signature.
    let mut tampered = req.clone();
    tampered.body = b"Action=TerminateInstances&Version=2016-11-15".to_vec();
    assert!(matches!(
        check(&tampered, T0),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn ec2_post_with_content_sha_header_verifies() {
    let body = b"Action=DescribeInstances&Version=2016-11-15";
    let req = signed(
        "POST",
        "/",
        "",
        &[
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("X-Amz-Content-Sha256", ""),
        ],
        body,
        T0,
    );
    assert_eq!(req.header("x-amz-content-sha256"), [sha256_hex(body)]);
    check(&req, T0).unwrap();

    let mut tampered = req.clone();
    tampered.body.push(b'&');
    assert!(matches!(
        check(&tampered, T0),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn unsigned_payload_is_not_accepted() {
    // The header says the payload is unsigned; the server authenticates the
    // body anyway, so the client's signature (over "UNSIGNED-PAYLOAD") fails.
    let req = signed(
        "POST",
        "/",
        "",
        &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
        b"Action=DescribeInstances",
        T0,
    );
    match check(&req, T0) {
        Err(VerifyError::SignatureMismatch {
            canonical_request, ..
        }) => assert!(canonical_request.ends_with(&sha256_hex(b"Action=DescribeInstances"))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_with_query_round_trips() {
    let req = get();
    assert!(check(&req, T0).is_ok());
    let mut tampered = req.clone();
    tampered.query = "Action=DescribeRegions&Version=2016-11-16".to_owned();
    assert!(matches!(
        check(&tampered, T0),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn unusual_paths_queries_and_headers_round_trip() {
    let req = signed(
        "GET",
        "/a%20b/./c//d%2F%C3%A9/",
        "z=%2B1&a=x%20y&a=&flag&ü=ö",
        &[
            ("X-Custom", "  spaced    out  "),
            ("x-custom", "second"),
            ("X-Other", ""),
        ],
        b"",
        T0,
    );
    assert!(check(&req, T0).is_ok(), "{:?}", check(&req, T0));
}

#[test]
fn space_spellings_in_query_are_equivalent() {
    let req = signed("GET", "/", "a=b%20c", &[], b"", T0);
    let mut plus = req.clone();
    plus.query = "a=b+c".to_owned();
    assert!(check(&plus, T0).is_ok());
    let mut lower = req.clone();
    lower.query = "a=b%20%63".to_owned();
    assert!(check(&lower, T0).is_ok());
}

#[test]
fn clock_skew_window_is_fifteen_minutes_both_ways() {
    for minutes in [-16i64, -15, -14, 0, 14, 15, 16] {
        // The client's clock is off by `minutes` relative to the server.
        let req = signed("GET", "/", "", &[], b"", T0 + Duration::minutes(minutes));
        let result = check(&req, T0);
        if minutes.abs() <= 15 {
            assert!(result.is_ok(), "{minutes} min: {result:?}");
        } else {
            match result {
                Err(VerifyError::Expired(msg)) => {
                    assert!(msg.starts_with("Request has expired."), "{msg}");
                    assert!(msg.contains("2024-03-01T10:00:00Z"), "{msg}");
                }
                other => panic!("{minutes} min: {other:?}"),
            }
        }
    }
    // One second past the window.
    let req = signed("GET", "/", "", &[], b"", T0);
    assert!(check(&req, T0 + Duration::seconds(15 * 60)).is_ok());
    assert!(matches!(
        check(&req, T0 + Duration::seconds(15 * 60 + 1)),
        Err(VerifyError::Expired(_))
    ));
    assert!(matches!(
        check(&req, T0 - Duration::seconds(15 * 60 + 1)),
        Err(VerifyError::Expired(_))
    ));
}

#[test]
fn skew_is_configurable() {
    let req = signed("GET", "/", "", &[], b"", T0);
    let opts = VerifyOptions {
        max_skew: Duration::minutes(1),
        ..VerifyOptions::default()
    };
    let v = |now| verify(&req.as_request(), now, &keys(AKID, SECRET), &opts);
    assert!(v(T0 + Duration::seconds(60)).is_ok());
    assert!(matches!(
        v(T0 + Duration::seconds(61)),
        Err(VerifyError::Expired(_))
    ));
}

fn presigned(query: &str, at: OffsetDateTime, expires: u64) -> OwnedRequest {
    OwnedRequest {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        query: presign_query(
            "GET",
            HOST,
            "/",
            query,
            AKID,
            SECRET,
            "us-east-1",
            "ec2",
            at,
            expires,
        ),
        headers: vec![("Host".to_owned(), HOST.to_owned())],
        body: Vec::new(),
    }
}

#[test]
fn presigned_url_verifies_until_it_expires() {
    let req = presigned("Action=DescribeRegions&Version=2016-11-15", T0, 3600);
    assert!(req.query.starts_with(
        "Action=DescribeRegions&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
    ));
    let ok = check(&req, T0).unwrap();
    assert!(ok.presigned);
    // Well past the skew window but within X-Amz-Expires.
    assert!(check(&req, T0 + Duration::minutes(59)).is_ok());
    assert!(check(&req, T0 + Duration::seconds(3600)).is_ok());
    match check(&req, T0 + Duration::seconds(3601)) {
        Err(VerifyError::Expired(msg)) => {
            assert!(msg.starts_with("Request has expired."), "{msg}");
            assert!(msg.contains("2024-03-01T11:00:00Z"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    // Signed too far in the future.
    assert!(check(&req, T0 - Duration::minutes(14)).is_ok());
    assert!(matches!(
        check(&req, T0 - Duration::minutes(16)),
        Err(VerifyError::Expired(_))
    ));

    let mut tampered = req.clone();
    tampered.query = tampered.query.replace("DescribeRegions", "DescribeImages");
    assert!(matches!(
        check(&tampered, T0),
        Err(VerifyError::SignatureMismatch { .. })
    ));
    // The lifetime is signed, so it cannot be stretched.
    let mut stretched = req.clone();
    stretched.query = stretched
        .query
        .replace("X-Amz-Expires=3600", "X-Amz-Expires=7200");
    assert!(matches!(
        check(&stretched, T0 + Duration::minutes(90)),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn presigned_expires_must_be_in_range() {
    assert!(check(&presigned("", T0, 1), T0).is_ok());
    assert!(check(&presigned("", T0, 604_800), T0).is_ok());
    for bad in [0, 604_801, u64::MAX] {
        assert_incomplete(&presigned("", T0, bad), "X-Amz-Expires");
    }
    let mut req = presigned("", T0, 60);
    req.query = req.query.replace("X-Amz-Expires=60", "X-Amz-Expires=-60");
    assert_incomplete(&req, "X-Amz-Expires");
}

#[test]
fn presigned_missing_parameters_are_incomplete() {
    let full = presigned("", T0, 60);
    for name in [
        "X-Amz-Credential",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-Signature",
    ] {
        let mut req = full.clone();
        req.query = full
            .query
            .split('&')
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect::<Vec<_>>()
            .join("&");
        assert_incomplete(&req, name);
    }
    let mut req = full.clone();
    req.query = req.query.replace(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Algorithm=AWS4-HMAC-SHA1",
    );
    assert_incomplete(&req, "X-Amz-Algorithm");
    let mut req = full.clone();
    req.query.push_str("&X-Amz-Date=20240301T100000Z");
    assert_incomplete(&req, "only once");
}

#[test]
fn unknown_access_key() {
    let req = get();
    let other = keys("AKIDSOMEONEELSE", SECRET);
    assert_eq!(
        verify(&req.as_request(), T0, &other, &VerifyOptions::default()),
        Err(VerifyError::UnknownAccessKey(AKID.to_owned()))
    );
}

#[test]
fn wrong_secret_is_a_mismatch_with_debug_info() {
    let req = get();
    match verify(
        &req.as_request(),
        T0,
        &keys(AKID, "not the secret"),
        &VerifyOptions::default(),
    ) {
        Err(VerifyError::SignatureMismatch {
            canonical_request,
            string_to_sign,
        }) => {
            assert!(canonical_request.starts_with(
                "GET\n/\nAction=DescribeRegions&Version=2016-11-15\nhost:ec2.us-east-1.strato.test:8773\n"
            ));
            assert!(string_to_sign.starts_with(
                "AWS4-HMAC-SHA256\n20240301T100000Z\n20240301/us-east-1/ec2/aws4_request\n"
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn closure_lookup_works() {
    let req = get();
    let lookup = |k: &str| (k == AKID).then(|| SECRET.to_owned());
    assert!(verify(&req.as_request(), T0, &lookup, &VerifyOptions::default()).is_ok());
}

#[test]
fn missing_authentication() {
    let req = OwnedRequest {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        query: "Action=DescribeRegions".to_owned(),
        headers: vec![("Host".to_owned(), HOST.to_owned())],
        body: Vec::new(),
    };
    assert_eq!(check(&req, T0), Err(VerifyError::Missing));
    // Some but not the deciding query parameters: still no authentication.
    let mut partial = req.clone();
    partial.query = "X-Amz-Credential=AKID%2F20240301%2Fus-east-1%2Fec2%2Faws4_request".to_owned();
    assert_eq!(check(&partial, T0), Err(VerifyError::Missing));
    // With only the algorithm, it is an attempt at query authentication.
    let mut algo = req.clone();
    algo.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned();
    assert_incomplete(&algo, "X-Amz-Credential");
}

#[test]
fn garbage_authorization_is_incomplete() {
    let base = get();
    for (garbage, needle) in [
        ("", "algorithm"),
        ("garbage", "algorithm"),
        ("Bearer abc.def.ghi", "algorithm"),
        ("AWS AKIDEXAMPLE:c2lnbmF0dXJl", "algorithm"),
        ("AWS4-HMAC-SHA256", "'Credential'"),
        ("AWS4-HMAC-SHA256 Credential", "key=value"),
        ("AWS4-HMAC-SHA256 Credential=a/b", "Credential"),
        (
            "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host",
            "'Signature'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1/ec2/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=zz",
            "64 hexadecimal",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1/ec2/aws4_request, \
             Credential=AKID/20240301/us-east-1/ec2/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
            "more than one",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1/ec2/aws5_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
            "terminator",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20240301//ec2/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
            "empty",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1/ec2/aws4_request, \
             SignedHeaders=host;;x-amz-date, Signature=00",
            "empty header name",
        ),
        ("\u{0}\u{7f}é=,,,==", "algorithm"),
    ] {
        let mut req = base.clone();
        set_header(&mut req, "Authorization", garbage);
        assert_incomplete(&req, needle);
    }
}

#[test]
fn host_must_be_signed() {
    let mut req = get();
    let auth = req.header("authorization")[0].replace("SignedHeaders=host;", "SignedHeaders=");
    set_header(&mut req, "Authorization", &auth);
    assert_incomplete(&req, "'host'");
}

#[test]
fn date_header_must_be_signed() {
    let mut req = get();
    let auth = req.header("authorization")[0].replace(";x-amz-date", "");
    set_header(&mut req, "Authorization", &auth);
    assert_incomplete(&req, "'x-amz-date'");
}

#[test]
fn a_signed_header_that_is_absent_is_incomplete() {
    let mut req = get();
    let auth = req.header("authorization")[0].replace(";x-amz-date", ";x-amz-date;x-missing");
    set_header(&mut req, "Authorization", &auth);
    assert_incomplete(&req, "x-missing");
}

#[test]
fn scope_date_must_match_request_date() {
    let mut req = get();
    let auth = req.header("authorization")[0].replace("/20240301/", "/20240302/");
    set_header(&mut req, "Authorization", &auth);
    assert_incomplete(&req, "Date in Credential scope does not match");
}

#[test]
fn request_date_is_required_and_well_formed() {
    let mut req = get();
    req.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"));
    assert_incomplete(&req, "'X-Amz-Date' or a 'Date' header");

    let mut req = get();
    set_header(&mut req, "X-Amz-Date", "2024-03-01T10:00:00Z");
    assert_incomplete(&req, "ISO 8601 basic format");

    let mut req = get();
    req.headers
        .push(("x-amz-date".to_owned(), "20240301T100000Z".to_owned()));
    assert_incomplete(&req, "Only one X-Amz-Date");
}

#[test]
fn both_mechanisms_at_once_are_incomplete() {
    let mut req = presigned("", T0, 60);
    let header_signed = get();
    req.headers.push((
        "Authorization".to_owned(),
        header_signed.header("authorization")[0].to_owned(),
    ));
    assert_incomplete(&req, "Only one authentication mechanism");

    let mut twice = get();
    let auth = twice.header("authorization")[0].to_owned();
    twice.headers.push(("authorization".to_owned(), auth));
    assert_incomplete(&twice, "Only one Authorization header");
}

/// Signs by hand with a `Date` header instead of `X-Amz-Date`, as old
/// clients do.
#[test]
fn date_header_fallback() {
    let date = "Fri, 01 Mar 2024 10:00:00 GMT";
    let mut headers = vec![
        ("Host".to_owned(), HOST.to_owned()),
        ("Date".to_owned(), date.to_owned()),
    ];
    let signed_names = vec!["date".to_owned(), "host".to_owned()];
    let creq = canonical_request(
        "GET",
        &canonical_uri("/", true),
        &canonical_query_string("Action=DescribeRegions", false),
        &canonical_headers(&headers, &signed_names).unwrap(),
        "date;host",
        &sha256_hex(b""),
    );
    let scope = credential_scope("20240301", "us-east-1", "ec2");
    let sts = string_to_sign("20240301T100000Z", &scope, &creq);
    let sig = hex::encode(signature(
        &signing_key(SECRET, "20240301", "us-east-1", "ec2"),
        &sts,
    ));
    headers.push((
        "Authorization".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders=date;host, Signature={sig}"
        ),
    ));
    let req = OwnedRequest {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        query: "Action=DescribeRegions".to_owned(),
        headers,
        body: Vec::new(),
    };
    assert!(check(&req, T0).is_ok(), "{:?}", check(&req, T0));
    assert!(matches!(
        check(&req, T0 + Duration::minutes(16)),
        Err(VerifyError::Expired(_))
    ));

    let mut bad = req.clone();
    set_header(&mut bad, "Date", "yesterday");
    assert_incomplete(&bad, "Date header");
}

#[test]
fn error_messages_display() {
    assert!(VerifyError::Missing
        .to_string()
        .contains("Authentication Token"));
    assert!(VerifyError::UnknownAccessKey("AK".into())
        .to_string()
        .contains("'AK'"));
    let mismatch = VerifyError::SignatureMismatch {
        canonical_request: String::new(),
        string_to_sign: String::new(),
    };
    assert!(mismatch.to_string().contains("does not match"));
}
