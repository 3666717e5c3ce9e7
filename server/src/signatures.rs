//! Webhook signatures the panel checks before it believes a delivery:
//! GitHub's `X-Hub-Signature-256` and the Standard Webhooks scheme Render
//! uses (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! Both compare in constant time and refuse anything else: a missing
//! header, a `sha1=` signature, a stale timestamp.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery's signature was refused (safe to log and to return).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the delivery has no signature header")]
    Missing,
    #[error("the signature is not in a supported form ({0})")]
    Unsupported(&'static str),
    #[error("the signature does not match the payload")]
    Mismatch,
    #[error("the delivery's timestamp is outside the accepted window")]
    Stale,
}

/// Checks GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body.
pub fn verify_github(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Unsupported("expected sha256=…"))?;
    let expected = decode_hex(hex).ok_or(SignatureError::Mismatch)?;
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// GitHub's signature header value for `body` (for the simulator and tests).
pub fn sign_github(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", crate::audit::hex(&mac.finalize().into_bytes()))
}

/// The three Standard Webhooks headers of one delivery.
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// How far a delivery's timestamp may be from now (the spec's suggestion).
pub const STANDARD_TOLERANCE_SECS: i64 = 5 * 60;

/// Checks a Standard Webhooks delivery: `secret` is the `whsec_<base64>`
/// string the provider shows; the signature header may hold several
/// space-separated `v1,<base64>` entries, any of which may match.
pub fn verify_standard(
    secret: &str,
    headers: StandardHeaders<'_>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let (Some(id), Some(timestamp), Some(signatures)) =
        (headers.id, headers.timestamp, headers.signature)
    else {
        return Err(SignatureError::Missing);
    };
    let sent: i64 = timestamp.parse().map_err(|_| SignatureError::Stale)?;
    if (now_unix - sent).abs() > STANDARD_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let key = standard_key(secret).ok_or(SignatureError::Unsupported(
        "the secret is not whsec_<base64>",
    ))?;
    let mut any_v1 = false;
    for entry in signatures.split_whitespace() {
        let Some(sig) = entry.strip_prefix("v1,") else {
            continue;
        };
        any_v1 = true;
        let Ok(sig) = BASE64.decode(sig) else {
            continue;
        };
        let mut mac = HmacSha256::new_from_slice(&key).map_err(|_| SignatureError::Mismatch)?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    if any_v1 {
        Err(SignatureError::Mismatch)
    } else {
        Err(SignatureError::Unsupported("expected v1,<base64>"))
    }
}

/// The `webhook-signature` value for a delivery (for the simulator and tests).
pub fn sign_standard(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = standard_key(secret)?;
    let mut mac = HmacSha256::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

fn standard_key(secret: &str) -> Option<Vec<u8>> {
    BASE64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published test vector ("Validating webhook deliveries").
    #[test]
    fn githubs_test_vector_verifies_and_variants_do_not() {
        let secret = b"It's a Secret to Everybody";
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_github(secret, b"Hello, World!", Some(good)), Ok(()));
        assert_eq!(sign_github(secret, b"Hello, World!"), good);
        assert_eq!(
            verify_github(secret, b"Hello, World?", Some(good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(b"another secret", b"Hello, World!", Some(good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(secret, b"Hello, World!", None),
            Err(SignatureError::Missing)
        );
        assert!(matches!(
            verify_github(
                secret,
                b"Hello, World!",
                Some("sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59")
            ),
            Err(SignatureError::Unsupported(_))
        ));
        assert_eq!(
            verify_github(secret, b"Hello, World!", Some("sha256=zz")),
            Err(SignatureError::Mismatch)
        );
    }

    /// The Standard Webhooks specification's own example.
    #[test]
    fn standard_webhooks_example_verifies_and_variants_do_not() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = 1614265330;
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(sign_standard(secret, id, ts, body).as_deref(), Some(sig));
        let ts_text = ts.to_string();
        let headers = |signature| StandardHeaders {
            id: Some(id),
            timestamp: Some(&ts_text),
            signature: Some(signature),
        };
        let with_other = format!("v1,bm90IGl0 {sig}");
        assert_eq!(verify_standard(secret, headers(sig), body, ts + 10), Ok(()));
        assert_eq!(
            verify_standard(secret, headers(&with_other), body, ts),
            Ok(())
        );
        assert_eq!(
            verify_standard(secret, headers(sig), b"{}", ts),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_standard(secret, headers(sig), body, ts + STANDARD_TOLERANCE_SECS + 1),
            Err(SignatureError::Stale)
        );
        assert!(matches!(
            verify_standard(secret, headers("v2,abc"), body, ts),
            Err(SignatureError::Unsupported(_))
        ));
        let missing = StandardHeaders {
            id: Some(id),
            timestamp: None,
            signature: Some(sig),
        };
        assert_eq!(
            verify_standard(secret, missing, body, ts),
            Err(SignatureError::Missing)
        );
    }
}
