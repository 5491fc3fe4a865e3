//! EC2 key pair cryptography for `CreateKeyPair`, `ImportKeyPair` and
//! `DescribeKeyPairs`, reproducing what AWS EC2 returns byte for byte where
//! clients can observe it.
//!
//! # Created keys (`CreateKeyPair`)
//!
//! | `KeyType` | `KeyFormat` | `KeyMaterial`                                              |
//! |-----------|-------------|------------------------------------------------------------|
//! | rsa       | pem         | 2048-bit PKCS#1 `-----BEGIN RSA PRIVATE KEY-----`, 64 cols |
//! | ed25519   | pem         | `-----BEGIN OPENSSH PRIVATE KEY-----` (openssh-key-v1), 70 cols |
//! | rsa       | ppk         | PuTTY private key file v3, unencrypted                     |
//! | ed25519   | ppk         | PuTTY private key file v3, unencrypted                     |
//!
//! EC2 uses the OpenSSH container for ED25519 even when asked for "pem"
//! because there is no PEM form of an ED25519 key that OpenSSH clients read.
//! All keys are unencrypted: the user downloads them once over TLS.
//!
//! # Imported keys (`ImportKeyPair`)
//!
//! `PublicKeyMaterial` may be an OpenSSH public key line, a PEM public key
//! (`PUBLIC KEY` = X.509 SubjectPublicKeyInfo, `RSA PUBLIC KEY` = PKCS#1),
//! base64-encoded (or raw) DER of either, or an RFC 4716 SSH2 public key
//! file. Only RSA with a 1024, 2048 or 4096-bit modulus and ED25519 are
//! accepted, as on EC2; DSA, ECDSA, FIDO keys and certificates are refused.
//!
//! # Fingerprints
//!
//! Which digest EC2 shows depends on who generated the key and its type
//! (AWS docs, "Verify the fingerprint of your key pair"):
//!
//! * RSA created by EC2: SHA-1 of the PKCS#8 `PrivateKeyInfo` DER, colon hex
//!   (`openssl pkcs8 -topk8 -nocrypt -outform DER | openssl sha1 -c`);
//! * RSA imported: MD5 of the `SubjectPublicKeyInfo` DER, colon hex
//!   (`openssl rsa -pubin -outform DER | openssl md5 -c`);
//! * ED25519, created or imported: SHA-256 of the SSH public key blob in
//!   base64 *with* `=` padding (`ssh-keygen -l -E sha256` minus padding).
//!
//! The RSA digests are over DER, so they differ from `ssh-keygen -l -E md5`.

mod armor;
mod fingerprint;
mod import;
mod openssh;
mod ppk;
mod pubkey;
mod wire;

use std::fmt;
use std::str::FromStr;

use rand::rngs::OsRng;
use rand::RngCore;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

use crate::pubkey::{PublicKey, SSH_ED25519, SSH_RSA};
use crate::wire::Writer;

/// Size of RSA keys EC2 generates for `CreateKeyPair`.
const CREATED_RSA_BITS: usize = 2048;

/// Longest `PublicKeyMaterial` worth parsing. A 4096-bit key in the most
/// verbose accepted format is under 1 KiB; the slack is for RFC 4716 headers.
const MAX_IMPORT_BYTES: usize = 16 * 1024;

/// The `KeyType` of a key pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA; EC2's default when `KeyType` is omitted.
    #[default]
    Rsa,
    /// ED25519 (RFC 8032 / RFC 8709).
    Ed25519,
}

impl KeyType {
    /// The EC2 API spelling: `"rsa"` or `"ed25519"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = KeyError;

    /// Accepts exactly the EC2 enum values; EC2 enum parameters are
    /// case-sensitive.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s {
            "rsa" => Ok(Self::Rsa),
            "ed25519" => Ok(Self::Ed25519),
            _ => Err(KeyError::Unsupported(format!(
                "unsupported key type {s:?}; valid values are rsa and ed25519"
            ))),
        }
    }
}

