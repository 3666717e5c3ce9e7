//! Who is acting: accounts, passwords and the actor every action carries.

use crate::audit::{ActorKind, ActorRecord};
use app::model::Role;
use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use domain::InvalidValue;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: String,
}

/// The identity an action is taken as. Every entry point builds one and
/// hands it to the application layer, which checks its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    pub name: String,
    pub role: Role,
}

impl Actor {
    /// A signed-in person.
    pub fn user(user: &User) -> Self {
        Self {
            kind: ActorKind::User,
            id: user.id.to_string(),
            name: user.name.clone(),
            role: user.role,
        }
    }

    /// The operator at the server's command line: they own the machine, so
    /// they act with every right, and the trail says it was them.
    pub fn system(what: &str) -> Self {
        Self {
            kind: ActorKind::System,
            id: what.to_owned(),
            name: what.to_owned(),
            role: Role::Admin,
        }
    }

    /// The actor as the audit trail records it.
    pub fn record(&self) -> ActorRecord {
        ActorRecord {
            kind: self.kind,
            id: self.id.clone(),
            name: self.name.clone(),
            role: Some(self.role.as_str().to_owned()),
        }
    }
}

/// The trail's record for a caller nobody could identify.
pub fn anonymous(claimed_name: Option<&str>) -> ActorRecord {
    ActorRecord {
        kind: ActorKind::Anonymous,
        id: String::new(),
        name: claimed_name.unwrap_or("").to_owned(),
        role: None,
    }
}

/// A valid account name: 1 to 64 of letters, digits, `.`, `-`, `_`, `@`.
pub fn check_name(name: &str) -> Result<(), InvalidValue> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(InvalidValue::new(
            "account name",
            name,
            "1-64 of letters, digits, . - _ @",
        ))
    }
}

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Hashes with argon2id (the crate's defaults follow OWASP's minimum:
/// 19 MiB, 2 passes). It takes tens of milliseconds of CPU, so it runs on
/// a blocking thread to keep the async workers free.
pub async fn hash_password(password: String) -> String {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 with default parameters cannot fail on a generated salt")
            .to_string()
    })
    .await
    .expect("the hashing task does not panic")
}

/// Checks a password against a stored hash, on a blocking thread. An
/// unparsable hash never matches.
pub async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of a password nobody has, verified against when the account does
/// not exist so that a wrong name takes as long as a wrong password.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2x5mYV2b5E7b1N4C8r4kN2Q1xk7oTq0cR8m3vQyLZ1A";

/// A random string of `len` characters from an unambiguous alphabet.
pub fn random_secret(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .into_iter()
        // 256 % 54 != 0 leaves a tiny bias; at 20+ characters it does not matter.
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A random 128-bit id as hex.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    crate::audit::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery".into()).await;
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(hash.clone(), "correct horse battery".into()).await);
        assert!(!verify_password(hash, "wrong horse battery".into()).await);
    }

    #[tokio::test]
    async fn the_dummy_hash_parses_and_matches_nothing() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password(DUMMY_HASH.into(), "".into()).await);
    }

    #[test]
    fn account_names_are_checked() {
        assert!(check_name("ada.lovelace@example").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("<script>").is_err());
    }

    #[test]
    fn random_secrets_have_the_asked_length_and_differ() {
        let a = random_secret(24);
        assert_eq!(a.len(), 24);
        assert_ne!(a, random_secret(24));
        assert_eq!(random_id().len(), 32);
    }
}
