//! Signed visitor tokens: `v2.<site id>.<visitor id>.<issued at>.<signature>`.
//!
//! The signature is HMAC-SHA256 over the text before it, truncated to 128 bits and base64url
//! encoded. Its key is derived (HKDF-SHA256) from a server secret kept in the database, so every
//! node and every restart agrees, and the raw secret signs nothing itself. A token only says
//! "this browser is visitor V of site S since T"; it grants nothing else. It is good for
//! [`MAX_AGE_SECS`] after it was issued and every `welcome` issues a fresh one, so a visitor who
//! comes back within that time stays the same visitor; an older token is refused as expired and
//! the browser starts again as a new visitor. Deleting the secret (`visitor_token_key`) rotates
//! the key: every visitor starts again.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use protocol::{SiteId, VisitorId};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a token.
const MAC_BYTES: usize = 16;

/// How long a token is good for after it was issued: 90 days.
pub const MAX_AGE_SECS: i64 = 90 * 24 * 60 * 60;

/// A token issued this far in the future (a node whose clock is ahead) is still accepted.
const CLOCK_SKEW_SECS: i64 = 5 * 60;

/// What the HKDF expansion is for: a new purpose gets a new key from the same secret.
const PURPOSE: &[u8] = b"kefu visitor token v2";

/// Issues and checks visitor tokens with one key.
#[derive(Clone)]
pub struct TokenKey {
    /// The HMAC key derived from the secret; never leaves the server.
    key: [u8; 32],
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

impl TokenKey {
    /// A key derived from the stored secret.
    pub fn new(secret: &str) -> TokenKey {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, secret.as_bytes())
            .expand(PURPOSE, &mut key)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
        TokenKey { key }
    }

    fn mac(&self, text: &str) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(text.as_bytes());
        mac
    }

    /// The token for a visitor of a site, issued at `now_secs` (Unix seconds).
    pub fn issue(&self, site_id: SiteId, visitor_id: VisitorId, now_secs: i64) -> String {
        let text = format!("v2.{site_id}.{visitor_id}.{now_secs}");
        let tag = self.mac(&text).finalize().into_bytes();
        format!("{text}.{}", URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES]))
    }

    /// The visitor id in a token, if the token is genuine, for this site and not older than
    /// [`MAX_AGE_SECS`] at `now_secs`.
    pub fn verify(&self, token: &str, site_id: SiteId, now_secs: i64) -> Option<VisitorId> {
        let (text, signature) = token.rsplit_once('.')?;
        let mut parts = text.split('.');
        let (Some("v2"), Some(site), Some(visitor), Some(issued), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if signature.len() != MAC_BYTES {
            return None;
        }
        // verify_truncated_left compares in constant time.
        self.mac(text).verify_truncated_left(&signature).ok()?;
        let site: SiteId = site.parse().ok()?;
        let visitor: VisitorId = visitor.parse().ok()?;
        let issued: i64 = issued.parse().ok()?;
        let age = now_secs.checked_sub(issued)?;
        let fresh = (-CLOCK_SKEW_SECS..=MAX_AGE_SECS).contains(&age);
        (site == site_id && fresh).then_some(visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn issued_tokens_verify_for_their_site_only() {
        let key = TokenKey::new("secret");
        let token = key.issue(SiteId(3), VisitorId(42), NOW);
        assert_eq!(key.verify(&token, SiteId(3), NOW), Some(VisitorId(42)));
        assert_eq!(key.verify(&token, SiteId(4), NOW), None, "another site");
        assert_eq!(
            TokenKey::new("other").verify(&token, SiteId(3), NOW),
            None,
            "another key"
        );
    }

    #[test]
    fn tokens_expire_after_their_maximum_age() {
        let key = TokenKey::new("secret");
        let token = key.issue(SiteId(3), VisitorId(42), NOW);
        assert_eq!(
            key.verify(&token, SiteId(3), NOW + MAX_AGE_SECS),
            Some(VisitorId(42))
        );
        assert_eq!(
            key.verify(&token, SiteId(3), NOW + MAX_AGE_SECS + 1),
            None,
            "expired"
        );
        assert_eq!(
            key.verify(&token, SiteId(3), NOW - 60),
            Some(VisitorId(42)),
            "a clock a minute behind"
        );
        assert_eq!(
            key.verify(&token, SiteId(3), NOW - 3600),
            None,
            "issued in the future"
        );
    }

    #[test]
    fn the_raw_secret_is_not_the_key() {
        // A token signed with the stored secret itself (as version 1 did) does not verify.
        let text = format!("v2.3.42.{NOW}");
        let mut mac = HmacSha256::new_from_slice(b"secret").expect("key");
        mac.update(text.as_bytes());
        let tag = mac.finalize().into_bytes();
        let token = format!("{text}.{}", URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES]));
        assert_eq!(TokenKey::new("secret").verify(&token, SiteId(3), NOW), None);
    }

    #[test]
    fn tampered_tokens_fail() {
        let key = TokenKey::new("secret");
        let token = key.issue(SiteId(3), VisitorId(42), NOW);
        let forged = token.replacen(".42.", ".43.", 1);
        assert_eq!(key.verify(&forged, SiteId(3), NOW), None);
        let younger = token.replacen(&format!(".{NOW}."), &format!(".{}.", NOW + 9), 1);
        assert_eq!(
            key.verify(&younger, SiteId(3), NOW),
            None,
            "a changed issue time"
        );
        assert_eq!(key.verify("v2.3.42", SiteId(3), NOW), None);
        assert_eq!(key.verify("", SiteId(3), NOW), None);
        assert_eq!(key.verify("v2.3.42.1.!!!", SiteId(3), NOW), None);
        assert_eq!(key.verify(&format!("{token}x"), SiteId(3), NOW), None);
    }
}
