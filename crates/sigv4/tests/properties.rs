//! Property tests: arbitrary input never panics, and what the signer signs
//! the verifier accepts.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::{keys, OwnedRequest};
use proptest::prelude::*;
use strato_sigv4::{
    canonical_uri, presign_query, sign_headers, verify, Request, VerifyError, VerifyOptions,
};
use time::OffsetDateTime;

const NOW: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

/// Strings that look almost like signature material, so the fuzzing reaches
/// past the first syntax check.
fn near_miss() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,20}",
        Just(String::new()),
        Just("AWS4-HMAC-SHA256".to_owned()),
        Just("AKIDEXAMPLE/20150830/us-east-1/service/aws4_request".to_owned()),
        Just("AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request".to_owned()),
        Just("host;x-amz-date".to_owned()),
        Just("host".to_owned()),
        Just("20150830T123600Z".to_owned()),
        Just("99991231T235959Z".to_owned()),
        Just("00000101T000000Z".to_owned()),
        Just("604800".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_owned()),
        Just("Sun, 30 Aug 2015 12:36:00 GMT".to_owned()),
        Just("%".to_owned()),
        Just("%zz%E1%88".to_owned()),
    ]
}

fn authorization() -> impl Strategy<Value = String> {
    (
        near_miss(),
        near_miss(),
        near_miss(),
        near_miss(),
        "[ ,=;/]{0,3}",
    )
        .prop_map(|(alg, cred, sh, sig, sep)| {
            format!("{alg} Credential={cred}{sep}, SignedHeaders={sh}, Signature={sig}")
        })
}

fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("X-Amz-Algorithm".to_owned()),
        Just("X-Amz-Credential".to_owned()),
        Just("X-Amz-Date".to_owned()),
        Just("X-Amz-Expires".to_owned()),
        Just("X-Amz-SignedHeaders".to_owned()),
        Just("X-Amz-Signature".to_owned()),
        Just("X-Amz-Security-Token".to_owned()),
        "\\PC{0,8}",
    ];
    prop_oneof![
        any::<String>(),
        prop::collection::vec((name, near_miss()), 0..8).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("Authorization".to_owned()),
        Just("host".to_owned()),
        Just("X-Amz-Date".to_owned()),
        Just("Date".to_owned()),
        Just("x-amz-content-sha256".to_owned()),
        any::<String>(),
    ];
    let value = prop_oneof![near_miss(), authorization()];
    prop::collection::vec((name, value), 0..8)
}

