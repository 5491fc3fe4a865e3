//! `import_public_key` takes user input straight off the wire, so it must
//! return an error rather than panic on anything. Random bytes alone rarely
//! get past the format sniffing, hence the structured generators that wrap
//! random payloads in each accepted envelope.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proptest::prelude::*;
use strato_keys::import_public_key;

const RSA2048_OPENSSH: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC1XOmro99aCSLIXhc6FxlB7SqgJnIrz+f7BPxKsdmqaRtHQWAAomeaHvsDka6dkhHGv2MdaQAoctCHogaGFaQp2EGz+e7pypGZZE1/VUQxSkyP1FK1tmdJSPFdABNgVScmeNzDhHs+9/BNxCKADYRGgMy3o5Ouazzv0bwbAUR30t9aBv8y/w58hex2aXcVHMVqTRcUSUbJ8fZbyrNsrx002yeWWef/zfD1VhFpwAn1KmcjxUzCqokDurVEjXyb+iEt8Bl1eiyisnYVc1afFp6Iigt3qX8dIopy7OEIguXpjG44Qwz9NeeVmHp5FQ3YhCW4JR+K6bMWYOhdPCng6Thb";
const RSA2048_B64_DER: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtVzpq6PfWgkiyF4XOhcZQe0qoCZyK8/n+wT8SrHZqmkbR0FgAKJnmh77A5GunZIRxr9jHWkAKHLQh6IGhhWkKdhBs/nu6cqRmWRNf1VEMUpMj9RStbZnSUjxXQATYFUnJnjcw4R7PvfwTcQigA2ERoDMt6OTrms879G8GwFEd9LfWgb/Mv8OfIXsdml3FRzFak0XFElGyfH2W8qzbK8dNNsnllnn/83w9VYRacAJ9SpnI8VMwqqJA7q1RI18m/ohLfAZdXosorJ2FXNWnxaeiIoLd6l/HSKKcuzhCILl6YxuOEMM/TXnlZh6eRUN2IQluCUfiumzFmDoXTwp4Ok4WwIDAQAB";
const ED25519_OPENSSH: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaCn2M+GKAfvuh9AVidvoOeoChUI2IrACE7PP279E2n";

fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Flips bytes of a valid encoding at random positions.
fn mutate(original: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for &(pos, value) in edits {
        let i = pos % bytes.len();
        bytes[i] = value;
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = import_public_key(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,512}") {
        let _ = import_public_key(text.as_bytes());
    }

    #[test]
    fn random_payloads_in_each_envelope_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        which in 0usize..7,
    ) {
        let b64 = STANDARD.encode(&payload);
        let input = match which {
            0 => format!("ssh-rsa {b64} comment"),
            1 => format!("ssh-ed25519 {b64}"),
            2 => format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n"),
            3 => format!("-----BEGIN RSA PUBLIC KEY-----\n{b64}\n-----END RSA PUBLIC KEY-----\n"),
            4 => format!("---- BEGIN SSH2 PUBLIC KEY ----\n{b64}\n---- END SSH2 PUBLIC KEY ----\n"),
            5 => b64,
            _ => {
                let mut der = vec![0x30];
                der.extend_from_slice(&payload);
                let _ = import_public_key(&der);
                STANDARD.encode(der)
            }
        };
        let _ = import_public_key(input.as_bytes());
    }

    #[test]
    fn random_ssh_blobs_never_panic(
        alg in prop_oneof![
            Just("ssh-rsa".to_string()),
            Just("ssh-ed25519".to_string()),
            Just("ssh-dss".to_string()),
            "[a-z-]{0,20}",
        ],
        fields in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4),
        trailing in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut blob = Vec::new();
        ssh_string(&mut blob, alg.as_bytes());
        for f in &fields {
            ssh_string(&mut blob, f);
        }
        blob.extend_from_slice(&trailing);
        let line = format!("{alg} {}", STANDARD.encode(&blob));
        let _ = import_public_key(line.as_bytes());
    }

    #[test]
    fn mutated_valid_keys_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        which in 0usize..3,
    ) {
        let valid: Vec<u8> = match which {
            0 => STANDARD.decode(RSA2048_OPENSSH.split(' ').nth(1).unwrap()).unwrap(),
            1 => STANDARD.decode(ED25519_OPENSSH.split(' ').nth(1).unwrap()).unwrap(),
            _ => STANDARD.decode(RSA2048_B64_DER).unwrap(),
        };
        let mutated = mutate(&valid, &edits);
        let _ = import_public_key(&mutated);
        let as_text = match which {
            0 => format!("ssh-rsa {}", STANDARD.encode(&mutated)),
            1 => format!("ssh-ed25519 {}", STANDARD.encode(&mutated)),
            _ => STANDARD.encode(&mutated),
        };
        let _ = import_public_key(as_text.as_bytes());
    }
}

#[test]
fn oversized_material_is_rejected_without_parsing() {
    let huge = vec![b'A'; 1 << 20];
    assert!(import_public_key(&huge).is_err());
}
