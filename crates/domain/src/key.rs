//! API keys and signing keys: formats, roles and hashing. Randomness comes from the caller.
//!
//! An API key is `shiplog_` followed by 64 lower-case hex digits (32 random bytes). It is shown
//! once; shiplog keeps only its SHA-256 ([`KeyHash`]). A plain hash is the right tool here: the
//! key is 256 bits of randomness, so there is nothing for a slow password hash to protect.
//! `Debug` of a secret never prints it.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::hex;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Everything in its workspace: keys, projects, teams, hooks, reading and ingesting.
    Admin,
    /// Sends pipeline events; cannot read or administer.
    Ingest,
    /// Reads deployments, environments, references and metrics; cannot write.
    Read,
}

/// A role name that is not one of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {given:?}: use one of admin, ingest, read")]
pub struct InvalidRole {
    /// What was sent.
    pub given: String,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 3] = [Self::Admin, Self::Ingest, Self::Read];

    /// The role as written in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Ingest => "ingest",
            Self::Read => "read",
        }
    }

    /// Reads a role name (any case).
    pub fn parse(value: &str) -> Result<Self, InvalidRole> {
        let wanted = value.trim();
        Self::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| InvalidRole {
                given: value.to_owned(),
            })
    }

    /// May send pipeline events.
    pub const fn can_ingest(self) -> bool {
        matches!(self, Self::Admin | Self::Ingest)
    }

    /// May read deployments and metrics.
    pub const fn can_read(self) -> bool {
        matches!(self, Self::Admin | Self::Read)
    }

    /// May manage keys, projects, teams, environments and hooks.
    pub const fn can_administer(self) -> bool {
        matches!(self, Self::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A freshly generated API key: the only time its secret exists in shiplog's memory.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The prefix every shiplog API key starts with (secret scanners can look for it).
    pub const PREFIX: &'static str = "shiplog_";

    /// Builds a key from 32 random bytes supplied by the caller.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(format!("{}{}", Self::PREFIX, hex(&bytes)))
    }

    /// The secret, to show once.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Its hash, the only thing stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }

    /// The first characters, safe to show in listings (`shiplog_1a2b3c`).
    pub fn hint(&self) -> String {
        self.0.chars().take(Self::PREFIX.len() + 6).collect()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.hint())
    }
}

/// SHA-256 of a presented secret, in hex. Looking a key up by its hash reveals nothing about
/// the keys that do not match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyHash(String);

impl KeyHash {
    /// Hashes whatever a client presented (any string; an unknown key simply matches nothing).
    pub fn of(secret: &str) -> Self {
        Self(hex(&Sha256::digest(secret.trim().as_bytes())))
    }

    /// Rebuilds a stored hash.
    pub fn from_hex(value: &str) -> Option<Self> {
        (value.len() == 64
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Self(value.to_owned()))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The secret of a dashboard session: 32 random bytes in hex. Only the browser holding the
/// session has it (in a cookie); the store keeps its [`KeyHash`], so a copy of the database opens
/// no session.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(String);

impl SessionSecret {
    /// A new secret from 32 random bytes supplied by the caller.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(hex(&bytes))
    }

    /// What a browser presented (any string: an unknown one simply matches no session).
    pub fn presented(value: &str) -> Self {
        Self(value.trim().to_owned())
    }

    /// The secret, to set in the session cookie.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Its hash, the only thing stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }

    /// The token a form that changes something must carry (CSRF): derived from the secret, so
    /// only the holder of the session can produce it, and there is nothing more to store.
    pub fn csrf_token(&self) -> String {
        let mut digest = Sha256::new();
        digest.update(b"shiplog-csrf\n");
        digest.update(self.0.as_bytes());
        hex(&digest.finalize())
    }

    /// Whether `presented` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let expected = self.csrf_token();
        expected.len() == presented.len()
            && expected
                .bytes()
                .zip(presented.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(…)")
    }
}

/// The public half of a signing key, sent in `X-Webhook-Key`: `whk_` and 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigningKeyId(String);

/// A value that is not a signing key id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid signing key id {given:?}: send the key id shiplog gave you (whk_ and 16 hex digits)"
)]
pub struct InvalidSigningKeyId {
    /// What was sent (cut to 40 characters).
    pub given: String,
}

impl SigningKeyId {
    /// Builds an id from 8 random bytes.
    pub fn from_random(bytes: [u8; 8]) -> Self {
        Self(format!("whk_{}", hex(&bytes)))
    }

