//! AWS Signature Version 4 verification for an HTTP server, and a small signer
//! for clients (tests, the benchmark).
//!
//! # Wire format
//!
//! A signed request carries its signature in one of two places.
//!
//! **Authorization header.**
//!
//! ```text
//! Authorization: AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
//! X-Amz-Date: 20150830T123600Z
//! ```
//!
//! `Credential` is the access key id followed by the credential scope
//! (`yyyyMMdd/region/service/aws4_request`), `SignedHeaders` the `;`-separated
//! lowercase names of the headers covered by the signature (it must include
//! `host`, and the date header), and `Signature` the hex HMAC. The request
//! time comes from `X-Amz-Date` (ISO 8601 basic, UTC) or, failing that, from
//! an IMF-fixdate `Date` header.
//!
//! **Presigned query string.** The same information travels as query
//! parameters: `X-Amz-Algorithm=AWS4-HMAC-SHA256`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-Expires` (seconds, 1..=604800), `X-Amz-SignedHeaders`,
//! `X-Amz-Signature` and optionally `X-Amz-Security-Token`. All of them except
//! `X-Amz-Signature` are part of the signed canonical query string.
//!
//! # What is signed
//!
//! The signature is `HMAC(signing_key, string_to_sign)` where
//!
//! ```text
//! canonical_request = METHOD \n canonical_uri \n canonical_query \n
//!                     name:value \n (one line per signed header) \n
//!                     signed;header;names \n payload_hash
//! string_to_sign    = AWS4-HMAC-SHA256 \n yyyyMMddTHHmmssZ \n scope \n hex(sha256(canonical_request))
//! signing_key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
//! ```
//!
//! See [`canonical_uri`], [`canonical_query_string`], [`canonical_headers`] and
//! [`payload_hash`] for the exact rules of each part.
//!
//! # Decisions where AWS leaves room
//!
//! * A credential scope date that differs from the date of `X-Amz-Date` is
//!   [`VerifyError::Incomplete`] (AWS reports it as a malformed credential,
//!   not as a wrong signature).
//! * A request carrying both an `Authorization` header and query-string
//!   authentication is [`VerifyError::Incomplete`]: only one mechanism may be
//!   used.
//! * Checks run in this order: structure ([`VerifyError::Missing`],
//!   [`VerifyError::Incomplete`]), time ([`VerifyError::Expired`]), key
//!   ([`VerifyError::UnknownAccessKey`]), signature
//!   ([`VerifyError::SignatureMismatch`]).
//! * Region and service are reported in [`Verified`] but not checked here;
//!   the caller decides which scopes it serves.
//! * `X-Amz-Security-Token` is accepted and, when sent, authenticated like
//!   any other header or parameter, but not interpreted: there are no
//!   temporary credentials here.

#![warn(missing_docs)]

mod canonical;
mod date;
mod sign;

use std::collections::HashMap;
use std::fmt;

use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

pub use canonical::{
    canonical_headers, canonical_query_string, canonical_request, canonical_uri, payload_hash,
    sha256_hex, uri_encode,
};
pub use sign::{
    credential_scope, presign_query, sign_headers, signature, signing_key, string_to_sign,
};

/// The only algorithm SigV4 defines for request signing.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The longest lifetime a presigned request may ask for: seven days.
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;

/// A request as the server received it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method, as sent (normally upper case).
    pub method: &'a str,
    /// Raw path as received, still percent-encoded, e.g. `/`.
    pub path: &'a str,
    /// Raw query string without the `?`; may be empty.
    pub query: &'a str,
    /// Headers as `(name in any case, value as received)`; repeated names
    /// allowed. Over HTTP/2 the server must supply `host` from `:authority`.
    pub headers: &'a [(String, String)],
    /// The complete request body.
    pub body: &'a [u8],
}

/// Finds the secret access key for an access key id.
pub trait SecretLookup {
    /// The secret for `access_key_id`, or `None` if the key is unknown.
    fn secret_for(&self, access_key_id: &str) -> Option<String>;
}

