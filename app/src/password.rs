//! Password hashing: argon2id with its default parameters, and the dummy hash a sign-in
//! verifies against when the e-mail is unknown, so timing does not tell which accounts exist.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use rand::RngCore;

/// A valid argon2 hash of a random password, verified against when an e-mail is unknown.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AsaeJ7VrzDtJfUY3iQd1+5JqmiY8GdaN4lHCO7U5tAY";

/// Hashes a password with argon2id (default parameters) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn dummy_hash_parses_and_rejects() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("dummy hash is a PHC string");
        assert!(Argon2::default().verify_password(b"", &parsed).is_err());
    }

    #[test]
    fn hash_then_verify() {
        let hash = hash_password("correct horse").expect("hash");
        let parsed = PasswordHash::new(&hash).expect("parse");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
    }
}
