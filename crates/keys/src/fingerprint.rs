//! The three fingerprint flavours EC2 shows in `KeyFingerprint`.
//!
//! EC2 does not use one algorithm for every key: which digest it shows
//! depends on who generated the key and on the key type (AWS docs, "Verify
//! the fingerprint of your key pair"):
//!
//! | key                | digest                                             | rendering                  |
//! |--------------------|----------------------------------------------------|----------------------------|
//! | RSA created by EC2 | SHA-1 of the PKCS#8 `PrivateKeyInfo` DER           | colon-separated hex (20 B) |
//! | RSA imported       | MD5 of the `SubjectPublicKeyInfo` DER              | colon-separated hex (16 B) |
//! | ED25519 (either)   | SHA-256 of the OpenSSH public key blob             | base64 with `=` padding    |
//!
//! The RSA digests are over DER, not over the SSH blob, so they differ from
//! what `ssh-keygen -l -E md5` prints; that is EC2's behaviour, not a bug.

use md5::Md5;
use pkcs8::der::Encode;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::armor::b64;
use crate::KeyError;

/// Lowercase hex pairs joined by `:`, as `openssl md5 -c` / `openssl sha1 -c`
/// print them.
pub(crate) fn colon_hex(digest: &[u8]) -> String {
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&hex::encode([*b]));
    }
    out
}

/// Fingerprint of an ED25519 key: base64 SHA-256 of the SSH blob. Unlike
/// `ssh-keygen`, EC2 keeps the trailing `=`.
pub(crate) fn sha256_blob(ssh_blob: &[u8]) -> String {
    b64(&Sha256::digest(ssh_blob))
}

/// Fingerprint of an imported RSA key: MD5 of its `SubjectPublicKeyInfo` DER.
pub(crate) fn md5_spki(spki_der: &[u8]) -> String {
    colon_hex(&Md5::digest(spki_der))
}

/// Fingerprint of an EC2-created RSA key, from the PKCS#1 `RSAPrivateKey`
/// DER that is handed to the user.
///
/// Wrapping happens here rather than via `rsa`'s own PKCS#8 encoder so the
/// digest is provably over the very key bytes the user receives, exactly as
/// `openssl pkcs8 -topk8 -nocrypt -outform DER` would re-wrap them.
pub(crate) fn sha1_created_rsa(pkcs1_der: &[u8]) -> Result<String, KeyError> {
    let pkcs8_der = pkcs8::PrivateKeyInfo::new(rsa::pkcs1::ALGORITHM_ID, pkcs1_der)
        .to_der()
        .map_err(|e| KeyError::Internal(format!("encoding PKCS#8: {e}")))?;
    Ok(colon_hex(&Sha1::digest(&pkcs8_der)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::armor::pem_decode;

    /// A fixed key made with `openssl genrsa -traditional 2048`.
    const FIXED_RSA_PKCS1_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAvSe1lkIfZt4dwTnsY/+juuzM+tV8dAlGSnAEtKiPqf8hDuyr
M4I7oJgBPkAcCacEMdXaUjH4SJBytEmb/51gJhf31vxWiA+l/I+sA0f/l2+FA7u+
zuaOBUzOJJyuTpTB9EWz2V/14AUaR3HIMv1+btqGIOt93SpdcOwVOkB8TX7GOn66
u+IEdF2ipxRJeKTmkJHP2IYDypXYxtlIRCcC1FW67p3lLgKIi1zWhEZXC2um1twa
hWcbeMj4T+XNKO3GoYPwTFML0wat3qIr8e01Srfu8+P9QS13CqnKsiHVcdt/wKw9
BbytNaZ2k7DGExqHwZRwYMm3OhW+PdaFoBvoLQIDAQABAoIBAAnEubd7TbTZxq6a
Z69YXePC4+kWSlmRuwwQEeYkiFrOnq3vIf5EfQDTqMjGtcv30JskQKSbCQfyUcIm
xQQj4/nDphx3pp5bNIbBArCesL/o1fU15mo39OCoMUMpxkSvoP6U9O9GaeO6T7ud
0Cl19ugRp/ieQL9Bt1akEoqSFvlHelXAt9NarFB4hV/q/zgy3x9pGXAMIXMO9Wkg
1B2SyfZlAMLJxWMlNcvxuhUyTy2uTEcVQea3H9oM7szpuiQo7mMIZ0gH8AF6GguX
/lVYnSycp9F6Z8PiVwrpkZ2utZMTV0L8g5t2BmddLcZ3dwpCDOaRNxJhkbRXSByE
2XN/qm8CgYEA+33T1uNFUytraY5YubhdtSi/8N269D35YQaekXr/5c22JqkItiUH
MPMeBeziw1g/hTnw69OYir8yHc4wlsYup6AeSErSTzUg7Ni27PZ8hU2jMBglAjeG
Z1tsIcvEdzjnWCcxeeR0muq2dsNArf+Ds14zWNNx/vZ2jbpS+x22WSMCgYEAwIvM
/0wwQFhZ5dxOji+JPUJv98czyHjgWyceN66Sq1OgXJRbuQHAPBaZM4hrrgXiprVs
TJygROvnzGljSpcB8dBccT+MTofg36RhLDKyy1pRo+ILgkIb7dEoEA1oWqVZybT0
FHtIKEY0LWAr57BEtila/hejRtACPgfFgB7Y1m8CgYAMGmghhVqGwCYxNEqM1ZSc
7VMfcmxW6MyhoMHs2nCKTLYhci0bJvkLoAen3VikchDMhpdToiFLPBxbVtr7xpnk
M06ByCgK69Gj1GIpUUt41t2tqNvPGYD8ZGf10GqqGjD4CxrUdOwvsHALkyX/ubZK
4ZOzCKoJzS6zb24i67Ek5QKBgG7kFPwzdNaaC6xGZTeeSPvu921MXJZoh034CX8o
G3BwiTrIdsrmJ0B0A2eaeemPmilI80ZsLiGDe8xOJdEfhw8tYRAX+UaBGxGyKgS6
bh6PtdUcqmQqjss4WkpkbmVGNZ/lh20EU1pelE5NxPt6mRgQWUdddbuisKfo8eYH
3fohAoGBAKxkbqQ8PtToksafrTQ4xjKmFnef2ZiowssNJPk35BWIwjSiwXWVIfwN
JTJuZ+TUsT3+VcEot+BerwTEYBFlP6wF3lhJvq9hExPepcLvtVLWPCS6PgyJzx20
KXOfGBm08VUzGzQri+SbiAAI12AR02h6YsQKtexV1JK8irKTek77
-----END RSA PRIVATE KEY-----
";

    #[test]
    fn created_rsa_sha1_matches_openssl_pkcs8() {
        // Expected value from:
        //   openssl pkcs8 -in key.pem -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c
        let der = pem_decode(FIXED_RSA_PKCS1_PEM).unwrap();
        assert_eq!(der.label, "RSA PRIVATE KEY");
        assert_eq!(
            sha1_created_rsa(&der.body).unwrap(),
            "8b:f1:91:bd:25:5a:9c:69:ed:30:26:21:7d:85:9d:79:6c:08:f1:e0"
        );
    }

    #[test]
    fn colon_hex_is_lowercase_pairs() {
        assert_eq!(colon_hex(&[0x0a, 0xff, 0x00]), "0a:ff:00");
        assert_eq!(colon_hex(&[]), "");
    }

    #[test]
    fn sha256_keeps_padding() {
        // SHA-256 of "" in base64; 32 bytes always end in a single '='.
        assert_eq!(
            sha256_blob(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