impl<F> SecretLookup for F
where
    F: Fn(&str) -> Option<String>,
{
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self(access_key_id)
    }
}

impl<S: std::hash::BuildHasher> SecretLookup for HashMap<String, String, S> {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.get(access_key_id).cloned()
    }
}

/// Knobs for [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// How far the request time may be from the server's clock, either way.
    /// Default 15 minutes, as AWS.
    pub max_skew: Duration,
    /// Whether the canonical URI has dot segments and repeated slashes
    /// removed, as every service but S3 expects. Default `true`.
    pub normalize_path: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            max_skew: Duration::minutes(15),
            normalize_path: true,
        }
    }
}

/// Who signed an accepted request, and for which scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id from the credential.
    pub access_key_id: String,
    /// The region from the credential scope.
    pub region: String,
    /// The service from the credential scope.
    pub service: String,
    /// Whether the signature came from the query string rather than the
    /// `Authorization` header.
    pub presigned: bool,
}

/// Why a request was not accepted. Each variant maps to one EC2 error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// No `Authorization` header and no `X-Amz-Signature`/`X-Amz-Algorithm`
    /// query parameter: `MissingAuthenticationToken`.
    Missing,
    /// Malformed or missing signature components: `IncompleteSignature`. The
    /// message says what is wrong.
    Incomplete(String),
    /// The access key id is not known: `AuthFailure`. Holds the key id.
    UnknownAccessKey(String),
    /// The request time is outside the allowed skew, or a presigned URL has
    /// expired: `RequestExpired`. The message gives the times involved.
    Expired(String),
    /// The signature does not match: `SignatureDoesNotMatch`. Carries what the
    /// server computed, so a client author can compare it with their own.
    SignatureMismatch {
        /// The canonical request the server built.
        canonical_request: String,
        /// The string to sign the server built.
        string_to_sign: String,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Missing => f.write_str(
                "Request is missing Authentication Token: no Authorization header and no \
                 X-Amz-Signature query parameter.",
            ),
            VerifyError::Incomplete(msg) | VerifyError::Expired(msg) => f.write_str(msg),
            VerifyError::UnknownAccessKey(key) => write!(
                f,
                "AWS was not able to validate the provided access credentials \
                 (unknown access key id '{key}')."
            ),
            VerifyError::SignatureMismatch { .. } => f.write_str(
                "The request signature we calculated does not match the signature you \
                 provided. Check your AWS Secret Access Key and signing method.",
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

/// The signature parameters of a request, as found in its `Authorization`
/// header or query string, after structural validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams {
    /// `true` for query-string (presigned) authentication.
    pub presigned: bool,
    /// Access key id from the credential.
    pub access_key_id: String,
    /// `yyyyMMdd` from the credential scope (equal to the request date).
    pub scope_date: String,
    /// Region from the credential scope.
    pub region: String,
    /// Service from the credential scope.
    pub service: String,
    /// Lowercased signed header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// The signature the client sent, hex.
    pub signature: String,
    /// The request time as `yyyyMMddTHHmmssZ`, as it enters the string to sign.
    pub amz_date: String,
    /// The request time.
    pub request_time: OffsetDateTime,
    /// `X-Amz-Expires` for presigned requests.
    pub expires: Option<u64>,
}

impl AuthParams {
    /// The credential scope, `date/region/service/aws4_request`.
    pub fn credential_scope(&self) -> String {
        credential_scope(&self.scope_date, &self.region, &self.service)
    }
}

fn incomplete(msg: impl Into<String>) -> VerifyError {
    VerifyError::Incomplete(msg.into())
}

fn header_values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Extracts and structurally validates the signature parameters of `req`.
///
/// Returns [`VerifyError::Missing`] when the request carries no SigV4
/// authentication at all, and [`VerifyError::Incomplete`] when it does but
/// something is malformed or absent. Time windows and the signature itself are
/// not checked here; see [`verify`].
pub fn parse_auth(req: &Request) -> Result<AuthParams, VerifyError> {
    let authorization = header_values(req.headers, "authorization");
    let params = canonical::parse_query(req.query);
    let query_auth = params
        .iter()
        .any(|(n, _)| n.as_slice() == b"X-Amz-Signature" || n.as_slice() == b"X-Amz-Algorithm");
    match (authorization.as_slice(), query_auth) {
        ([], false) => Err(VerifyError::Missing),
        ([_, ..], true) => Err(incomplete(
            "Only one authentication mechanism is allowed: found both an Authorization header \
             and X-Amz-* query parameters.",
        )),
        ([value], false) => parse_header_auth(req, value),
        ([_, _, ..], false) => Err(incomplete("Only one Authorization header is allowed.")),
        ([], true) => parse_query_auth(&params),
    }
}

struct Fields<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_header_auth(req: &Request, value: &str) -> Result<AuthParams, VerifyError> {
    let value = value.trim();
    let (algorithm, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported Authorization algorithm '{algorithm}': only {ALGORITHM} is accepted. \
             Authorization={value}"
        )));
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "Authorization header component '{part}' is not of the form key=value. \
                 Authorization={value}"
            )));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            // Unknown components are not signed material; ignoring them is
            // harmless and tolerates future additions.
            _ => continue,
        };
        if slot.replace(val.trim()).is_some() {
            return Err(incomplete(format!(
                "Authorization header has more than one '{}' component. Authorization={value}",
                key.trim()
            )));
        }
    }
    let mut missing = String::new();
    for (name, v) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if v.is_none() {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }

    // Which date header is used decides what must be signed as well.
    let amz_dates = header_values(req.headers, "x-amz-date");
    let dates = header_values(req.headers, "date");
    let time_and_header = match (amz_dates.as_slice(), dates.as_slice()) {
        ([v], _) => Some(
            date::parse_amz_date(v.trim())
                .map(|t| (t, "x-amz-date"))
                .ok_or_else(|| {
                    incomplete(format!(
                        "X-Amz-Date '{v}' must be in ISO 8601 basic format yyyyMMdd'T'HHmmss'Z'."
                    ))
                }),
        ),
        ([_, _, ..], _) => Some(Err(incomplete("Only one X-Amz-Date header is allowed."))),
        ([], [v]) => Some(
            date::parse_http_date(v.trim())
                .map(|t| (t, "date"))
                .ok_or_else(|| {
                    incomplete(format!(
                        "Date header '{v}' must be an HTTP date such as \
                         'Sun, 30 Aug 2015 12:36:00 GMT'."
                    ))
                }),
        ),
        ([], [_, _, ..]) => Some(Err(incomplete("Only one Date header is allowed."))),
        ([], []) => None,
    };
    let (Some(credential), Some(signed_headers), Some(signature), Some(time_and_header)) =
        (credential, signed_headers, signature, time_and_header)
    else {
        let mut msg = missing;
        if amz_dates.is_empty() && dates.is_empty() {
            msg.push_str(
                "Authorization header requires existence of either a 'X-Amz-Date' or a \
                 'Date' header. ",
            );
        }
        msg.push_str(&format!("Authorization={value}"));
        return Err(VerifyError::Incomplete(msg));
    };
    let (request_time, date_header) = time_and_header?;

    let params = finish(
        false,
        Fields {
            credential,
            signed_headers,
            signature,
        },
        request_time,
        None,
    )?;
    if !params.signed_headers.iter().any(|h| h == date_header) {
        return Err(incomplete(format!(
            "The '{date_header}' header is used as the request date and must be listed in \
             SignedHeaders."
        )));
    }
    Ok(params)
}

