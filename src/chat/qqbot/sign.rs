//! The webhook's ed25519 signatures. The key pair comes from the bot's
//! secret: the secret repeated until it is at least 32 bytes, its first 32
//! bytes taken as the ed25519 seed (bot-docs `dev-prepare/interface-framework/
//! sign.md`; nonebot/adapter-qq `adapter.py` `_get_ed25519_key`).
//!
//! - Every callback carries `X-Signature-Ed25519` (hex, 64 bytes) and
//!   `X-Signature-Timestamp`; the signed message is timestamp + body.
//! - The op 13 address validation asks us to sign `event_ts + plain_token`
//!   and answer `{"plain_token", "signature"}` (hex).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};

/// The bot's key pair, from its secret.
pub fn key(secret: &str) -> Option<SigningKey> {
    if secret.is_empty() {
        return None;
    }
    let mut seed = secret.as_bytes().to_vec();
    while seed.len() < 32 {
        seed.extend_from_slice(secret.as_bytes());
    }
    let bytes: [u8; 32] = seed[..32].try_into().ok()?;
    Some(SigningKey::from_bytes(&bytes))
}

/// Hex signature of `parts` joined, as the platform (and our fake) signs.
pub fn sign(key: &SigningKey, parts: &[&[u8]]) -> String {
    let msg: Vec<u8> = parts.concat();
    hex::encode(key.sign(&msg).to_bytes())
}

/// Does `signature_hex` sign `timestamp + body` with `key`'s public half?
/// Signatures with the top three bits of the last byte set are refused, as
/// the docs' reference check does.
pub fn verify(key: &SigningKey, timestamp: &str, body: &[u8], signature_hex: &str) -> bool {
    let Ok(sig) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let Ok(bytes) = <[u8; 64]>::try_from(sig.as_slice()) else {
        return false;
    };
    if bytes[63] & 0xE0 != 0 {
        return false;
    }
    let sig = Signature::from_bytes(&bytes);
    let msg = [timestamp.as_bytes(), body].concat();
    key.verifying_key().verify(&msg, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The op 13 example of bot-docs `event-emit.md`.
    #[test]
    fn validation_example_from_the_docs() {
        let k = key("DG5g3B4j9X2KOErG").unwrap();
        assert_eq!(
            sign(&k, &[b"1725442341", b"Arq0D5A61EgUu4OxUvOp"]),
            "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d0\
             1bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"
        );
    }

    /// The callback example of bot-docs `sign.md`: the key pair from its
    /// secret is the one shown there. (Its demo signature does not verify
    /// against the body as printed, in any spacing tried, so the check is a
    /// round trip.)
    #[test]
    fn callback_signatures() {
        let k = key("naOC0ocQE3shWLAfffVLB1rhYPG7").unwrap();
        assert_eq!(
            k.verifying_key().to_bytes(),
            [
                215, 195, 98, 254, 120, 174, 248, 31, 242, 50, 135, 180, 147, 98, 139, 93, 176, 42,
                60, 79, 227, 11, 33, 94, 77, 25, 96, 155, 93, 118, 103, 58
            ]
        );
        let body = br#"{ "op": 0,"d": {}, "t": "GATEWAY_EVENT_NAME"}"#;
        let sig = sign(&k, &[b"1725442341", body]);
        assert!(verify(&k, "1725442341", body, &sig));
        assert!(!verify(&k, "1725442342", body, &sig));
        assert!(!verify(&k, "1725442341", b"{}", &sig));
        assert!(!verify(&k, "1725442341", body, "zz"));
        assert!(!verify(&k, "1725442341", body, &sig[..64]));
        assert!(!verify(
            &key("another-secret").unwrap(),
            "1725442341",
            body,
            &sig
        ));
        assert!(key("").is_none());
    }
}
