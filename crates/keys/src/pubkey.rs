//! A validated public key and its two canonical encodings: the SSH blob
//! (RFC 4253 §6.6 / RFC 8709) and, for RSA, the X.509 `SubjectPublicKeyInfo`
//! DER that EC2 fingerprints.

use pkcs8::der::asn1::BitStringRef;
use pkcs8::der::{Decode, Encode};
use pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::BigUint;

use crate::armor::b64;
use crate::fingerprint;
use crate::wire::{strip_leading_zeros, Reader, Writer};
use crate::{KeyError, KeyType};

pub(crate) const SSH_RSA: &str = "ssh-rsa";
pub(crate) const SSH_ED25519: &str = "ssh-ed25519";

/// Object identifiers of the algorithms a `SubjectPublicKeyInfo` may carry.
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_DSA: &str = "1.2.840.10040.4.1";
const OID_ED448: &str = "1.3.101.113";

/// EC2 only accepts these modulus sizes for imported RSA keys.
pub(crate) const RSA_ALLOWED_BITS: [usize; 3] = [1024, 2048, 4096];

/// The key types EC2 supports, for error messages.
pub(crate) const SUPPORTED: &str =
    "EC2 supports rsa (1024, 2048 or 4096 bits) and ed25519 keys only";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Big-endian magnitudes without leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519([u8; 32]),
}

impl PublicKey {
    /// Builds an RSA key, enforcing EC2's size rule and basic sanity so a
    /// key that could never be used for SSH is refused at import time.
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n_big = BigUint::from_bytes_be(n);
        let bits = n_big.bits();
        if !RSA_ALLOWED_BITS.contains(&bits) {
            return Err(KeyError::InvalidFormat(format!(
                "RSA key is {bits} bits; {SUPPORTED}"
            )));
        }
        rsa::RsaPublicKey::new_with_max_size(n_big, BigUint::from_bytes_be(e), 4096)
            .map_err(|err| KeyError::InvalidFormat(format!("invalid RSA public key: {err}")))?;
        Ok(Self::Rsa {
            n: strip_leading_zeros(n).to_vec(),
            e: strip_leading_zeros(e).to_vec(),
        })
    }

    /// Builds an ED25519 key; the point must decompress, as OpenSSH would
    /// otherwise fail at login time rather than now.
    pub(crate) fn ed25519(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            KeyError::InvalidFormat(format!(
                "ed25519 public key must be 32 bytes, got {}",
                bytes.len()
            ))
        })?;
        ed25519_dalek::VerifyingKey::from_bytes(&arr).map_err(|_| {
            KeyError::InvalidFormat("ed25519 public key is not a valid curve point".to_string())
        })?;
        Ok(Self::Ed25519(arr))
    }

    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            Self::Rsa { .. } => KeyType::Rsa,
            Self::Ed25519(_) => KeyType::Ed25519,
        }
    }

    pub(crate) fn algorithm(&self) -> &'static str {
        match self {
            Self::Rsa { .. } => SSH_RSA,
            Self::Ed25519(_) => SSH_ED25519,
        }
    }

    /// The SSH public key blob: `string alg, mpint e, mpint n` for RSA,
    /// `string alg, string key` for ED25519.
    pub(crate) fn ssh_blob(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(self.algorithm().as_bytes());
        match self {
            Self::Rsa { n, e } => {
                w.mpint(e).mpint(n);
            }
            Self::Ed25519(k) => {
                w.string(k);
            }
        }
        w.into_bytes()
    }

    /// `"<alg> <base64 blob>"`, the authorized_keys line without a comment.
    pub(crate) fn openssh(&self) -> String {
        format!("{} {}", self.algorithm(), b64(&self.ssh_blob()))
    }

    /// The fingerprint EC2 shows for this key when it was imported.
    pub(crate) fn import_fingerprint(&self) -> Result<String, KeyError> {
        match self {
            Self::Rsa { n, e } => Ok(fingerprint::md5_spki(&rsa_spki_der(n, e)?)),
            Self::Ed25519(_) => Ok(fingerprint::sha256_blob(&self.ssh_blob())),
        }
    }

    /// Parses an SSH public key blob, refusing trailing bytes so that two
    /// different inputs cannot map to the same stored key.
    pub(crate) fn from_ssh_blob(blob: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let alg = r.string()?;
        let key = match alg {
            b"ssh-rsa" => {
                let e = r.positive_mpint()?;
                let n = r.positive_mpint()?;
                Self::rsa(n, e)?
            }
            b"ssh-ed25519" => Self::ed25519(r.string()?)?,
            other => return Err(unsupported_ssh_algorithm(&String::from_utf8_lossy(other))),
        };
        if !r.is_empty() {
            return Err(KeyError::InvalidFormat(
                "unexpected trailing data after the public key".to_string(),
            ));
        }
        Ok(key)
    }

    /// Parses DER as X.509 `SubjectPublicKeyInfo` (what `-----BEGIN PUBLIC
    /// KEY-----` and EC2's "base64 encoded DER" carry) or, failing that, as
    /// a bare PKCS#1 `RSAPublicKey`.
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        match SubjectPublicKeyInfoRef::from_der(der) {
            Ok(spki) => Self::from_spki(&spki),
            Err(_) => Self::from_pkcs1_der(der).map_err(|_| {
                KeyError::InvalidFormat(
                    "DER data is neither a SubjectPublicKeyInfo nor a PKCS#1 RSA public key"
                        .to_string(),
                )
            }),
        }
    }

    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<Self, KeyError> {
        let key_bits = spki.subject_public_key.as_bytes().ok_or_else(|| {
            KeyError::InvalidFormat("public key bit string has unused bits".to_string())
        })?;
        match spki.algorithm.oid.to_string().as_str() {
            OID_RSA => Self::from_pkcs1_der(key_bits),
            OID_ED25519 => Self::ed25519(key_bits),
            OID_EC => Err(KeyError::InvalidFormat(format!(
                "ECDSA keys are not supported; {SUPPORTED}"
            ))),
            OID_DSA => Err(KeyError::InvalidFormat(format!(
                "DSA keys are not supported; {SUPPORTED}"
            ))),
            OID_ED448 => Err(KeyError::InvalidFormat(format!(
                "Ed448 keys are not supported; {SUPPORTED}"
            ))),
            other => Err(KeyError::InvalidFormat(format!(
                "unknown public key algorithm {other}; {SUPPORTED}"
            ))),
        }
    }

    pub(crate) fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = rsa::pkcs1::RsaPublicKey::from_der(der)
            .map_err(|e| KeyError::InvalidFormat(format!("invalid PKCS#1 RSA public key: {e}")))?;
        Self::rsa(key.modulus.as_bytes(), key.public_exponent.as_bytes())
    }
}