fn parse_query_auth(params: &[(Vec<u8>, Vec<u8>)]) -> Result<AuthParams, VerifyError> {
    let get = |name: &str| -> Result<Option<&str>, VerifyError> {
        let mut values = params
            .iter()
            .filter(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| v);
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => std::str::from_utf8(v)
                .map(Some)
                .map_err(|_| incomplete(format!("Query parameter {name} is not valid UTF-8."))),
            (Some(_), Some(_)) => Err(incomplete(format!(
                "Query parameter {name} may appear only once."
            ))),
        }
    };
    let algorithm = get("X-Amz-Algorithm")?;
    let credential = get("X-Amz-Credential")?;
    let signed_headers = get("X-Amz-SignedHeaders")?;
    let signature = get("X-Amz-Signature")?;
    let amz_date = get("X-Amz-Date")?;
    let expires = get("X-Amz-Expires")?;

    let (
        Some(algorithm),
        Some(credential),
        Some(signed_headers),
        Some(signature),
        Some(amz_date),
        Some(expires),
    ) = (
        algorithm,
        credential,
        signed_headers,
        signature,
        amz_date,
        expires,
    )
    else {
        let missing: Vec<&str> = [
            ("X-Amz-Algorithm", algorithm.is_none()),
            ("X-Amz-Credential", credential.is_none()),
            ("X-Amz-SignedHeaders", signed_headers.is_none()),
            ("X-Amz-Signature", signature.is_none()),
            ("X-Amz-Date", amz_date.is_none()),
            ("X-Amz-Expires", expires.is_none()),
        ]
        .into_iter()
        .filter_map(|(n, absent)| absent.then_some(n))
        .collect();
        return Err(incomplete(format!(
            "Query-string authentication requires the {} parameter(s).",
            missing.join(", ")
        )));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported X-Amz-Algorithm '{algorithm}': only {ALGORITHM} is accepted."
        )));
    }
    let request_time = date::parse_amz_date(amz_date).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date '{amz_date}' must be in ISO 8601 basic format yyyyMMdd'T'HHmmss'Z'."
        ))
    })?;
    let expires = match expires.parse::<u64>() {
        Ok(n)
            if expires.bytes().all(|b| b.is_ascii_digit())
                && (1..=MAX_PRESIGN_EXPIRES).contains(&n) =>
        {
            n
        }
        _ => {
            return Err(incomplete(format!(
                "X-Amz-Expires '{expires}' must be a whole number of seconds from 1 to \
                 {MAX_PRESIGN_EXPIRES}."
            )))
        }
    };
    finish(
        true,
        Fields {
            credential,
            signed_headers,
            signature,
        },
        request_time,
        Some(expires),
    )
}

