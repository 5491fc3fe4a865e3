//! ImportKeyPair against fixed keys whose fingerprints were computed with
//! the reference tools (OpenSSH 9.2, OpenSSL 3.0):
//!
//! * RSA: `ssh-keygen -ef key.pub -m PEM | openssl rsa -RSAPublicKey_in -outform DER | openssl md5 -c`
//! * ED25519: `ssh-keygen -l -E sha256 -f key.pub` (EC2 adds the `=` padding)
//!
//! The other encodings of the 2048-bit key were produced with
//! `ssh-keygen -e` (`-m PEM`, `-m PKCS8`, default RFC 4716) and
//! `openssl rsa -pubin -outform DER | base64`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use strato_keys::{import_public_key, openssh_public_to_fingerprint, KeyError, KeyType};

const RSA2048_OPENSSH: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC1XOmro99aCSLIXhc6FxlB7SqgJnIrz+f7BPxKsdmqaRtHQWAAomeaHvsDka6dkhHGv2MdaQAoctCHogaGFaQp2EGz+e7pypGZZE1/VUQxSkyP1FK1tmdJSPFdABNgVScmeNzDhHs+9/BNxCKADYRGgMy3o5Ouazzv0bwbAUR30t9aBv8y/w58hex2aXcVHMVqTRcUSUbJ8fZbyrNsrx002yeWWef/zfD1VhFpwAn1KmcjxUzCqokDurVEjXyb+iEt8Bl1eiyisnYVc1afFp6Iigt3qX8dIopy7OEIguXpjG44Qwz9NeeVmHp5FQ3YhCW4JR+K6bMWYOhdPCng6Thb kat@strato";
const RSA2048_MD5: &str = "3c:f3:b8:c8:92:de:cc:44:50:9b:9a:2f:87:89:96:65";
/// What `ssh-keygen -l -E md5` prints for the same key: MD5 of the SSH
/// blob, which EC2 does not use.
const RSA2048_SSH_KEYGEN_MD5: &str = "65:b4:b8:38:a1:f6:71:bf:c4:e7:9d:be:9b:66:51:bc";

const RSA2048_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtVzpq6PfWgkiyF4XOhcZ
Qe0qoCZyK8/n+wT8SrHZqmkbR0FgAKJnmh77A5GunZIRxr9jHWkAKHLQh6IGhhWk
KdhBs/nu6cqRmWRNf1VEMUpMj9RStbZnSUjxXQATYFUnJnjcw4R7PvfwTcQigA2E
RoDMt6OTrms879G8GwFEd9LfWgb/Mv8OfIXsdml3FRzFak0XFElGyfH2W8qzbK8d
NNsnllnn/83w9VYRacAJ9SpnI8VMwqqJA7q1RI18m/ohLfAZdXosorJ2FXNWnxae
iIoLd6l/HSKKcuzhCILl6YxuOEMM/TXnlZh6eRUN2IQluCUfiumzFmDoXTwp4Ok4
WwIDAQAB
-----END PUBLIC KEY-----
";

const RSA2048_PKCS1_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAtVzpq6PfWgkiyF4XOhcZQe0qoCZyK8/n+wT8SrHZqmkbR0FgAKJn
mh77A5GunZIRxr9jHWkAKHLQh6IGhhWkKdhBs/nu6cqRmWRNf1VEMUpMj9RStbZn
SUjxXQATYFUnJnjcw4R7PvfwTcQigA2ERoDMt6OTrms879G8GwFEd9LfWgb/Mv8O
fIXsdml3FRzFak0XFElGyfH2W8qzbK8dNNsnllnn/83w9VYRacAJ9SpnI8VMwqqJ
A7q1RI18m/ohLfAZdXosorJ2FXNWnxaeiIoLd6l/HSKKcuzhCILl6YxuOEMM/TXn
lZh6eRUN2IQluCUfiumzFmDoXTwp4Ok4WwIDAQAB
-----END RSA PUBLIC KEY-----
";

const RSA2048_RFC4716: &str = "---- BEGIN SSH2 PUBLIC KEY ----
Comment: \"2048-bit RSA, converted by root@vm from OpenSSH\"
AAAAB3NzaC1yc2EAAAADAQABAAABAQC1XOmro99aCSLIXhc6FxlB7SqgJnIrz+f7BPxKsd
mqaRtHQWAAomeaHvsDka6dkhHGv2MdaQAoctCHogaGFaQp2EGz+e7pypGZZE1/VUQxSkyP
1FK1tmdJSPFdABNgVScmeNzDhHs+9/BNxCKADYRGgMy3o5Ouazzv0bwbAUR30t9aBv8y/w
58hex2aXcVHMVqTRcUSUbJ8fZbyrNsrx002yeWWef/zfD1VhFpwAn1KmcjxUzCqokDurVE
jXyb+iEt8Bl1eiyisnYVc1afFp6Iigt3qX8dIopy7OEIguXpjG44Qwz9NeeVmHp5FQ3YhC
W4JR+K6bMWYOhdPCng6Thb
---- END SSH2 PUBLIC KEY ----
";

