//! Small helpers the simulators share: random ids and secrets, hex, and the
//! TLS provider HTTP clients need. The sandbox keeps its own copies so it
//! never depends on the product.

use std::fmt::Write as _;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A random 128-bit id as 32 hex digits, from the operating system's
/// generator.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random generator works");
    hex(&bytes)
}

/// A random secret of `len` letters and digits (no look-alikes such as
/// `l`, `1`, `O`, `0`), from the operating system's generator.
pub fn random_secret(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("the operating system's random generator works");
    bytes
        .into_iter()
        // 256 % 54 != 0 leaves a tiny bias; for a simulator's secrets it does not matter.
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Installs rustls' ring provider once. reqwest is built without a default
/// provider (the workspace unifies its features with the product's), so no
/// client can be built before one is installed, even for plain http. A
/// provider installed earlier by someone else is kept.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_are_fresh_and_well_formed() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        let secret = random_secret(24);
        assert_eq!(secret.chars().count(), 24);
        assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(!secret.contains(['l', '1', 'O', '0', 'I', 'i', 'o']));
        assert_ne!(secret, random_secret(24));
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
