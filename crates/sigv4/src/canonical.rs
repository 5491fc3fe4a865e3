//! The pieces of the SigV4 canonical request.

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::{Request, VerifyError};

/// Everything except AWS's unreserved set `A-Z a-z 0-9 - _ . ~` is encoded.
/// This is stricter than RFC 3986 (sub-delims such as `!` or `*` are encoded
/// too), which is what every AWS SDK does.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Same as the query set but keeps `/`, which separates path segments.
const PATH_ENCODE: &AsciiSet = &QUERY_ENCODE.remove(b'/');

/// The canonical URI for a path exactly as it arrived on the wire.
///
/// Every byte outside the unreserved set and `/` is percent-encoded, including
/// `%` itself. Because the wire path is already percent-encoded by the client,
/// this is the "double encoding" that all non-S3 services use: `/a%20b`
/// becomes `/a%2520b`, which is what the SDKs compute on their side too.
///
/// With `normalize`, dot segments are resolved and empty segments (runs of
/// `/`) removed before encoding, keeping a trailing `/` if the path had one;
/// `..` never climbs above the root. An empty path is `/`.
pub fn canonical_uri(raw_path: &str, normalize: bool) -> String {
    let path = if normalize {
        normalize_path(raw_path)
    } else if raw_path.is_empty() {
        "/".to_owned()
    } else {
        raw_path.to_owned()
    };
    let mut out = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        // An origin-form target always starts with '/'; anything else (an
        // asterisk-form or an empty target) is signed by clients as rooted.
        out.push('/');
    }
    out.extend(percent_encode(path.as_bytes(), PATH_ENCODE));
    out
}

fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    out.push('/');
    out.push_str(&segments.join("/"));
    if !segments.is_empty() && path.ends_with('/') {
        out.push('/');
    }
    out
}

/// Splits a raw query string into decoded `(name, value)` pairs.
///
/// `+` is read as a space, the `application/x-www-form-urlencoded` meaning
/// that AWS services apply to query strings too; SDKs never send a literal `+`
/// (they send `%2B`) and encode spaces as `%20`, so both spellings of a space
/// canonicalize to `%20`. A piece without `=` has an empty value. Decoded
/// bytes need not be UTF-8.
pub(crate) fn parse_query(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    if raw_query.is_empty() {
        return Vec::new();
    }
    // Empty pieces (as in `a=1&&b=2`) are kept as empty parameters, as
    // botocore does when it canonicalizes a URL's query string.
    raw_query
        .split('&')
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(s: &str) -> Vec<u8> {
    let plus_as_space: Vec<u8> = s
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space).collect()
}

/// Percent-encodes `bytes` with AWS's unreserved set, as used for query
/// parameter names and values.
pub fn uri_encode(bytes: &[u8]) -> String {
    percent_encode(bytes, QUERY_ENCODE).to_string()
}