    /// Validates a presented id.
    pub fn parse(value: &str) -> Result<Self, InvalidSigningKeyId> {
        let id = value.trim();
        let ok = id
            .strip_prefix("whk_")
            .is_some_and(|rest| rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(Self(id.to_ascii_lowercase()))
        } else {
            Err(InvalidSigningKeyId {
                given: value.chars().take(40).collect(),
            })
        }
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SigningKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SigningKeyId {
    type Error = InvalidSigningKeyId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SigningKeyId> for String {
    fn from(value: SigningKeyId) -> Self {
        value.0
    }
}

/// The secret half of a signing key. HMAC verification needs the secret itself, so unlike API
/// keys it is stored; it is never logged and never returned after creation.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// Builds a secret from 32 random bytes: `whsec_` and 64 hex digits.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(format!("whsec_{}", hex(&bytes)))
    }

    /// Wraps a stored secret.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The secret, for the HMAC and for showing once.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this secret sent as a plain token (GitLab's `X-Gitlab-Token`).
    /// Compares the SHA-256 digests in constant time, so neither the secret's length nor how
    /// much of it matched shows in the time taken.
    pub fn matches(&self, presented: &str) -> bool {
        let expected = Sha256::digest(self.0.as_bytes());
        let given = Sha256::digest(presented.as_bytes());
        expected
            .iter()
            .zip(given.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_they_say() {
        assert!(Role::Admin.can_ingest() && Role::Admin.can_read() && Role::Admin.can_administer());
        assert!(
            Role::Ingest.can_ingest() && !Role::Ingest.can_read() && !Role::Ingest.can_administer()
        );
        assert!(!Role::Read.can_ingest() && Role::Read.can_read() && !Role::Read.can_administer());
        assert_eq!(Role::parse("INGEST"), Ok(Role::Ingest));
        assert!(
            Role::parse("owner")
                .unwrap_err()
                .to_string()
                .contains("admin, ingest, read")
        );
    }

    #[test]
    fn api_keys_are_prefixed_hashed_and_never_debug_printed() {
        let key = ApiKey::from_random([0xab; 32]);
        assert_eq!(key.reveal().len(), ApiKey::PREFIX.len() + 64);
        assert!(key.reveal().starts_with("shiplog_abab"));
        assert_eq!(key.hash(), KeyHash::of(key.reveal()));
        assert_eq!(key.hash(), KeyHash::of(&format!(" {} ", key.reveal())));
        assert_ne!(key.hash(), KeyHash::of("shiplog_other"));
        let debug = format!("{key:?}");
        assert!(!debug.contains(&key.reveal()[20..]), "{debug}");
        assert_eq!(key.hint(), "shiplog_ababab");
    }

    #[test]
    fn session_secrets_are_hashed_and_give_a_csrf_token_only_to_their_holder() {
        let secret = SessionSecret::from_random([9; 32]);
        assert_eq!(secret.reveal().len(), 64);
        assert_eq!(secret.hash(), KeyHash::of(secret.reveal()));
        assert_eq!(format!("{secret:?}"), "SessionSecret(…)");
        let token = secret.csrf_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, secret.reveal());
        assert_ne!(
            token,
            secret.hash().as_str(),
            "the token is not the stored hash"
        );
        assert!(secret.csrf_matches(&token));
        assert!(SessionSecret::presented(secret.reveal()).csrf_matches(&token));
        assert!(!SessionSecret::from_random([8; 32]).csrf_matches(&token));
        assert!(!secret.csrf_matches(""));
        assert!(!secret.csrf_matches(&token[..63]));
    }

    #[test]
    fn key_hash_known_answer() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            KeyHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let hash = KeyHash::of("abc");
        assert_eq!(KeyHash::from_hex(hash.as_str()), Some(hash));
        assert_eq!(KeyHash::from_hex("ABC"), None);
    }

    #[test]
    fn signing_keys() {
        let id = SigningKeyId::from_random([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(id.as_str(), "whk_0102030405060708");
        assert_eq!(
            SigningKeyId::parse(" WHK_0102030405060708 ")
                .unwrap_err()
                .given
                .len(),
            22
        );
        assert_eq!(SigningKeyId::parse("whk_0102030405060708").unwrap(), id);
        assert!(SigningKeyId::parse("whk_01").is_err());
        let secret = SigningSecret::from_random([7; 32]);
        assert!(secret.reveal().starts_with("whsec_0707"));
        assert_eq!(format!("{secret:?}"), "SigningSecret(***)");
    }
}

#[cfg(test)]
mod token_tests {
    use super::SigningSecret;

    #[test]
    fn a_plain_token_matches_only_the_whole_secret() {
        let secret = SigningSecret::from_stored("whsec_abc".into());
        assert!(secret.matches("whsec_abc"));
        assert!(!secret.matches("whsec_ab"));
        assert!(!secret.matches("whsec_abcd"));
        assert!(!secret.matches(""));
    }
}