const RSA2048_B64_DER: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtVzpq6PfWgkiyF4XOhcZQe0qoCZyK8/n+wT8SrHZqmkbR0FgAKJnmh77A5GunZIRxr9jHWkAKHLQh6IGhhWkKdhBs/nu6cqRmWRNf1VEMUpMj9RStbZnSUjxXQATYFUnJnjcw4R7PvfwTcQigA2ERoDMt6OTrms879G8GwFEd9LfWgb/Mv8OfIXsdml3FRzFak0XFElGyfH2W8qzbK8dNNsnllnn/83w9VYRacAJ9SpnI8VMwqqJA7q1RI18m/ohLfAZdXosorJ2FXNWnxaeiIoLd6l/HSKKcuzhCILl6YxuOEMM/TXnlZh6eRUN2IQluCUfiumzFmDoXTwp4Ok4WwIDAQAB";

const RSA1024_OPENSSH: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC296c4RBWdQ6bcRx9cUJXblt7yfEI5PqbCgngS/pObiIU7/7d4g6JCZoOqNlr+FmBv2myfw/VD4NWmlQzbzbGaEEOstQwpbLns3BLqBk0LizeVg0icTQAEHSSL4EF3mvWv0eaC4VxUeNM7Y2LcZMB1B+QFVsyqQ0QNigcdpgzpWQ== ";
const RSA1024_MD5: &str = "00:56:b3:ab:96:e3:0a:d6:3f:16:54:f8:8b:6c:96:1c";

const RSA4096_OPENSSH: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAACAQDLd5dUAI6FNADQ8IbyRAp+D9WskoeOET7IRDz0G394tIXNcvdqM5HfuxJTN80KiLimKdAuxi80hraY4PtScmnjmRiwls1fXkAdrFsEakw3mWpnsVrgccAPXOrkfOMZLWbfBPdSsgLy0Gl0xtYeXt8n5S2THIvcXYlD31peVBqtRT4U+IzoBwFmunDJA+z/RPuLPZcu24d1H6iRP5yXQ2lrlDDjN0KIfgqVRzpO18VicBFFNcqkoXscFx9GSTzMggAeClsupZld8Gjsy3p3BTsI7WlJ/0LrPNyl5TVQ2fuRMbcOq58aeGVEn2FojG+z7b4xEzl0HGVKXprpcOp1ZHNCdFVOiIliY8JT/o+izM2J8smlmSgKzanWuG/P8/RXuTXE13Eb+xdX7uBwrSlU1RDDuTuxVklSoadvVLSSAXZL+R/FmpzDQX9STGg5RDvK7w/gLbrTsI/8vHtIhZp9sCcPOBvERWaK4P6l9Ii0eL845aJ2srhxrXvD6A50p8NM/SMpK+0ArLnOiPRntCghab2TgRN7aARcSZSSW4xBkQA3kryqM9USO51Q+LEDBS9AInTk0CCZCN8R/VA7g1qD3ZcC4Bb8ADv9k8rQmyPenYJ+lxk+2YCKoJFuBdcV7PoPzGbNQHF+s8krf8ZmsbjAnJVTdpulop4cW5ICEfj5qAhXcw== x";
const RSA4096_MD5: &str = "f7:c6:88:8f:88:ba:71:f7:39:c8:05:15:dd:7d:66:00";

/// ssh-keygen's default size since OpenSSH 8.0, which EC2 does not list.
const RSA3072_OPENSSH: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDGwZL7sevL19MdDrqGmVuJAj6LXVsxxbs4x+qosd2q2icXlPVgve/1bXnCiT71aOFoW43gMQXTfbhmvUtTvq6vKi+QE5GK+6pvZnQ61ziNaRPItipgxdZ8OdnUyZXJcKZhLanEdOWGA6BsIul6/xozbFFQwBpJmpoPRQFZ/7TTpZl16QzQEpv8idEsixKk2SqE+TmeUyyVZL757Saof7CEGFdu9DyQ8Zdk4NdHL+3UaEKmMKz2dDpXBeeuvwtRCoH4m6DCWXpFJIl/lEzp06ViM7XHpTJWnvwSeKgKQZRi4GtiurF7SwgjdkLIjRJs2tzmWUJJIfPYvaiuKXsS942MUC5JXyTEGWy9+4nvmTZjx9SlMJAJZlYfRx7rdjGxRE3sttIhOp3Gnx9IaIZHDFYLgpa5u0YIiREI8ob61IukI7h+3nlJCcKFJSyNUuAJbO9pWQmaYiDlRVwsUFiVBwi/MbITSfUV0TRj/8nO4hIiZ6wHj3CBEDiFa4nE9o0yFx8= root@vm";

