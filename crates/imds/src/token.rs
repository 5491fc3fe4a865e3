//! IMDSv2 session tokens.
//!
//! A token is `base64url(expiry ‖ HMAC-SHA256(key, domain ‖ instance id ‖ expiry))`,
//! where `expiry` is the big-endian epoch millisecond at which it stops working. The
//! service keeps no table of issued tokens: the MAC alone proves that this process
//! issued the token to that instance, and the expiry inside it (covered by the MAC)
//! bounds its life. The instance id is not in the token, so a token says nothing
//! about its owner to whoever sees it; it is checked by recomputing the MAC for the
//! instance that presents it, which also makes another instance's token useless.
//!
//! The key is random per process, so a restart of the service invalidates all
//! tokens; clients (SDKs, cloud-init) fetch a new one on 401.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Separates these MACs from any other use of the key, and versions the format.
const DOMAIN: &[u8] = b"strato-imds-token-v1\0";
const EXPIRY_LEN: usize = 8;
const MAC_LEN: usize = 32;
const TOKEN_BYTES: usize = EXPIRY_LEN + MAC_LEN;
/// Length of the encoded token; anything else is rejected before decoding.
const TOKEN_CHARS: usize = (TOKEN_BYTES * 4).div_ceil(3);

/// Issues and checks tokens with one secret key.
pub(crate) struct TokenKey {
    key: [u8; 32],
}

impl TokenKey {
    pub(crate) fn new(key: [u8; 32]) -> TokenKey {
        TokenKey { key }
    }

    fn mac(&self, instance_id: &str, expiry_ms: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        // The instance id is variable length: a terminator keeps (id, expiry) pairs
        // from colliding. Instance ids never contain NUL.
        mac.update(instance_id.as_bytes());
        mac.update(&[0]);
        mac.update(&expiry_ms.to_be_bytes());
        mac
    }

    /// A token for `instance_id` that works until epoch millisecond `expiry_ms`.
    pub(crate) fn issue(&self, instance_id: &str, expiry_ms: u64) -> String {
        let tag = self.mac(instance_id, expiry_ms).finalize().into_bytes();
        let mut raw = [0u8; TOKEN_BYTES];
        raw[..EXPIRY_LEN].copy_from_slice(&expiry_ms.to_be_bytes());
        raw[EXPIRY_LEN..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The token's expiry (epoch ms) if `token` was issued by this key to
    /// `instance_id` and is still valid at `now_ms`.
    pub(crate) fn check(&self, token: &str, instance_id: &str, now_ms: u64) -> Option<u64> {
        if token.len() != TOKEN_CHARS {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() != TOKEN_BYTES {
            return None;
        }
        let expiry_ms = u64::from_be_bytes(raw[..EXPIRY_LEN].try_into().ok()?);
        // verify_slice compares in constant time.
        self.mac(instance_id, expiry_ms)
            .verify_slice(&raw[EXPIRY_LEN..])
            .ok()?;
        (now_ms < expiry_ms).then_some(expiry_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_token_checks_until_expiry() {
        let k = TokenKey::new([7; 32]);
        let t = k.issue("i-0123456789abcdef0", 10_000);
        assert_eq!(t.len(), TOKEN_CHARS);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(k.check(&t, "i-0123456789abcdef0", 9_999), Some(10_000));
        assert_eq!(k.check(&t, "i-0123456789abcdef0", 10_000), None);
    }

    #[test]
    fn token_is_bound_to_instance_and_key() {
        let k = TokenKey::new([7; 32]);
        let t = k.issue("i-aaaaaaaaaaaaaaaaa", 10_000);
        assert_eq!(k.check(&t, "i-bbbbbbbbbbbbbbbbb", 0), None);
        assert_eq!(
            TokenKey::new([8; 32]).check(&t, "i-aaaaaaaaaaaaaaaaa", 0),
            None
        );
    }

    #[test]
    fn tampered_tokens_fail() {
        let k = TokenKey::new([7; 32]);
        let t = k.issue("i-a", 10_000);
        // Push the expiry later without the key: the MAC no longer matches.
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(k.check(&URL_SAFE_NO_PAD.encode(&raw), "i-a", 0), None);
        for bad in ["", "x", &t[1..], &format!("{t}A"), &"!".repeat(TOKEN_CHARS)] {
            assert_eq!(k.check(bad, "i-a", 0), None, "{bad:?}");
        }
    }
}