/// The `KeyFormat` of created private key material.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// PEM for RSA, OpenSSH private key format for ED25519; EC2's default.
    #[default]
    Pem,
    /// PuTTY private key file (version 3).
    Ppk,
}

impl KeyFormat {
    /// The EC2 API spelling: `"pem"` or `"ppk"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pem => "pem",
            Self::Ppk => "ppk",
        }
    }
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyFormat {
    type Err = KeyError;

    /// Accepts exactly `"pem"` or `"ppk"`.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s {
            "pem" => Ok(Self::Pem),
            "ppk" => Ok(Self::Ppk),
            _ => Err(KeyError::Unsupported(format!(
                "unsupported key format {s:?}; valid values are pem and ppk"
            ))),
        }
    }
}

/// Errors from creating or importing keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The supplied key material is malformed or of a type EC2 refuses;
    /// maps to EC2's `InvalidKey.Format`. The message says what was wrong
    /// and what is accepted.
    #[error("{0}")]
    InvalidFormat(String),
    /// A parameter value (key type or format name) is not supported; maps
    /// to EC2's `InvalidParameterValue`.
    #[error("{0}")]
    Unsupported(String),
    /// Key generation or encoding failed; a server fault, not the caller's.
    #[error("internal key error: {0}")]
    Internal(String),
}

impl KeyError {
    /// The EC2 error code this error should be reported as.
    pub fn ec2_code(&self) -> &'static str {
        match self {
            Self::InvalidFormat(_) => "InvalidKey.Format",
            Self::Unsupported(_) => "InvalidParameterValue",
            Self::Internal(_) => "InternalError",
        }
    }
}

/// A freshly generated key pair, as `CreateKeyPair` reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct CreatedKey {
    /// The private key exactly as EC2 returns it in `KeyMaterial`; it ends
    /// with a newline because OpenSSH refuses key files that do not.
    pub key_material: String,
    /// `KeyFingerprint` for a created key: SHA-1 of the PKCS#8 DER for RSA
    /// (colon hex), padded base64 SHA-256 of the SSH blob for ED25519.
    pub fingerprint: String,
    /// `"ssh-rsa AAAA..."` / `"ssh-ed25519 AAAA..."` without a comment, for
    /// instance metadata (`public-keys/0/openssh-key`).
    pub public_key_openssh: String,
}

impl fmt::Debug for CreatedKey {
    /// Redacts the private key so it cannot leak through logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key_material", &"<redacted>")
            .field("fingerprint", &self.fingerprint)
            .field("public_key_openssh", &self.public_key_openssh)
            .finish()
    }
}

/// Generates a key pair for `CreateKeyPair`.
///
/// `comment_name` (normally the key pair name) becomes the key comment in
/// the OpenSSH and PPK containers; PKCS#1 PEM has nowhere to put it.
pub fn create_key(
    key_type: KeyType,
    format: KeyFormat,
    comment_name: &str,
) -> Result<CreatedKey, KeyError> {
    match key_type {
        KeyType::Rsa => create_rsa(format, comment_name),
        KeyType::Ed25519 => Ok(create_ed25519(format, comment_name)),
    }
}

fn create_rsa(format: KeyFormat, comment_name: &str) -> Result<CreatedKey, KeyError> {
    let key = rsa::RsaPrivateKey::new(&mut OsRng, CREATED_RSA_BITS)
        .map_err(|e| KeyError::Internal(format!("generating RSA key: {e}")))?;
    let pkcs1 = key
        .to_pkcs1_der()
        .map_err(|e| KeyError::Internal(format!("encoding RSA key: {e}")))?;
    // The fingerprint is taken over the same PKCS#1 bytes the PEM carries,
    // so a user re-deriving it with openssl always gets the same answer.
    let fingerprint = fingerprint::sha1_created_rsa(pkcs1.as_bytes())?;
    let public = PublicKey::Rsa {
        n: key.n().to_bytes_be(),
        e: key.e().to_bytes_be(),
    };
    let key_material = match format {
        KeyFormat::Pem => armor::pem_encode("RSA PRIVATE KEY", pkcs1.as_bytes(), 64),
        KeyFormat::Ppk => {
            let [p, q] = key.primes() else {
                return Err(KeyError::Internal("RSA key is not two-prime".to_string()));
            };
            // PuTTY's iqmp is q^-1 mod p, the same as PKCS#1's coefficient.
            let iqmp = key
                .crt_coefficient()
                .ok_or_else(|| KeyError::Internal("RSA CRT coefficient missing".to_string()))?;
            let mut private = Writer::new();
            private
                .mpint(&key.d().to_bytes_be())
                .mpint(&p.to_bytes_be())
                .mpint(&q.to_bytes_be())
                .mpint(&iqmp.to_bytes_be());
            ppk::encode_v3(
                SSH_RSA,
                comment_name,
                &public.ssh_blob(),
                &private.into_bytes(),
            )
        }
    };
    Ok(CreatedKey {
        key_material,
        fingerprint,
        public_key_openssh: public.openssh(),
    })
}