fn any_time() -> impl Strategy<Value = OffsetDateTime> {
    // The whole range `time` supports by default, with odd offsets too.
    (-377_705_116_800i64..=253_402_300_799, -86_399i32..=86_399).prop_map(|(secs, off)| {
        let t = OffsetDateTime::from_unix_timestamp(secs).unwrap();
        let off = time::UtcOffset::from_whole_seconds(off).unwrap();
        t.checked_to_offset(off).unwrap_or(t)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn verify_never_panics(
        method in "\\PC{0,8}",
        path in any::<String>(),
        query in query(),
        headers in headers(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        now in any_time(),
        skew_secs in any::<i64>(),
        normalize_path in any::<bool>(),
    ) {
        let req = Request {
            method: &method,
            path: &path,
            query: &query,
            headers: &headers,
            body: &body,
        };
        let opts = VerifyOptions {
            max_skew: time::Duration::seconds(skew_secs),
            normalize_path,
        };
        let lookup = |_: &str| Some("secret".to_owned());
        let _ = verify(&req, now, &lookup, &opts);
        let _ = verify(&req, now, &lookup, &VerifyOptions::default());
    }

    #[test]
    fn signers_never_panic(
        method in "\\PC{0,8}",
        host in any::<String>(),
        path in any::<String>(),
        query in any::<String>(),
        headers in headers(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        now in any_time(),
        expires in any::<u64>(),
    ) {
        let _ = sign_headers(
            &method, &host, &path, &query, &headers, &body, "AK", "s", "r", "svc", now,
        );
        let _ = presign_query(
            &method, &host, &path, &query, "AK", "s", "r", "svc", now, expires,
        );
    }

    #[test]
    fn signed_requests_verify(
        method in "[A-Z]{1,7}",
        path in any::<String>(),
        query in any::<String>(),
        extra in prop::collection::vec(("x-t-[a-z0-9-]{1,10}", "\\PC{0,20}"), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
        ask_content_sha in any::<bool>(),
        normalize_path in any::<bool>(),
    ) {
        // Query authentication parameters in the request's own query would
        // make it a presigned request.
        prop_assume!(!query.contains("X-Amz-Signature") && !query.contains("X-Amz-Algorithm"));
        // The signer normalizes; a non-normalizing server agrees only on
        // paths that normalization leaves alone.
        prop_assume!(normalize_path || canonical_uri(&path, true) == canonical_uri(&path, false));
        let host = "example.test";
        let mut headers: Vec<(String, String)> = extra;
        if ask_content_sha {
            headers.push(("X-Amz-Content-Sha256".to_owned(), String::new()));
        }
        let added = sign_headers(
            &method, host, &path, &query, &headers, &body, "AK", "s", "r", "svc", now(),
        );
        headers.retain(|(n, v)| !(n == "X-Amz-Content-Sha256" && v.is_empty()));
        headers.push(("Host".to_owned(), host.to_owned()));
        headers.extend(added);
        let req = OwnedRequest { method, path, query, headers, body };
        let opts = VerifyOptions { normalize_path, ..VerifyOptions::default() };
        let result = verify(&req.as_request(), now(), &keys("AK", "s"), &opts);
        prop_assert!(result.is_ok(), "{:?}", result);

        // Any other body is caught.
        let mut other = req.clone();
        other.body.push(0);
        let result = verify(&other.as_request(), now(), &keys("AK", "s"), &opts);
        let is_mismatch = matches!(result, Err(VerifyError::SignatureMismatch { .. }));
        prop_assert!(is_mismatch);
    }

    #[test]
    fn presigned_requests_verify(
        path in any::<String>(),
        query in any::<String>(),
        expires in 1u64..=604_800,
        age in 0u64..=604_800,
    ) {
        prop_assume!(!query.contains("X-Amz-"));
        let signed_query = presign_query(
            "GET", "example.test", &path, &query, "AK", "s", "r", "svc", now(), expires,
        );
        let headers = vec![("host".to_owned(), "example.test".to_owned())];
        let req = Request {
            method: "GET",
            path: &path,
            query: &signed_query,
            headers: &headers,
            body: b"",
        };
        let at = now() + time::Duration::seconds(age as i64);
        let result = verify(&req, at, &keys("AK", "s"), &VerifyOptions::default());
        if age <= expires {
            prop_assert!(result.is_ok(), "{:?}", result);
        } else {
            let expired = matches!(result, Err(VerifyError::Expired(_)));
            prop_assert!(expired, "{:?}", result);
        }
    }

    /// A valid request with arbitrary text spliced into one of its parts
    /// reaches the deeper stages of verification; none of them may panic.
    #[test]
    fn mutated_valid_requests_never_panic(
        field in 0usize..6,
        at in any::<prop::sample::Index>(),
        insert in prop_oneof![any::<String>(), near_miss(), "[ ,;=/&%+]{1,3}"],
        presigned in any::<bool>(),
        skew in -1_000_000i64..1_000_000,
    ) {
        let host = "example.test";
        let body = b"Action=DescribeInstances".to_vec();
        let mut req = if presigned {
            OwnedRequest {
                method: "GET".to_owned(),
                path: "/a/b".to_owned(),
                query: presign_query(
                    "GET", host, "/a/b", "x=1", "AK", "s", "r", "svc", now(), 60,
                ),
                headers: vec![("Host".to_owned(), host.to_owned())],
                body: Vec::new(),
            }
        } else {
            let mut headers = vec![("Content-Type".to_owned(), "text/plain".to_owned())];
            let added = sign_headers(
                "POST", host, "/a/b", "x=1", &headers, &body, "AK", "s", "r", "svc", now(),
            );
            headers.push(("Host".to_owned(), host.to_owned()));
            headers.extend(added);
            OwnedRequest {
                method: "POST".to_owned(),
                path: "/a/b".to_owned(),
                query: "x=1".to_owned(),
                headers,
                body,
            }
        };
        let n_headers = req.headers.len();
        let target: &mut String = match field {
            0 => &mut req.method,
            1 => &mut req.path,
            2 => &mut req.query,
            _ => &mut req.headers[at.index(n_headers)].1,
        };
        let boundaries: Vec<usize> = (0..=target.len())
            .filter(|&i| target.is_char_boundary(i))
            .collect();
        target.insert_str(boundaries[at.index(boundaries.len())], &insert);
        let now = now() + time::Duration::seconds(skew);
        let _ = verify(&req.as_request(), now, &keys("AK", "s"), &VerifyOptions::default());
    }
}
