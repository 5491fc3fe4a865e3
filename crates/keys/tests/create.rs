//! CreateKeyPair output checked through independent implementations: the
//! `rsa` crate's own PKCS#8 encoder, `ssh-key`'s OpenSSH parser, and a PPK
//! reader written here from PuTTY's format description.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::BigUint;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use strato_keys::{
    create_key, import_public_key, openssh_public_to_fingerprint, CreatedKey, KeyError, KeyFormat,
    KeyType,
};

/// RSA generation costs a noticeable fraction of a second; share keys.
fn rsa_pem() -> &'static CreatedKey {
    static KEY: OnceLock<CreatedKey> = OnceLock::new();
    KEY.get_or_init(|| create_key(KeyType::Rsa, KeyFormat::Pem, "rsa-pem").unwrap())
}

fn rsa_ppk() -> &'static CreatedKey {
    static KEY: OnceLock<CreatedKey> = OnceLock::new();
    KEY.get_or_init(|| create_key(KeyType::Rsa, KeyFormat::Ppk, "rsa ppk name").unwrap())
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn rsa_pem_is_pkcs1_with_sha1_of_pkcs8_fingerprint() {
    let key = rsa_pem();
    assert!(key
        .key_material
        .starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert!(key
        .key_material
        .ends_with("\n-----END RSA PRIVATE KEY-----\n"));
    for line in key.key_material.lines() {
        assert!(line.len() <= 64, "PEM line too long: {line}");
    }

    let parsed = rsa::RsaPrivateKey::from_pkcs1_pem(&key.key_material).unwrap();
    parsed.validate().unwrap();
    assert_eq!(parsed.n().bits(), 2048);
    let pkcs8 = parsed.to_pkcs8_der().unwrap();
    assert_eq!(key.fingerprint, colon_hex(&Sha1::digest(pkcs8.as_bytes())));
    assert_eq!(key.fingerprint.len(), 59);
}

#[test]
fn rsa_public_key_openssh_matches_private_key() {
    let key = rsa_pem();
    let parsed = rsa::RsaPrivateKey::from_pkcs1_pem(&key.key_material).unwrap();
    assert!(key.public_key_openssh.starts_with("ssh-rsa AAAA"));
    assert_eq!(key.public_key_openssh.split(' ').count(), 2, "no comment");
    let public = ssh_key::PublicKey::from_openssh(&key.public_key_openssh).unwrap();
    let rsa_pub = public.key_data().rsa().unwrap();
    assert_eq!(
        BigUint::from_bytes_be(rsa_pub.n.as_positive_bytes().unwrap()),
        *parsed.n()
    );
    assert_eq!(
        BigUint::from_bytes_be(rsa_pub.e.as_positive_bytes().unwrap()),
        *parsed.e()
    );
}

#[test]
fn rsa_import_round_trip_uses_md5_of_spki() {
    let created = rsa_pem();
    let imported = import_public_key(created.public_key_openssh.as_bytes()).unwrap();
    assert_eq!(imported.key_type, KeyType::Rsa);
    assert_eq!(imported.public_key_openssh, created.public_key_openssh);
    assert_eq!(imported.fingerprint.len(), 47);
    // Imported and created fingerprints of the same key differ on EC2 too.
    assert_ne!(imported.fingerprint, created.fingerprint);

    let spki = rsa::RsaPrivateKey::from_pkcs1_pem(&created.key_material)
        .unwrap()
        .to_public_key()
        .to_public_key_der()
        .unwrap();
    assert_eq!(
        imported.fingerprint,
        colon_hex(&Md5::digest(spki.as_bytes()))
    );
    assert_eq!(
        openssh_public_to_fingerprint(&created.public_key_openssh).unwrap(),
        imported.fingerprint
    );
}

#[test]
fn ed25519_pem_is_an_openssh_private_key() {
    let key = create_key(KeyType::Ed25519, KeyFormat::Pem, "my-ed-key").unwrap();
    assert!(key
        .key_material
        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    assert!(key
        .key_material
        .ends_with("\n-----END OPENSSH PRIVATE KEY-----\n"));
    for line in key.key_material.lines() {
        assert!(line.len() <= 70, "line too long: {line}");
    }

    let private = ssh_key::PrivateKey::from_openssh(&key.key_material).unwrap();
    assert!(!private.is_encrypted());
    assert_eq!(private.comment(), "my-ed-key");
    let pair = private.key_data().ed25519().unwrap();
    // The stored seed must really generate the stored public key.
    let derived = ed25519_dalek::SigningKey::from_bytes(&pair.private.to_bytes()).verifying_key();
    assert_eq!(derived.to_bytes(), pair.public.0);

    let public = ssh_key::PublicKey::from_openssh(&key.public_key_openssh).unwrap();
    assert_eq!(public.key_data(), private.public_key().key_data());
    assert!(key.public_key_openssh.starts_with("ssh-ed25519 AAAA"));
    assert_eq!(key.public_key_openssh.split(' ').count(), 2, "no comment");

    assert_eq!(key.fingerprint.len(), 44);
    assert!(key.fingerprint.ends_with('='));
    let expected = private.fingerprint(ssh_key::HashAlg::Sha256);
    assert_eq!(key.fingerprint, STANDARD.encode(expected.as_bytes()));
}

#[test]
fn ed25519_import_round_trip_keeps_fingerprint() {
    let created = create_key(KeyType::Ed25519, KeyFormat::Pem, "x").unwrap();
    let imported = import_public_key(created.public_key_openssh.as_bytes()).unwrap();
    assert_eq!(imported.key_type, KeyType::Ed25519);
    assert_eq!(imported.public_key_openssh, created.public_key_openssh);
    // For ED25519 EC2 uses the same digest whether it made the key or not.
    assert_eq!(imported.fingerprint, created.fingerprint);
}

#[test]
fn created_keys_are_fresh() {
    let a = create_key(KeyType::Ed25519, KeyFormat::Pem, "a").unwrap();
    let b = create_key(KeyType::Ed25519, KeyFormat::Pem, "a").unwrap();
    assert_ne!(a.public_key_openssh, b.public_key_openssh);
    assert_ne!(rsa_pem().public_key_openssh, rsa_ppk().public_key_openssh);
}

/// A PPK v3 file split into its parts, read independently of the crate.
struct Ppk {
    algorithm: String,
    encryption: String,
    comment: String,
    public: Vec<u8>,
    private: Vec<u8>,
    mac: String,
}

fn read_ppk(text: &str) -> Ppk {
    let mut lines = text.lines();
    let mut next_header = |name: &str| -> String {
        let line = lines.next().expect("truncated PPK");
        let (key, value) = line.split_once(": ").expect("not a header line");
        assert_eq!(key, name);
        value.to_string()
    };
    let algorithm = next_header("PuTTY-User-Key-File-3");
    let encryption = next_header("Encryption");
    let comment = next_header("Comment");
    let count: usize = next_header("Public-Lines").parse().unwrap();
    let mut body = String::new();
    let mut lines = text.lines().skip(4);
    for _ in 0..count {
        let l = lines.next().unwrap();
        assert!(l.len() <= 64);
        body.push_str(l);
    }
    let public = STANDARD.decode(&body).unwrap();
    let count: usize = lines
        .next()
        .unwrap()
        .strip_prefix("Private-Lines: ")
        .unwrap()
        .parse()
        .unwrap();
    let mut body = String::new();
    for _ in 0..count {
        body.push_str(lines.next().unwrap());
    }
    let private = STANDARD.decode(&body).unwrap();
    let mac = lines
        .next()
        .unwrap()
        .strip_prefix("Private-MAC: ")
        .unwrap()
        .to_string();
    assert!(lines.next().is_none(), "trailing lines after MAC");
    Ppk {
        algorithm,
        encryption,
        comment,
        public,
        private,
        mac,
    }
}

fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Reads one SSH `string`, returning it and the rest.
fn take_string(bytes: &[u8]) -> (&[u8], &[u8]) {
    let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    (&bytes[4..4 + len], &bytes[4 + len..])
}

fn check_ppk_mac(ppk: &Ppk) {
    let mut data = Vec::new();
    ssh_string(&mut data, ppk.algorithm.as_bytes());
    ssh_string(&mut data, ppk.encryption.as_bytes());
    ssh_string(&mut data, ppk.comment.as_bytes());
    ssh_string(&mut data, &ppk.public);
    ssh_string(&mut data, &ppk.private);
    // Unencrypted v3 files use HMAC-SHA-256 keyed with the empty string.
    let mut mac = Hmac::<Sha256>::new_from_slice(&[]).unwrap();
    mac.update(&data);
    assert_eq!(ppk.mac, hex::encode(mac.finalize().into_bytes()));
}

fn openssh_blob(line: &str) -> Vec<u8> {
    STANDARD.decode(line.split(' ').nth(1).unwrap()).unwrap()
}

#[test]
fn ed25519_ppk_structure_and_mac() {
    let key = create_key(KeyType::Ed25519, KeyFormat::Ppk, "ed ppk").unwrap();
    assert!(key
        .key_material
        .starts_with("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: ed ppk\n"));
    let ppk = read_ppk(&key.key_material);
    check_ppk_mac(&ppk);
    assert_eq!(ppk.public, openssh_blob(&key.public_key_openssh));

    let (seed, rest) = take_string(&ppk.private);
    assert!(rest.is_empty(), "unencrypted PPK has no padding");
    let seed: [u8; 32] = seed.try_into().expect("32-byte ed25519 private key");
    let derived = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let (_, rest) = take_string(&ppk.public);
    let (public, _) = take_string(rest);
    assert_eq!(derived.as_bytes(), public);
    assert_eq!(
        key.fingerprint,
        STANDARD.encode(Sha256::digest(&ppk.public))
    );
}

#[test]
fn rsa_ppk_structure_mac_and_fingerprint() {
    let key = rsa_ppk();
    assert!(key
        .key_material
        .starts_with("PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nComment: rsa ppk name\n"));
    let ppk = read_ppk(&key.key_material);
    check_ppk_mac(&ppk);
    assert_eq!(ppk.public, openssh_blob(&key.public_key_openssh));

    let (alg, rest) = take_string(&ppk.public);
    assert_eq!(alg, b"ssh-rsa");
    let (e, rest) = take_string(rest);
    let (n, _) = take_string(rest);
    let (d, rest) = take_string(&ppk.private);
    let (p, rest) = take_string(rest);
    let (q, rest) = take_string(rest);
    let (iqmp, rest) = take_string(rest);
    assert!(rest.is_empty());
    let big = BigUint::from_bytes_be;
    let (n, e, d, p, q, iqmp) = (big(n), big(e), big(d), big(p), big(q), big(iqmp));
    assert_eq!(&p * &q, n);
    assert_eq!((&iqmp * &q) % &p, BigUint::from(1u8), "iqmp = q^-1 mod p");
    let private = rsa::RsaPrivateKey::from_components(n, e, d, vec![p, q]).unwrap();
    private.validate().unwrap();
    // The created-key fingerprint is format-independent: PKCS#8 of the key.
    let pkcs8 = private.to_pkcs8_der().unwrap();
    assert_eq!(key.fingerprint, colon_hex(&Sha1::digest(pkcs8.as_bytes())));
}

#[test]
fn ppk_mac_detects_tampering() {
    let key = create_key(KeyType::Ed25519, KeyFormat::Ppk, "orig").unwrap();
    let mut ppk = read_ppk(&key.key_material);
    ppk.comment = "changed".to_string();
    let result = std::panic::catch_unwind(|| check_ppk_mac(&ppk));
    assert!(result.is_err(), "the MAC must cover the comment");
}

#[test]
fn enums_parse_and_print() {
    for t in [KeyType::Rsa, KeyType::Ed25519] {
        assert_eq!(t.as_str().parse::<KeyType>().unwrap(), t);
        assert_eq!(t.to_string(), t.as_str());
    }
    for f in [KeyFormat::Pem, KeyFormat::Ppk] {
        assert_eq!(f.as_str().parse::<KeyFormat>().unwrap(), f);
    }
    assert_eq!(KeyType::Rsa.as_str(), "rsa");
    assert_eq!(KeyType::Ed25519.as_str(), "ed25519");
    assert_eq!(KeyFormat::Ppk.as_str(), "ppk");
    assert_eq!(KeyType::default(), KeyType::Rsa);
    assert_eq!(KeyFormat::default(), KeyFormat::Pem);
    for bad in ["RSA", "dsa", "ecdsa", ""] {
        let err = bad.parse::<KeyType>().unwrap_err();
        assert!(matches!(err, KeyError::Unsupported(_)));
        assert_eq!(err.ec2_code(), "InvalidParameterValue");
    }
    assert!("pkcs8".parse::<KeyFormat>().is_err());
}

#[test]
fn debug_output_hides_private_key() {
    let key = create_key(KeyType::Ed25519, KeyFormat::Pem, "dbg").unwrap();
    let shown = format!("{key:?}");
    assert!(!shown.contains("PRIVATE KEY"));
    assert!(shown.contains(&key.fingerprint));
}