/// Validation shared by both forms once the raw fields are found.
fn finish(
    presigned: bool,
    fields: Fields<'_>,
    request_time: OffsetDateTime,
    expires: Option<u64>,
) -> Result<AuthParams, VerifyError> {
    let parts: Vec<&str> = fields.credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(format!(
            "Credential '{}' must have the form \
             <access key id>/<yyyyMMdd>/<region>/<service>/aws4_request.",
            fields.credential
        )));
    };
    if access_key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err(incomplete(format!(
            "Credential '{}' has an empty access key id, region or service.",
            fields.credential
        )));
    }
    if *terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             '{terminator}'."
        )));
    }
    let amz_date = date::format_amz_date(request_time);
    if amz_date.get(..8) != Some(*scope_date) {
        return Err(incomplete(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{scope_date}' != '{}', from '{amz_date}'.",
            amz_date.get(..8).unwrap_or_default()
        )));
    }

    let mut signed_headers = Vec::new();
    for name in fields.signed_headers.split(';') {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(incomplete(format!(
                "SignedHeaders '{}' contains an empty header name.",
                fields.signed_headers
            )));
        }
        if signed_headers.contains(&name) {
            return Err(incomplete(format!(
                "SignedHeaders '{}' lists '{name}' more than once.",
                fields.signed_headers
            )));
        }
        signed_headers.push(name);
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(incomplete(format!(
            "The 'host' header must be listed in SignedHeaders ('{}').",
            fields.signed_headers
        )));
    }

    let signature = fields.signature;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete(format!(
            "Signature '{signature}' must be 64 hexadecimal characters."
        )));
    }

    Ok(AuthParams {
        presigned,
        access_key_id: (*access_key_id).to_owned(),
        scope_date: (*scope_date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers,
        signature: signature.to_owned(),
        amz_date,
        request_time,
        expires,
    })
}

