//! The signing key derivation and the client-side signer.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::canonical::{
    canonical_headers, canonical_query_string, canonical_request, canonical_uri, sha256_hex,
    uri_encode,
};
use crate::date::format_amz_date;
use crate::ALGORITHM;

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC is defined for keys of any length; `new_from_slice` only has an
    // error case because the trait also covers fixed-key-size MACs.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The credential scope, `date/region/service/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string to sign: algorithm, request timestamp (`yyyyMMddTHHmmssZ`),
/// credential scope and hex SHA-256 of the canonical request, one per line.
pub fn string_to_sign(amz_date: &str, credential_scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Derives the signing key from the secret access key and the scope
/// (`date` as `yyyyMMdd`): HMAC chain over `"AWS4" + secret`, date, region,
/// service and `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The raw signature (HMAC-SHA256 of the string to sign under the signing
/// key); hex-encode it for the wire.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> [u8; 32] {
    hmac_sha256(signing_key, string_to_sign.as_bytes())
}

/// Signs a request for the `Authorization` header form.
///
/// Signs `host` as the `Host` header, every header in `headers` (so pass only
/// headers you will send unchanged), and the `X-Amz-Date` generated from
/// `now`. Entries in `headers` named `host`, `x-amz-date` or `authorization`
/// are ignored, because this function owns those values. The path is signed
/// as a server with the default [`crate::VerifyOptions`] (path normalization
/// on) canonicalizes it; `path` and `query` are given as they will appear on
/// the wire.
///
/// Returns the headers to add to the request: `X-Amz-Date`, then
/// `x-amz-content-sha256` only if asked for, then `Authorization`. To ask for
/// `x-amz-content-sha256`, include it in `headers` with an empty value: the
/// hash of `body` is then signed and returned for you to send in place of the
/// placeholder. A non-empty `x-amz-content-sha256` in `headers` is signed as
/// given.
#[allow(clippy::too_many_arguments)] // the signature is fixed by the crate's callers
pub fn sign_headers(
    method: &str,
    host: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now);
    let body_hash = sha256_hex(body);

    let mut to_sign: Vec<(String, String)> = vec![
        ("host".to_owned(), host.to_owned()),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ];
    let mut add_content_sha = false;
    let mut payload_hash = body_hash.clone();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "host" | "x-amz-date" | "authorization" => {}
            "x-amz-content-sha256" if value.trim().is_empty() => {
                if !add_content_sha {
                    add_content_sha = true;
                    to_sign.push((lower, body_hash.clone()));
                }
            }
            "x-amz-content-sha256" => {
                payload_hash = value.trim().to_owned();
                to_sign.push((lower, value.clone()));
            }
            _ => to_sign.push((lower, value.clone())),
        }
    }

    let mut names: Vec<String> = to_sign.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    names.dedup();
    // Every name comes from `to_sign` itself, so none can be missing.
    let header_block = canonical_headers(&to_sign, &names).unwrap_or_default();
    let signed_headers = names.join(";");

    let creq = canonical_request(
        method,
        &canonical_uri(path, true),
        &canonical_query_string(query, false),
        &header_block,
        &signed_headers,
        &payload_hash,
    );
    let date = amz_date.get(..8).unwrap_or_default();
    let scope = credential_scope(date, region, service);
    let sts = string_to_sign(&amz_date, &scope, &creq);
    let sig = hex::encode(signature(&signing_key(secret, date, region, service), &sts));

    let mut out = vec![("X-Amz-Date".to_owned(), amz_date)];
    if add_content_sha {
        out.push(("x-amz-content-sha256".to_owned(), body_hash));
    }
    out.push((
        "Authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={sig}"
        ),
    ));
    out
}

/// Builds a presigned query string valid for `expires_secs` seconds from
/// `now`.
///
/// Only the `Host` header is signed, and the payload hash is that of an empty
/// body, so the URL is for requests without a body (a server verifies the hash
/// of whatever body it receives). `query` holds the request's own parameters
/// in wire form; they are kept as given and followed by `X-Amz-Algorithm`,
/// `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-SignedHeaders`, `X-Amz-Expires`
/// and `X-Amz-Signature`. The path is signed as for [`sign_headers`].
#[allow(clippy::too_many_arguments)] // the signature is fixed by the crate's callers
pub fn presign_query(
    method: &str,
    host: &str,
    path: &str,
    query: &str,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: OffsetDateTime,
    expires_secs: u64,
) -> String {
    let amz_date = format_amz_date(now);
    let date = amz_date.get(..8).unwrap_or_default();
    let scope = credential_scope(date, region, service);

    let mut out = query.to_owned();
    for (name, value) in [
        ("X-Amz-Algorithm", ALGORITHM.to_owned()),
        (
            "X-Amz-Credential",
            uri_encode(format!("{access_key_id}/{scope}").as_bytes()),
        ),
        ("X-Amz-Date", amz_date.clone()),
        ("X-Amz-SignedHeaders", "host".to_owned()),
        ("X-Amz-Expires", expires_secs.to_string()),
    ] {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&value);
    }

    let host_header = [("host".to_owned(), host.to_owned())];
    let header_block = canonical_headers(&host_header, &["host".to_owned()]).unwrap_or_default();
    let creq = canonical_request(
        method,
        &canonical_uri(path, true),
        &canonical_query_string(&out, true),
        &header_block,
        "host",
        &sha256_hex(b""),
    );
    let sts = string_to_sign(&amz_date, &scope, &creq);
    let sig = hex::encode(signature(&signing_key(secret, date, region, service), &sts));
    out.push_str("&X-Amz-Signature=");
    out.push_str(&sig);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example from AWS's SigV4 documentation (IAM ListUsers).
    #[test]
    fn documented_signing_key() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn placeholder_asks_for_content_sha() {
        let now = time::macros::datetime!(2015-08-30 12:36:00 UTC);
        let without = sign_headers("POST", "h", "/", "", &[], b"x", "AK", "s", "r", "svc", now);
        assert_eq!(
            without.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["X-Amz-Date", "Authorization"]
        );
        let with = sign_headers(
            "POST",
            "h",
            "/",
            "",
            &[("X-Amz-Content-Sha256".to_owned(), String::new())],
            b"x",
            "AK",
            "s",
            "r",
            "svc",
            now,
        );
        assert_eq!(
            with[1],
            ("x-amz-content-sha256".to_owned(), sha256_hex(b"x"))
        );
        assert!(with[2]
            .1
            .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
    }
}
