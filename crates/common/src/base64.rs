//! Base64 as EC2 uses it (user data, console output, key fingerprints): standard
//! alphabet, padding optional on input, whitespace ignored.

use base64::Engine as _;

/// Lenient base64 decoding as EC2 accepts it: standard alphabet, padding optional,
/// whitespace (line breaks from `base64` tools) ignored.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let cleaned: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    ::base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| ::base64::engine::general_purpose::STANDARD_NO_PAD.decode(&cleaned))
        .ok()
}

/// Standard base64 encoding, as EC2 uses for user data and console output.
pub fn encode_base64(data: &[u8]) -> String {
    ::base64::engine::general_purpose::STANDARD.encode(data)
}
