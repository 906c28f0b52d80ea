//! Signed visitor tokens: `v1.<site id>.<visitor id>.<signature>`.
//!
//! The signature is HMAC-SHA256 over the text before it, keyed by a server secret kept in the
//! database (so every node and every restart agrees), truncated to 128 bits and base64url
//! encoded. A token only says "this browser is visitor V of site S"; it grants nothing else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a token.
const MAC_BYTES: usize = 16;

/// Issues and checks visitor tokens with one key.
#[derive(Clone)]
pub struct TokenKey {
    /// The secret the HMAC is keyed with; never leaves the server.
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

impl TokenKey {
    /// A key from the stored secret.
    pub fn new(secret: &str) -> TokenKey {
        TokenKey {
            key: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self, text: &str) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(text.as_bytes());
        mac
    }

    /// The token for a visitor of a site.
    pub fn issue(&self, site_id: i64, visitor_id: i64) -> String {
        let text = format!("v1.{site_id}.{visitor_id}");
        let tag = self.mac(&text).finalize().into_bytes();
        format!("{text}.{}", URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES]))
    }

    /// The visitor id in a token, if the token is genuine and for this site.
    pub fn verify(&self, token: &str, site_id: i64) -> Option<i64> {
        let (text, signature) = token.rsplit_once('.')?;
        let mut parts = text.split('.');
        let (Some("v1"), Some(site), Some(visitor), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if signature.len() != MAC_BYTES {
            return None;
        }
        // verify_truncated_left compares in constant time.
        self.mac(text).verify_truncated_left(&signature).ok()?;
        let site: i64 = site.parse().ok()?;
        let visitor: i64 = visitor.parse().ok()?;
        (site == site_id).then_some(visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_for_their_site_only() {
        let key = TokenKey::new("secret");
        let token = key.issue(3, 42);
        assert_eq!(key.verify(&token, 3), Some(42));
        assert_eq!(key.verify(&token, 4), None, "another site");
        assert_eq!(
            TokenKey::new("other").verify(&token, 3),
            None,
            "another key"
        );
    }

    #[test]
    fn tampered_tokens_fail() {
        let key = TokenKey::new("secret");
        let token = key.issue(3, 42);
        let forged = token.replacen(".42.", ".43.", 1);
        assert_eq!(key.verify(&forged, 3), None);
        assert_eq!(key.verify("v1.3.42", 3), None);
        assert_eq!(key.verify("", 3), None);
        assert_eq!(key.verify("v1.3.42.!!!", 3), None);
        assert_eq!(key.verify(&format!("{token}x"), 3), None);
    }
}