const ED25519_OPENSSH: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaCn2M+GKAfvuh9AVidvoOeoChUI2IrACE7PP279E2n kat-ed";
/// `ssh-keygen -l -E sha256` printed `SHA256:kik5NOOQIAaevAwzcDQv6tgl13RI6SMu4LUDCmmo+SQ`.
const ED25519_SHA256: &str = "kik5NOOQIAaevAwzcDQv6tgl13RI6SMu4LUDCmmo+SQ=";

/// `openssl genpkey -algorithm ed25519 | openssl pkey -pubout`.
const ED25519_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAFWNMmB3NTd8QCqNGNvVcgEzRVHU8Yauq+wNE4NPHUnM=
-----END PUBLIC KEY-----
";
/// The same key as an OpenSSH line; `ssh-keygen -l -E sha256` printed
/// `SHA256:jxcORejeT8IFaLCExlLtUABjbkI4Pxhg6wjerM5PZsE` for it.
const ED25519_SPKI_AS_OPENSSH: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBVjTJgdzU3fEAqjRjb1XIBM0VR1PGGrqvsDRODTx1Jz";
const ED25519_SPKI_SHA256: &str = "jxcORejeT8IFaLCExlLtUABjbkI4Pxhg6wjerM5PZsE=";

const ECDSA_OPENSSH: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBITpVfw4d6LBiXftxf8L29gv+C+3AMAKSsx/Q6+h/gpK+mZFDKU/Q3iZrmslwjBl2fbpay6FGJX03EqGx90Gi6o= root@vm";
const DSA_OPENSSH: &str = "ssh-dss AAAAB3NzaC1kc3MAAACBANxdTQu22M8Um3oloovD7sWOuuNHhA5Ihg71H18v2F+PPqABRybvHd9+zhvoFJ/3l5a0G1pSnuIZk+xUEdVLxSSKlyVnK/Zr+Vn7e3cyvE89NVLBqdYuwZCBPPFZm7cniZjSMv1GAvI7v92oEoqlGIW56in7HOFogr/JqHdJnb25AAAAFQCJIouSpQnMo8CRt9IBd/1WhfFxqQAAAIEApBc4KzlpZdu/zEiGYknrZZADU0BqXyAnFN4+WDJiO4jfJJtiFVR2PGGWIYU1qmY9zC9fr4s6fmbjDwVGggwLMreuLrf3EAztwEUFm7fR1czCY2pixNrqwj9UKkkHoHizF6fln3IzWdeDktcvKvRlsPqvHq9Qv22b8AM+huvMXHQAAACBAMTtb8UXsbydtPGdMKNOx76WmLAgcdhUtSQHgJ/dEGqmxVTZLcxDfw5rKsdm0PCWIv68XXZYDOJDUvG7IWUc+Y5IRuoXgzvoUbk+L+VyGGOxNcoDnRrQP6h8IA3hY4ftuU0z+W6kiCHFwgBgbXzfdT7Fj2BBvzxrHFYcY5zJRWKQ root@vm";

