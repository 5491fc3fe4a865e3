//! PuTTY private key files, version 3 (PuTTY 0.75+; PuTTY manual appendix C).
//!
//! ```text
//! PuTTY-User-Key-File-3: <algorithm>
//! Encryption: none
//! Comment: <comment>
//! Public-Lines: <n>
//! <base64 of the SSH public blob, 64 columns>
//! Private-Lines: <m>
//! <base64 of the private blob, 64 columns>
//! Private-MAC: <lowercase hex HMAC-SHA-256>
//! ```
//!
//! For an unencrypted v3 file there are no `Key-Derivation` lines, the
//! private blob is not padded, and the MAC key is the empty string. The MAC
//! covers the algorithm, encryption name, comment, public blob and private
//! blob, each as an SSH `string`, so a tampered comment is detected too.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::armor::b64_lines;
use crate::wire::Writer;

const LINE_WIDTH: usize = 64;
const ENCRYPTION: &str = "none";

/// The `Private-MAC` value of an unencrypted v3 file.
pub(crate) fn mac_v3_unencrypted(
    algorithm: &str,
    comment: &str,
    public_blob: &[u8],
    private_blob: &[u8],
) -> String {
    let mut data = Writer::new();
    data.string(algorithm.as_bytes())
        .string(ENCRYPTION.as_bytes())
        .string(comment.as_bytes())
        .string(public_blob)
        .string(private_blob);
    let mut mac = Hmac::<Sha256>::new_from_slice(b"").expect("HMAC accepts any key length");
    mac.update(&data.into_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Renders an unencrypted PPK v3 file.
///
/// The comment is a single header line, so line breaks in it are replaced
/// with spaces; PuTTY would otherwise read the remainder as a new header.
pub(crate) fn encode_v3(
    algorithm: &str,
    comment: &str,
    public_blob: &[u8],
    private_blob: &[u8],
) -> String {
    let comment: String = comment
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    let public = b64_lines(public_blob, LINE_WIDTH);
    let private = b64_lines(private_blob, LINE_WIDTH);
    let mac = mac_v3_unencrypted(algorithm, &comment, public_blob, private_blob);
    format!(
        "PuTTY-User-Key-File-3: {algorithm}\n\
         Encryption: {ENCRYPTION}\n\
         Comment: {comment}\n\
         Public-Lines: {}\n\
         {public}\
         Private-Lines: {}\n\
         {private}\
         Private-MAC: {mac}\n",
        public.lines().count(),
        private.lines().count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::armor::b64_decode_lenient;

    /// Made with `puttygen -t ed25519 -C kat-ppk -o kat.ppk --new-passphrase /dev/null`
    /// (PuTTY 0.78), so its MAC is PuTTY's own.
    const PUTTYGEN_ED25519: &str = include_str!("../tests/data/puttygen-ed25519.ppk");
    /// Same, with `-t rsa -b 1024 -C kat-rsa`.
    const PUTTYGEN_RSA: &str = include_str!("../tests/data/puttygen-rsa1024.ppk");

    /// Splits a PPK file into (algorithm, comment, public blob, private blob, MAC).
    fn fields(ppk: &str) -> (String, String, Vec<u8>, Vec<u8>, String) {
        let mut lines = ppk.lines();
        let mut header = |name: &str| {
            let line = lines.next().unwrap();
            line.strip_prefix(name)
                .and_then(|l| l.strip_prefix(": "))
                .unwrap_or_else(|| panic!("expected {name}, got {line}"))
                .to_string()
        };
        let alg = header("PuTTY-User-Key-File-3");
        assert_eq!(header("Encryption"), "none");
        let comment = header("Comment");
        let n: usize = header("Public-Lines").parse().unwrap();
        let public: String = (0..n).map(|_| lines.next().unwrap()).collect();
        let mut header = |name: &str| {
            let line = lines.next().unwrap();
            line.strip_prefix(name)
                .and_then(|l| l.strip_prefix(": "))
                .unwrap()
                .to_string()
        };
        let m: usize = header("Private-Lines").parse().unwrap();
        let private: String = (0..m).map(|_| lines.next().unwrap()).collect();
        let mac = lines
            .next()
            .unwrap()
            .strip_prefix("Private-MAC: ")
            .unwrap()
            .to_string();
        (
            alg,
            comment,
            b64_decode_lenient(&public).unwrap(),
            b64_decode_lenient(&private).unwrap(),
            mac,
        )
    }

    #[test]
    fn mac_matches_puttygen_output() {
        for file in [PUTTYGEN_ED25519, PUTTYGEN_RSA] {
            let (alg, comment, public, private, mac) = fields(file);
            assert_eq!(mac_v3_unencrypted(&alg, &comment, &public, &private), mac);
        }
    }

    #[test]
    fn encoder_reproduces_puttygen_files_byte_for_byte() {
        for file in [PUTTYGEN_ED25519, PUTTYGEN_RSA] {
            let (alg, comment, public, private, _) = fields(file);
            assert_eq!(encode_v3(&alg, &comment, &public, &private), file);
        }
    }

    #[test]
    fn comment_newlines_are_flattened() {
        let ppk = encode_v3("ssh-ed25519", "a\nb", b"pub", b"priv");
        assert!(ppk.contains("Comment: a b\n"));
        let (_, comment, ..) = fields(&ppk);
        assert_eq!(comment, "a b");
    }
}
