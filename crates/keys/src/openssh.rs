//! The OpenSSH private key container (`openssh-key-v1`, OpenSSH's
//! PROTOCOL.key), which is what EC2 returns for created ED25519 keys: PEM
//! has no standard ED25519 form that older OpenSSH clients read, and this is
//! the format `ssh-keygen -t ed25519` itself writes.

use crate::armor::pem_encode;
use crate::pubkey::SSH_ED25519;
use crate::wire::Writer;

const MAGIC: &[u8] = b"openssh-key-v1\0";
/// Unencrypted sections are padded to the "none" cipher's block size.
const BLOCK_SIZE: usize = 8;
/// ssh-keygen wraps this armour at 70 columns.
const LINE_WIDTH: usize = 70;

/// Encodes an unencrypted ED25519 private key as ssh-keygen would.
///
/// `checkint` is the random value OpenSSH uses to detect a wrong passphrase;
/// it must appear twice and is otherwise meaningless for unencrypted keys.
pub(crate) fn encode_ed25519(
    seed: &[u8; 32],
    public: &[u8; 32],
    comment: &str,
    checkint: u32,
) -> String {
    let mut public_blob = Writer::new();
    public_blob.string(SSH_ED25519.as_bytes()).string(public);
    let public_blob = public_blob.into_bytes();

    // OpenSSH's ED25519 "private key" is the 64-byte seed || public form.
    let mut secret = Vec::with_capacity(64);
    secret.extend_from_slice(seed);
    secret.extend_from_slice(public);

    let mut private = Writer::new();
    private
        .u32(checkint)
        .u32(checkint)
        .string(SSH_ED25519.as_bytes())
        .string(public)
        .string(&secret)
        .string(comment.as_bytes());
    // Deterministic padding 1, 2, 3, ... lets readers detect corruption.
    let mut pad = 1u8;
    while !private.len().is_multiple_of(BLOCK_SIZE) {
        private.raw(&[pad]);
        pad += 1;
    }
    let private = private.into_bytes();

    let mut container = Writer::new();
    container
        .raw(MAGIC)
        .string(b"none") // cipher
        .string(b"none") // kdf
        .string(b"") // kdf options
        .u32(1) // number of keys
        .string(&public_blob)
        .string(&private);
    pem_encode("OPENSSH PRIVATE KEY", &container.into_bytes(), LINE_WIDTH)
}
