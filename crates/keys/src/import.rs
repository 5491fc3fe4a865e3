//! Recognising the public key formats ImportKeyPair accepts.
//!
//! EC2 documents three formats: OpenSSH public key lines, "Base64 encoded
//! DER", and RFC 4716 SSH2 files; in practice it also takes PEM public keys,
//! which are just armoured DER. The format is sniffed from the content
//! because the API has no field naming it.

use crate::armor::{b64_decode_lenient, pem_decode, ssh2_decode, SSH2_BEGIN};
use crate::pubkey::{unsupported_ssh_algorithm, PublicKey, SSH_ED25519, SSH_RSA};
use crate::KeyError;

const FORMATS: &str =
    "expected an OpenSSH public key (\"ssh-rsa AAAA...\" or \"ssh-ed25519 AAAA...\"), \
     a PEM public key (\"-----BEGIN PUBLIC KEY-----\" or \"-----BEGIN RSA PUBLIC KEY-----\"), \
     base64-encoded DER, or an RFC 4716 SSH2 public key";

/// Parses any accepted public key encoding.
pub(crate) fn parse(material: &[u8]) -> Result<PublicKey, KeyError> {
    let Ok(text) = std::str::from_utf8(material) else {
        // Binary input can only be raw DER; anything else is garbage.
        if material.first() == Some(&0x30) {
            return PublicKey::from_der(material);
        }
        return Err(invalid("key material is neither text nor DER"));
    };
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(invalid("key material is empty"));
    }
    if text.starts_with(SSH2_BEGIN) {
        return PublicKey::from_ssh_blob(&ssh2_decode(text)?);
    }
    if text.starts_with("-----BEGIN ") {
        return parse_pem(text);
    }
    if text.starts_with("PuTTY-User-Key-File-") {
        return Err(invalid(
            "this is a PuTTY private key file; import its public key instead \
             (puttygen key.ppk -O public-openssh)",
        ));
    }
    if let Some(first) = text.split_ascii_whitespace().next() {
        if looks_like_ssh_algorithm(first) {
            return parse_openssh_line(text);
        }
    }
    if text.as_bytes().first() == Some(&0x30) {
        // Raw DER that happens to be valid UTF-8.
        return PublicKey::from_der(text.as_bytes());
    }
    match b64_decode_lenient(text) {
        Some(der) if der.first() == Some(&0x30) => PublicKey::from_der(&der),
        _ => Err(invalid(FORMATS)),
    }
}

/// True for tokens that name an SSH key algorithm rather than start a base64
/// body; base64 never contains `-`, so this cannot misfire on DER.
fn looks_like_ssh_algorithm(token: &str) -> bool {
    token.starts_with("ssh-") || token.starts_with("ecdsa-") || token.starts_with("sk-")
}

/// `<algorithm> <base64 blob> [comment]` on a single line.
fn parse_openssh_line(text: &str) -> Result<PublicKey, KeyError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = lines.next().unwrap_or_default();
    if lines.next().is_some() {
        return Err(invalid("expected a single OpenSSH public key line"));
    }
    let mut fields = line.split_ascii_whitespace();
    let algorithm = fields.next().unwrap_or_default();
    if algorithm != SSH_RSA && algorithm != SSH_ED25519 {
        return Err(unsupported_ssh_algorithm(algorithm));
    }
    let body = fields
        .next()
        .ok_or_else(|| invalid("OpenSSH public key has no base64 key data"))?;
    let blob = b64_decode_lenient(body)
        .ok_or_else(|| invalid("OpenSSH public key data is not valid base64"))?;
    let key = PublicKey::from_ssh_blob(&blob)?;
    // A mismatch means a hand-edited or corrupted line; refusing it avoids
    // storing a key under the wrong type.
    if key.algorithm() != algorithm {
        return Err(invalid(&format!(
            "key is labelled {algorithm} but contains a {} key",
            key.algorithm()
        )));
    }
    Ok(key)
}

fn parse_pem(text: &str) -> Result<PublicKey, KeyError> {
    let armored = pem_decode(text)?;
    match armored.label.as_str() {
        "PUBLIC KEY" => PublicKey::from_der(&armored.body),
        "RSA PUBLIC KEY" => PublicKey::from_pkcs1_der(&armored.body),
        label if label.contains("PRIVATE KEY") => Err(invalid(&format!(
            "this is a private key ({label}); import only the public key"
        ))),
        "DSA PUBLIC KEY" => Err(unsupported_ssh_algorithm("ssh-dss")),
        "EC PUBLIC KEY" => Err(unsupported_ssh_algorithm("ecdsa-sha2-nistp256")),
        label => Err(invalid(&format!(
            "unexpected PEM block {label:?}; {FORMATS}"
        ))),
    }
}

fn invalid(detail: &str) -> KeyError {
    KeyError::InvalidFormat(detail.to_string())
}