/// The OpenSSH line without its comment, as every import should store it.
fn bare(line: &str) -> String {
    line.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn rsa2048_openssh_md5_matches_openssl() {
    let key = import_public_key(RSA2048_OPENSSH.as_bytes()).unwrap();
    assert_eq!(key.key_type, KeyType::Rsa);
    assert_eq!(key.fingerprint, RSA2048_MD5);
    assert_ne!(key.fingerprint, RSA2048_SSH_KEYGEN_MD5);
    assert_eq!(key.public_key_openssh, bare(RSA2048_OPENSSH));
}

#[test]
fn rsa2048_every_encoding_gives_the_same_key() {
    let der = STANDARD.decode(RSA2048_B64_DER).unwrap();
    let pkcs1_crlf = RSA2048_PKCS1_PEM.replace('\n', "\r\n");
    let inputs: Vec<(&str, &[u8])> = vec![
        ("spki pem", RSA2048_SPKI_PEM.as_bytes()),
        ("pkcs1 pem", RSA2048_PKCS1_PEM.as_bytes()),
        ("pkcs1 pem crlf", pkcs1_crlf.as_bytes()),
        ("rfc4716", RSA2048_RFC4716.as_bytes()),
        ("base64 der", RSA2048_B64_DER.as_bytes()),
        ("raw der", &der),
    ];
    for (name, input) in inputs {
        let key = import_public_key(input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(key.fingerprint, RSA2048_MD5, "{name}");
        assert_eq!(key.public_key_openssh, bare(RSA2048_OPENSSH), "{name}");
        assert_eq!(key.key_type, KeyType::Rsa, "{name}");
    }
}

#[test]
fn rsa_1024_and_4096_are_accepted() {
    let key = import_public_key(RSA1024_OPENSSH.as_bytes()).unwrap();
    assert_eq!(key.fingerprint, RSA1024_MD5);
    let key = import_public_key(RSA4096_OPENSSH.as_bytes()).unwrap();
    assert_eq!(key.fingerprint, RSA4096_MD5);
    assert_eq!(
        openssh_public_to_fingerprint(RSA4096_OPENSSH).unwrap(),
        RSA4096_MD5
    );
}

#[test]
fn rsa_3072_is_rejected() {
    let err = import_public_key(RSA3072_OPENSSH.as_bytes()).unwrap_err();
    assert!(matches!(err, KeyError::InvalidFormat(_)), "{err:?}");
    assert_eq!(err.ec2_code(), "InvalidKey.Format");
    let msg = err.to_string();
    assert!(
        msg.contains("3072") && msg.contains("1024, 2048 or 4096"),
        "{msg}"
    );
}

#[test]
fn ed25519_sha256_matches_ssh_keygen() {
    let key = import_public_key(ED25519_OPENSSH.as_bytes()).unwrap();
    assert_eq!(key.key_type, KeyType::Ed25519);
    assert_eq!(key.fingerprint, ED25519_SHA256);
    assert_eq!(key.public_key_openssh, bare(ED25519_OPENSSH));
}

#[test]
fn ed25519_spki_pem_from_openssl() {
    let key = import_public_key(ED25519_SPKI_PEM.as_bytes()).unwrap();
    assert_eq!(key.key_type, KeyType::Ed25519);
    assert_eq!(key.public_key_openssh, ED25519_SPKI_AS_OPENSSH);
    assert_eq!(key.fingerprint, ED25519_SPKI_SHA256);
}

#[test]
fn ed25519_rfc4716() {
    let blob = ED25519_OPENSSH.split(' ').nth(1).unwrap();
    let text = format!(
        "---- BEGIN SSH2 PUBLIC KEY ----\r\nComment: \"kat\"\r\n{blob}\r\n---- END SSH2 PUBLIC KEY ----\r\n"
    );
    let key = import_public_key(text.as_bytes()).unwrap();
    assert_eq!(key.fingerprint, ED25519_SHA256);
}

#[test]
fn unsupported_types_name_the_supported_ones() {
    for (input, what) in [(ECDSA_OPENSSH, "ECDSA"), (DSA_OPENSSH, "DSA")] {
        let err = import_public_key(input.as_bytes()).unwrap_err();
        assert!(matches!(err, KeyError::InvalidFormat(_)));
        let msg = err.to_string();
        assert!(msg.contains(what), "{msg}");
        assert!(msg.contains("rsa") && msg.contains("ed25519"), "{msg}");
    }
    // The type is taken from the blob, not just the label in front of it.
    let ecdsa_blob = ECDSA_OPENSSH.split(' ').nth(1).unwrap();
    let err = import_public_key(format!("ssh-rsa {ecdsa_blob}").as_bytes()).unwrap_err();
    assert!(err.to_string().contains("ECDSA"), "{err}");
}

#[test]
fn mislabelled_key_is_rejected() {
    let rsa_blob = RSA2048_OPENSSH.split(' ').nth(1).unwrap();
    let err = import_public_key(format!("ssh-ed25519 {rsa_blob}").as_bytes()).unwrap_err();
    assert!(err.to_string().contains("labelled"), "{err}");
}

#[test]
fn whitespace_and_comments_are_tolerated() {
    let padded = format!("\u{feff}  {RSA2048_OPENSSH}  with spaces in comment\r\n\n");
    let key = import_public_key(padded.as_bytes()).unwrap();
    assert_eq!(key.fingerprint, RSA2048_MD5);
}

#[test]
fn garbage_is_invalid_format() {
    let inputs: [&[u8]; 12] = [
        b"",
        b"   \n",
        b"hello world",
        b"ssh-rsa",
        b"ssh-rsa !!!notbase64",
        b"ssh-rsa AAAA",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n",
        b"---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n",
        b"\x30\x03\x02\x01\x00",
        b"\xff\xfe\x00\x01",
        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
    ];
    for input in inputs {
        let err = import_public_key(input).unwrap_err();
        assert!(
            matches!(err, KeyError::InvalidFormat(ref m) if m.starts_with("Key is not in valid OpenSSH public key format")),
            "{input:?}: {err:?}"
        );
    }
}

#[test]
fn private_keys_are_refused_with_a_hint() {
    let err = import_public_key(
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
}

#[test]
fn two_keys_in_one_blob_are_refused() {
    let two = format!("{RSA2048_OPENSSH}\n{ED25519_OPENSSH}\n");
    assert!(import_public_key(two.as_bytes()).is_err());
}
