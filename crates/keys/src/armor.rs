//! Text armour: PEM-style (`-----BEGIN X-----`, RFC 7468) and SSH2
//! (`---- BEGIN SSH2 PUBLIC KEY ----`, RFC 4716) wrappers around base64.
//!
//! Decoding is deliberately lenient about whitespace, CRLF line endings and
//! line width, because users paste keys produced by many different tools and
//! EC2 accepts them; encoding produces exactly what OpenSSL/OpenSSH write.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::KeyError;

/// Accepts base64 with or without trailing `=` padding: some tools strip it.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding, as every format here writes it.
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64 after dropping all ASCII whitespace (line breaks inside
/// armoured bodies, stray spaces from copy and paste).
pub(crate) fn b64_decode_lenient(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return None;
    }
    LENIENT.decode(compact.as_bytes()).ok()
}

/// Base64-encodes `bytes` and breaks the result into `width`-character lines,
/// each terminated by `\n`.
pub(crate) fn b64_lines(bytes: &[u8], width: usize) -> String {
    let encoded = b64(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / width + 1);
    // base64 output is ASCII, so byte chunks are valid char boundaries.
    for chunk in encoded.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// Wraps DER (or any binary body) in a PEM-style armour with `width`-column
/// lines: 64 for RFC 7468 PEM, 70 for OpenSSH private keys (what ssh-keygen
/// writes).
pub(crate) fn pem_encode(label: &str, body: &[u8], width: usize) -> String {
    format!(
        "-----BEGIN {label}-----\n{}-----END {label}-----\n",
        b64_lines(body, width)
    )
}

/// A decoded armoured block.
pub(crate) struct Armored {
    pub(crate) label: String,
    pub(crate) body: Vec<u8>,
}

/// Decodes the first `-----BEGIN X----- … -----END X-----` block in `text`.
///
/// RFC 1421-style header lines (`Proc-Type: …`) are skipped rather than
/// rejected so that the caller can still report a meaningful label.
pub(crate) fn pem_decode(text: &str) -> Result<Armored, KeyError> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| {
            l.strip_prefix("-----BEGIN ")
                .and_then(|rest| rest.strip_suffix("-----"))
        })
        .ok_or_else(|| invalid("missing -----BEGIN line"))?
        .to_string();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        if line.contains(':') {
            continue;
        }
        body.push_str(line);
    }
    if !ended {
        return Err(invalid(&format!("missing \"{end}\" line")));
    }
    let body = b64_decode_lenient(&body).ok_or_else(|| {
        invalid(&format!(
            "the body of the {label} block is not valid base64"
        ))
    })?;
    Ok(Armored { label, body })
}

pub(crate) const SSH2_BEGIN: &str = "---- BEGIN SSH2 PUBLIC KEY ----";
const SSH2_END: &str = "---- END SSH2 PUBLIC KEY ----";

/// Decodes an RFC 4716 public key file to the SSH public key blob it carries.
///
/// Headers (`Comment: "…"`, `x-foo: …`) may be continued with a trailing
/// backslash (RFC 4716 §3.3); they carry nothing EC2 keeps, so they are
/// skipped. Base64 never contains `:`, which is how RFC 4716 tells headers
/// from the body.
pub(crate) fn ssh2_decode(text: &str) -> Result<Vec<u8>, KeyError> {
    let mut lines = text.lines().map(str::trim);
    if !lines.by_ref().any(|l| l == SSH2_BEGIN) {
        return Err(invalid("missing \"---- BEGIN SSH2 PUBLIC KEY ----\" line"));
    }
    let mut body = String::new();
    let mut in_continuation = false;
    let mut ended = false;
    for line in lines {
        if in_continuation {
            in_continuation = line.ends_with('\\');
            continue;
        }
        if line == SSH2_END {
            ended = true;
            break;
        }
        if line.contains(':') {
            in_continuation = line.ends_with('\\');
            continue;
        }
        body.push_str(line);
    }
    if !ended {
        return Err(invalid("missing \"---- END SSH2 PUBLIC KEY ----\" line"));
    }
    b64_decode_lenient(&body).ok_or_else(|| invalid("the SSH2 public key body is not valid base64"))
}

fn invalid(detail: &str) -> KeyError {
    KeyError::InvalidFormat(detail.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_line_width() {
        let body: Vec<u8> = (0..=255u8).collect();
        let pem = pem_encode("TEST THING", &body, 64);
        assert!(pem.starts_with("-----BEGIN TEST THING-----\n"));
        assert!(pem.ends_with("\n-----END TEST THING-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        let decoded = pem_decode(&pem.replace('\n', "\r\n")).unwrap();
        assert_eq!(decoded.label, "TEST THING");
        assert_eq!(decoded.body, body);
    }

    #[test]
    fn pem_requires_matching_end() {
        assert!(pem_decode("-----BEGIN A-----\nAAAA\n-----END B-----\n").is_err());
        assert!(pem_decode("no armour here").is_err());
    }

    #[test]
    fn ssh2_skips_continued_headers() {
        let text = "---- BEGIN SSH2 PUBLIC KEY ----\n\
                    Comment: \"a long \\\n\
                    comment: continued\"\n\
                    x-other: v\n\
                    AAAA\n\
                    AAE=\n\
                    ---- END SSH2 PUBLIC KEY ----\n";
        assert_eq!(ssh2_decode(text).unwrap(), [0, 0, 0, 0, 1]);
    }
}