/// The canonical request the server expects for `req` under `auth`.
///
/// Fails only if a signed header is absent from the request.
pub fn canonical_request_for(
    req: &Request,
    auth: &AuthParams,
    normalize_path: bool,
) -> Result<String, VerifyError> {
    Ok(canonical_request(
        req.method,
        &canonical_uri(req.path, normalize_path),
        &canonical_query_string(req.query, auth.presigned),
        &canonical_headers(req.headers, &auth.signed_headers)?,
        &auth.signed_headers.join(";"),
        &payload_hash(req),
    ))
}

fn check_time(
    auth: &AuthParams,
    now: OffsetDateTime,
    opts: &VerifyOptions,
) -> Result<(), VerifyError> {
    let t = auth.request_time;
    let stamp = date::format_iso(t);
    let current = date::format_iso(now);
    match auth.expires {
        None => {
            if (now - t).abs() > opts.max_skew {
                return Err(VerifyError::Expired(format!(
                    "Request has expired. Timestamp date is {stamp}, current time is {current}; \
                     at most {} seconds of difference are allowed.",
                    opts.max_skew.whole_seconds()
                )));
            }
        }
        Some(expires) => {
            // A presigned URL is meant to be used later, so only a time in the
            // future is bounded by the skew; the past is bounded by expiry.
            if t - now > opts.max_skew {
                return Err(VerifyError::Expired(format!(
                    "Request is not yet valid. Timestamp date is {stamp}, current time is \
                     {current}; at most {} seconds of difference are allowed.",
                    opts.max_skew.whole_seconds()
                )));
            }
            let secs = i64::try_from(expires).unwrap_or(i64::MAX);
            // An expiry beyond the representable range never arrives.
            if let Some(expiry) = t.checked_add(Duration::seconds(secs)) {
                if now > expiry {
                    return Err(VerifyError::Expired(format!(
                        "Request has expired. Signed at {stamp}, expired at {}, current time is \
                         {current}.",
                        date::format_iso(expiry)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Verifies the SigV4 signature of `req` at time `now`.
///
/// On success returns who signed it and for which region and service; the
/// caller still has to check that region and service are ones it serves. The
/// signature comparison is constant-time. See the crate documentation for the
/// order of checks and the choices made where AWS leaves room.
pub fn verify(
    req: &Request,
    now: OffsetDateTime,
    lookup: &dyn SecretLookup,
    opts: &VerifyOptions,
) -> Result<Verified, VerifyError> {
    let auth = parse_auth(req)?;
    check_time(&auth, now, opts)?;
    let secret = lookup
        .secret_for(&auth.access_key_id)
        .ok_or_else(|| VerifyError::UnknownAccessKey(auth.access_key_id.clone()))?;

    let creq = canonical_request_for(req, &auth, opts.normalize_path)?;
    let sts = string_to_sign(&auth.amz_date, &auth.credential_scope(), &creq);
    let expected = signature(
        &signing_key(&secret, &auth.scope_date, &auth.region, &auth.service),
        &sts,
    );
    // `parse_auth` guarantees 64 hex digits, so decoding cannot fail; a
    // failure would still only mean a mismatch.
    let provided = hex::decode(&auth.signature).unwrap_or_default();
    if bool::from(expected.as_slice().ct_eq(provided.as_slice())) {
        Ok(Verified {
            access_key_id: auth.access_key_id,
            region: auth.region,
            service: auth.service,
            presigned: auth.presigned,
        })
    } else {
        Err(VerifyError::SignatureMismatch {
            canonical_request: creq,
            string_to_sign: sts,
        })
    }
}