/// DER `SubjectPublicKeyInfo` for an RSA key, byte-identical to what
/// `openssl rsa -pubin -outform DER` emits: rsaEncryption OID with explicit
/// NULL parameters, wrapping a PKCS#1 `RSAPublicKey`.
pub(crate) fn rsa_spki_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>, KeyError> {
    let internal = |err: pkcs8::der::Error| KeyError::Internal(format!("encoding RSA SPKI: {err}"));
    let pkcs1 = rsa::pkcs1::RsaPublicKey {
        modulus: rsa::pkcs1::UintRef::new(n).map_err(internal)?,
        public_exponent: rsa::pkcs1::UintRef::new(e).map_err(internal)?,
    }
    .to_der()
    .map_err(internal)?;
    SubjectPublicKeyInfoRef {
        algorithm: rsa::pkcs1::ALGORITHM_ID,
        subject_public_key: BitStringRef::new(0, &pkcs1).map_err(internal)?,
    }
    .to_der()
    .map_err(internal)
}

/// The error for an SSH algorithm name EC2 will not import, naming what it
/// does support so the user knows what to generate instead.
pub(crate) fn unsupported_ssh_algorithm(name: &str) -> KeyError {
    let what = if name == "ssh-dss" {
        "DSA keys are not supported".to_string()
    } else if name.starts_with("ecdsa-sha2-") || name.starts_with("sk-ecdsa-") {
        "ECDSA keys are not supported".to_string()
    } else if name.starts_with("sk-") {
        "security-key (FIDO) keys are not supported".to_string()
    } else if name.contains("-cert-") {
        "OpenSSH certificates are not supported".to_string()
    } else {
        let shown: String = name.chars().take(40).collect();
        format!("unknown key type {shown:?}")
    };
    KeyError::InvalidFormat(format!("{what}; {SUPPORTED}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_size_rule() {
        let e = [1, 0, 1];
        let mut n = vec![0xffu8; 3072 / 8];
        n[383] = 0xfb; // odd, 3072 bits
        let err = PublicKey::rsa(&n, &e).unwrap_err();
        assert!(err.to_string().contains("3072 bits"), "{err}");
        n.truncate(256);
        assert!(PublicKey::rsa(&n, &e).is_ok());
    }

    #[test]
    fn blob_rejects_trailing_bytes() {
        // The encoding of the Ed25519 base point, a known-valid public key.
        let mut point = [0x66u8; 32];
        point[0] = 0x58;
        let key = PublicKey::ed25519(&point).unwrap();
        let mut blob = key.ssh_blob();
        assert_eq!(PublicKey::from_ssh_blob(&blob).unwrap(), key);
        blob.push(0);
        assert!(PublicKey::from_ssh_blob(&blob).is_err());
    }
}
