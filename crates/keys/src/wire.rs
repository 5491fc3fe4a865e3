//! SSH wire encoding (RFC 4251 §5).
//!
//! OpenSSH public key blobs, the OpenSSH private key container, RFC 4716
//! bodies and PuTTY's public/private blobs and MAC input are all built from
//! the same three primitives: `uint32`, length-prefixed `string` and `mpint`.

use crate::KeyError;

/// Appends SSH wire primitives to a byte buffer.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn string(&mut self, bytes: &[u8]) -> &mut Self {
        // Every field we write is a key component or a short name, far below 4 GiB.
        let len = u32::try_from(bytes.len()).expect("SSH string longer than u32::MAX");
        self.u32(len);
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Writes a non-negative integer given as unsigned big-endian magnitude.
    ///
    /// RFC 4251 mpints are two's complement, so a magnitude whose top bit is
    /// set needs a leading zero byte, and leading zeros are otherwise not
    /// allowed; zero is the empty string.
    pub(crate) fn mpint(&mut self, magnitude: &[u8]) -> &mut Self {
        let trimmed = strip_leading_zeros(magnitude);
        if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
            let mut padded = Vec::with_capacity(trimmed.len() + 1);
            padded.push(0);
            padded.extend_from_slice(trimmed);
            self.string(&padded)
        } else {
            self.string(trimmed)
        }
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Returns `bytes` without its leading zero bytes.
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first_nonzero = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first_nonzero..]
}

/// Reads SSH wire primitives from untrusted input; every failure is an
/// [`KeyError::InvalidFormat`] because the input is user-supplied key material.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, KeyError> {
        if self.rest.len() < 4 {
            return Err(truncated());
        }
        let (head, tail) = self.rest.split_at(4);
        self.rest = tail;
        Ok(u32::from_be_bytes([head[0], head[1], head[2], head[3]]))
    }

    pub(crate) fn string(&mut self) -> Result<&'a [u8], KeyError> {
        let len = self.u32()? as usize;
        if self.rest.len() < len {
            return Err(truncated());
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    /// Reads an mpint that must be non-negative, returning its magnitude
    /// without leading zeros.
    pub(crate) fn positive_mpint(&mut self) -> Result<&'a [u8], KeyError> {
        let raw = self.string()?;
        if raw.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(KeyError::InvalidFormat(
                "key contains a negative integer".to_string(),
            ));
        }
        Ok(strip_leading_zeros(raw))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

fn truncated() -> KeyError {
    KeyError::InvalidFormat("key data is truncated".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_encoding_follows_rfc4251_examples() {
        // The worked examples from RFC 4251 §5.
        let enc = |m: &[u8]| {
            let mut w = Writer::new();
            w.mpint(m);
            w.into_bytes()
        };
        assert_eq!(enc(&[]), [0, 0, 0, 0]);
        assert_eq!(enc(&[0, 0]), [0, 0, 0, 0]);
        assert_eq!(
            enc(&[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]),
            [0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]
        );
        assert_eq!(enc(&[0x80]), [0, 0, 0, 2, 0x00, 0x80]);
    }

    #[test]
    fn reader_rejects_truncation_and_negative_mpints() {
        assert!(Reader::new(&[0, 0, 0, 5, 1]).string().is_err());
        assert!(Reader::new(&[0, 0]).u32().is_err());
        assert!(Reader::new(&[0, 0, 0, 1, 0x80]).positive_mpint().is_err());
        let mut r = Reader::new(&[0, 0, 0, 2, 0x00, 0x80]);
        assert_eq!(r.positive_mpint().unwrap(), [0x80]);
        assert!(r.is_empty());
    }
}