fn create_ed25519(format: KeyFormat, comment_name: &str) -> CreatedKey {
    let signing = ed25519_dalek::SigningKey::generate(&mut OsRng);
    let seed = signing.to_bytes();
    let public_bytes = signing.verifying_key().to_bytes();
    let public = PublicKey::Ed25519(public_bytes);
    let blob = public.ssh_blob();
    let key_material = match format {
        KeyFormat::Pem => {
            openssh::encode_ed25519(&seed, &public_bytes, comment_name, OsRng.next_u32())
        }
        KeyFormat::Ppk => {
            // PuTTY stores only the 32-byte seed (RFC 8032's private key).
            let mut private = Writer::new();
            private.string(&seed);
            ppk::encode_v3(SSH_ED25519, comment_name, &blob, &private.into_bytes())
        }
    };
    CreatedKey {
        key_material,
        fingerprint: fingerprint::sha256_blob(&blob),
        public_key_openssh: public.openssh(),
    }
}

/// A public key accepted by `ImportKeyPair`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedKey {
    /// The key's type, as `DescribeKeyPairs` reports it.
    pub key_type: KeyType,
    /// `KeyFingerprint` for an imported key: MD5 of the SubjectPublicKeyInfo
    /// DER for RSA (colon hex), padded base64 SHA-256 of the SSH blob for
    /// ED25519.
    pub fingerprint: String,
    /// The key re-encoded canonically as `"ssh-rsa AAAA..."` /
    /// `"ssh-ed25519 AAAA..."`, without the user's comment.
    pub public_key_openssh: String,
}

/// Validates and fingerprints `ImportKeyPair`'s `PublicKeyMaterial`.
///
/// `material` is the raw bytes of PublicKeyMaterial (already base64-decoded by the wire layer).
/// Never panics on arbitrary input; anything unusable is
/// [`KeyError::InvalidFormat`].
pub fn import_public_key(material: &[u8]) -> Result<ImportedKey, KeyError> {
    if material.len() > MAX_IMPORT_BYTES {
        return Err(invalid_import(&format!(
            "key material is {} bytes, more than the {MAX_IMPORT_BYTES} allowed",
            material.len()
        )));
    }
    let key = import::parse(material).map_err(|e| match e {
        KeyError::InvalidFormat(msg) => invalid_import(&msg),
        other => other,
    })?;
    Ok(ImportedKey {
        key_type: key.key_type(),
        fingerprint: key.import_fingerprint()?,
        public_key_openssh: key.openssh(),
    })
}

/// The fingerprint EC2 shows for a key imported from this public key (any
/// format [`import_public_key`] accepts, typically a stored
/// `public_key_openssh` line).
pub fn openssh_public_to_fingerprint(public_key: &str) -> Result<String, KeyError> {
    import_public_key(public_key.as_bytes()).map(|k| k.fingerprint)
}

/// EC2's own wording leads, so clients matching on it keep working; the
/// detail after it is ours.
fn invalid_import(detail: &str) -> KeyError {
    KeyError::InvalidFormat(format!(
        "Key is not in valid OpenSSH public key format: {detail}"
    ))
}
