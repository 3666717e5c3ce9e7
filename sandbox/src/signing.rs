//! The signatures the simulators put on their webhooks, written from the
//! providers' documents (not shared with the panel, which checks them):
//!
//! - GitHub, "Validating webhook deliveries": `X-Hub-Signature-256` is
//!   `sha256=` and the lowercase hex HMAC-SHA256 of the raw body, keyed
//!   with the webhook secret.
//! - Render follows Standard Webhooks: `webhook-signature` is `v1,` and the
//!   base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, keyed
//!   with the base64-decoded part of the `whsec_…` secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The `X-Hub-Signature-256` value GitHub sends with `body`.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!(
        "sha256={}",
        crate::support::hex(&mac.finalize().into_bytes())
    )
}

/// The `webhook-signature` value of a Standard Webhooks delivery, or `None`
/// when `secret` is not `whsec_` followed by base64 (the prefix is
/// optional, as the specification's libraries accept).
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published test vector ("Validating webhook deliveries").
    #[test]
    fn githubs_test_vector_is_reproduced() {
        let secret = b"It's a Secret to Everybody";
        assert_eq!(
            github_signature(secret, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert_ne!(
            github_signature(b"a wrong secret", b"Hello, World!"),
            github_signature(secret, b"Hello, World!")
        );
    }

    /// The Standard Webhooks specification's own example.
    #[test]
    fn the_standard_webhooks_example_is_reproduced() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(
            standard_signature("whsec_not base64!", "msg_1", 1614265330, body),
            None
        );
    }
}