/// The canonical query string for a raw (still encoded) query string.
///
/// Each parameter is decoded and re-encoded with [`uri_encode`], so
/// differences in how the client escaped it do not matter; the pairs are then
/// sorted by encoded name and then encoded value and joined as
/// `name=value&…`. For a presigned request (`presigned = true`) the
/// `X-Amz-Signature` parameter is left out, since it cannot sign itself.
pub fn canonical_query_string(raw_query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = parse_query(raw_query)
        .into_iter()
        .filter(|(name, _)| !(presigned && name.as_slice() == b"X-Amz-Signature"))
        .map(|(name, value)| (uri_encode(&name), uri_encode(&value)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Trims a header value and collapses each run of whitespace inside it to a
/// single space. Line breaks count as whitespace so that an obsolete folded
/// header that reaches us unprocessed canonicalizes like its unfolded form.
pub(crate) fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split([' ', '\t', '\r', '\n']) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The canonical headers block: one `name:value\n` line per name in
/// `signed_headers` (expected lowercase), in that order.
///
/// Header names in `headers` are matched case-insensitively; the values of a
/// name that occurs several times are each trimmed (leading and trailing
/// whitespace removed, inner runs of spaces, tabs and line breaks collapsed to
/// one space) and joined with `,` in the order received. A signed header that
/// is absent is an [`VerifyError::Incomplete`] error.
pub fn canonical_headers(
    headers: &[(String, String)],
    signed_headers: &[String],
) -> Result<String, VerifyError> {
    let mut out = String::new();
    for name in signed_headers {
        let mut found = false;
        out.push_str(name);
        out.push(':');
        for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if found {
                out.push(',');
            }
            found = true;
            out.push_str(&trim_all(value));
        }
        if !found {
            return Err(VerifyError::Incomplete(format!(
                "Header '{name}' is listed in SignedHeaders but is not present in the request."
            )));
        }
        out.push('\n');
    }
    Ok(out)
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The payload hash line of the canonical request.
///
/// The body received is always what gets authenticated: the
/// `x-amz-content-sha256` header is used (verbatim, so its letter case is what
/// the client signed) only when it equals the hash of the body. A header that
/// disagrees with the body, or says `UNSIGNED-PAYLOAD` or `STREAMING-…`, makes
/// the canonical request carry the real body hash and so fails verification:
/// for the Query API the body holds the action and its parameters, and letting
/// them go unsigned would let anyone replaying a request change what it does.
pub fn payload_hash(req: &Request) -> String {
    let body_hash = sha256_hex(req.body);
    let mut declared = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"))
        .map(|(_, v)| v.trim());
    match (declared.next(), declared.next()) {
        (Some(v), None) if v.eq_ignore_ascii_case(&body_hash) => v.to_owned(),
        _ => body_hash,
    }
}

/// Assembles a canonical request from its already-canonical parts.
///
/// `canonical_headers` is the block from [`canonical_headers`] (each line
/// ending in `\n`) and `signed_headers` the `;`-joined list.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_normalization() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("//example//", "/example/"),
            ("/./", "/"),
            ("/./example", "/example"),
            ("/example/..", "/"),
            ("/a/b/..", "/a"),
            ("/a/b/../", "/a/"),
            ("/../../a", "/a"),
            ("/a/./b/../c/", "/a/c/"),
            ("/a%2Fb", "/a%252Fb"),
            ("/example space/", "/example%20space/"),
            ("/\u{1234}", "/%E1%88%B4"),
            ("*", "/%2A"),
        ];
        for (raw, want) in cases {
            assert_eq!(canonical_uri(raw, true), want, "normalizing {raw:?}");
        }
    }

    #[test]
    fn uri_without_normalization() {
        assert_eq!(canonical_uri("//a/./b/..", false), "//a/./b/..");
        assert_eq!(canonical_uri("", false), "/");
        assert_eq!(canonical_uri("/a b", false), "/a%20b");
        assert_eq!(canonical_uri("/a%20b", false), "/a%2520b");
    }

    #[test]
    fn query_canonicalization() {
        assert_eq!(canonical_query_string("", false), "");
        assert_eq!(
            canonical_query_string("Param-3=Value3&Param=Value2&%E1%88%B4=Value1", false),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(canonical_query_string("b=2&a=1&a=0", false), "a=0&a=1&b=2");
        assert_eq!(
            canonical_query_string("a+b=c d&e=%7e%2b", false),
            "a%20b=c%20d&e=~%2B"
        );
        assert_eq!(canonical_query_string("flag&x=", false), "flag=&x=");
        assert_eq!(canonical_query_string("a=b=c", false), "a=b%3Dc");
        assert_eq!(canonical_query_string("a=%zz", false), "a=%25zz");
        assert_eq!(canonical_query_string("a=1&&b=2", false), "=&a=1&b=2");
        assert_eq!(
            canonical_query_string("X-Amz-Signature=abc&a=1", true),
            "a=1"
        );
        assert_eq!(
            canonical_query_string("X-Amz-Signature=abc&a=1", false),
            "X-Amz-Signature=abc&a=1"
        );
    }

    #[test]
    fn header_trimming() {
        assert_eq!(trim_all("  a   b  "), "a b");
        assert_eq!(trim_all("\"a   b   c\""), "\"a b c\"");
        assert_eq!(
            trim_all("value1\n  value2\r\n\tvalue3"),
            "value1 value2 value3"
        );
        assert_eq!(trim_all("   "), "");
    }

    #[test]
    fn repeated_headers_join_in_order() {
        let headers = vec![
            ("Host".to_owned(), "example.com".to_owned()),
            ("My-Header1".to_owned(), "value4".to_owned()),
            ("my-header1".to_owned(), " value1 ".to_owned()),
        ];
        let signed = vec!["host".to_owned(), "my-header1".to_owned()];
        assert_eq!(
            canonical_headers(&headers, &signed).unwrap(),
            "host:example.com\nmy-header1:value4,value1\n"
        );
        let missing = vec!["host".to_owned(), "x-other".to_owned()];
        assert!(matches!(
            canonical_headers(&headers, &missing),
            Err(VerifyError::Incomplete(_))
        ));
    }

    #[test]
    fn payload_hash_prefers_matching_header_only() {
        let body = b"Param1=value1";
        let hash = sha256_hex(body);
        let hash_with = |headers: &[(String, String)]| {
            payload_hash(&Request {
                method: "POST",
                path: "/",
                query: "",
                headers,
                body,
            })
        };
        let with = |v: &str| vec![("X-Amz-Content-Sha256".to_owned(), v.to_owned())];
        assert_eq!(hash_with(&[]), hash);
        assert_eq!(hash_with(&with(&hash)), hash);
        let upper = hash.to_uppercase();
        assert_eq!(hash_with(&with(&upper)), upper);
        assert_eq!(hash_with(&with("UNSIGNED-PAYLOAD")), hash);
        assert_eq!(hash_with(&with(&sha256_hex(b"other"))), hash);
    }
}
