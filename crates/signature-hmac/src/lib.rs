//! # shiplog-signature
//!
//! HMAC-SHA256 signatures, in the three schemes shiplog speaks:
//!
//! - [`envtracker`]: inbound requests of the Envtracker-compatible endpoints.
//!   `X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`, several
//!   signatures separated by spaces (key rotation), `X-Webhook-Timestamp` within ±300 s.
//!   [`EnvtrackerVerifier`] implements the `SignatureVerifier` port of `shiplog-app`.
//! - [`github`]: GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`.
//! - [`standard_webhooks`]: signing (outgoing deliveries) and verification of Standard Webhooks:
//!   `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`.
//!   [`StandardWebhooksSigner`] implements the `WebhookSigner` port.
//!
//! ## What this crate must never do
//! It never compares a signature in variable time (all comparisons go through
//! `hmac::Mac::verify_slice`), never logs or returns a secret, and never performs I/O.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hmac::{Hmac, Mac};
use sha2::Sha256;
use shiplog_app::ports::{SignatureError, SignatureVerifier, WebhookSigner};
use shiplog_domain::ids::hex;
use shiplog_domain::key::SigningSecret;
use shiplog_domain::timestamp::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// The largest distance between a signed timestamp and the server clock.
pub const MAX_SKEW_SECONDS: i64 = 300;

/// An HMAC over the concatenation of `parts`.
fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // Only MACs with a fixed key size can refuse a key; HMAC takes keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = char::from(*pair.first()?).to_digit(16)?;
            let low = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

/// Reads Unix seconds.
fn unix_seconds(timestamp: &str) -> Result<i64, SignatureError> {
    let trimmed = timestamp.trim();
    if trimmed.is_empty() || trimmed.len() > 12 || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed(
            "the timestamp must be Unix seconds".to_owned(),
        ));
    }
    trimmed
        .parse()
        .map_err(|_| SignatureError::Malformed("the timestamp must be Unix seconds".to_owned()))
}

fn check_skew(signed_at: i64, now: Timestamp, max: i64) -> Result<(), SignatureError> {
    let skew = (now.unix_seconds() - signed_at).abs();
    if skew > max {
        Err(SignatureError::Expired {
            skew_seconds: skew,
            max_seconds: max,
        })
    } else {
        Ok(())
    }
}

/// Verifies `candidates` (each already decoded) against `mac`, in constant time per candidate.
/// `Malformed` when no candidate could be decoded, `Mismatch` when none matches.
fn verify_any(mac: &HmacSha256, candidates: &[Option<Vec<u8>>]) -> Result<(), SignatureError> {
    if candidates.iter().all(Option::is_none) {
        return Err(SignatureError::Malformed(
            "no signature in the expected form".to_owned(),
        ));
    }
    let matched = candidates
        .iter()
        .flatten()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The Envtracker-compatible scheme.
pub mod envtracker {
    use super::*;

    /// The header value for `body` signed at `timestamp` (Unix seconds, as sent).
    pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
        let digest = mac(secret, &[timestamp.trim().as_bytes(), b".", body]).finalize();
        format!("sha256={}", hex(&digest.into_bytes()))
    }

    /// Checks a request: one of the space-separated `sha256=<hex>` signatures must match, and the
    /// timestamp must be within `max_skew` seconds of `now`. The signature is checked first, so
    /// only authentic requests learn about clock skew.
    pub fn verify(
        secret: &[u8],
        timestamp: &str,
        body: &[u8],
        header: &str,
        now: Timestamp,
        max_skew: i64,
    ) -> Result<(), SignatureError> {
        let signed_at = unix_seconds(timestamp)?;
        let candidates: Vec<Option<Vec<u8>>> = header
            .split_whitespace()
            .map(|part| part.strip_prefix("sha256=").and_then(unhex))
            .collect();
        let expected = mac(secret, &[timestamp.trim().as_bytes(), b".", body]);
        verify_any(&expected, &candidates)?;
        check_skew(signed_at, now, max_skew)
    }
}

/// The `SignatureVerifier` port, with the Envtracker scheme. The HMAC key is the signing secret
/// exactly as shiplog showed it (`whsec_…`), as bytes.
#[derive(Debug, Clone, Copy)]
pub struct EnvtrackerVerifier {
    /// The largest accepted clock skew, in seconds.
    pub max_skew_seconds: i64,
}

impl Default for EnvtrackerVerifier {
    fn default() -> Self {
        Self {
            max_skew_seconds: MAX_SKEW_SECONDS,
        }
    }
}

impl SignatureVerifier for EnvtrackerVerifier {
    fn verify(
        &self,
        secret: &SigningSecret,
        timestamp: &str,
        body: &[u8],
        signatures: &str,
        now: Timestamp,
    ) -> Result<(), SignatureError> {
        envtracker::verify(
            secret.reveal().as_bytes(),
            timestamp,
            body,
            signatures,
            now,
            self.max_skew_seconds,
        )
    }

    fn verify_hub_signature(
        &self,
        secret: &SigningSecret,
        body: &[u8],
        header: &str,
    ) -> Result<(), SignatureError> {
        github::verify(secret.reveal().as_bytes(), body, header)
    }

    fn verify_pagerduty_signature(
        &self,
        secret: &SigningSecret,
        body: &[u8],
        header: &str,
    ) -> Result<(), SignatureError> {
        pagerduty::verify(secret.reveal().as_bytes(), body, header)
    }
}

/// PagerDuty's `X-PagerDuty-Signature` (v3 webhooks).
pub mod pagerduty {
    use super::*;

    /// The header value for `body` under one secret.
    pub fn sign(secret: &[u8], body: &[u8]) -> String {
        format!("v1={}", hex(&mac(secret, &[body]).finalize().into_bytes()))
    }

    /// Checks `X-PagerDuty-Signature`: comma-separated `v1=<hex>` signatures (one per secret
    /// while PagerDuty rotates one), any of which may match. Other versions are skipped.
    pub fn verify(secret: &[u8], body: &[u8], header: &str) -> Result<(), SignatureError> {
        let candidates: Vec<Option<Vec<u8>>> = header
            .split(',')
            .map(|part| part.trim().strip_prefix("v1=").and_then(unhex))
            .collect();
        verify_any(&mac(secret, &[body]), &candidates)
    }
}

/// GitHub's `X-Hub-Signature-256`.
pub mod github {
    use super::*;

    /// The header value for `body`.
    pub fn sign(secret: &[u8], body: &[u8]) -> String {
        format!(
            "sha256={}",
            hex(&mac(secret, &[body]).finalize().into_bytes())
        )
    }

    /// Checks `X-Hub-Signature-256` against the raw body.
    pub fn verify(secret: &[u8], body: &[u8], header: &str) -> Result<(), SignatureError> {
        let candidate = header.trim().strip_prefix("sha256=").and_then(unhex);
        verify_any(&mac(secret, &[body]), &[candidate])
    }
}

/// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
pub mod standard_webhooks {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    /// A Standard Webhooks secret: `whsec_` followed by the base64 of the key bytes.
    #[derive(Clone, PartialEq, Eq)]
    pub struct Secret(Vec<u8>);

    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Secret(***)")
        }
    }

    impl Secret {
        /// Reads `whsec_<base64>` (the prefix is optional).
        pub fn parse(text: &str) -> Option<Self> {
            let encoded = text.trim();
            let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
            STANDARD
                .decode(encoded)
                .ok()
                .filter(|key| !key.is_empty())
                .map(Self)
        }

        /// Wraps raw key bytes (from a secure random source).
        pub fn from_bytes(key: &[u8]) -> Self {
            Self(key.to_vec())
        }

        /// The `whsec_<base64>` form, to show once.
        pub fn reveal(&self) -> String {
            format!("whsec_{}", STANDARD.encode(&self.0))
        }
    }

    fn mac_for(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let timestamp = timestamp.to_string();
        mac(
            &secret.0,
            &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
        )
    }

    /// The `webhook-signature` value for one delivery attempt.
    pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
        let digest = mac_for(secret, id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(digest))
    }

    /// Checks a delivery as a receiver would: one of the space-separated `v1,<base64>` signatures
    /// must match, and the timestamp must be within `max_skew` seconds of `now`.
    pub fn verify(
        secret: &Secret,
        id: &str,
        timestamp: &str,
        body: &[u8],
        header: &str,
        now: Timestamp,
        max_skew: i64,
    ) -> Result<(), SignatureError> {
        let signed_at = unix_seconds(timestamp)?;
        let candidates: Vec<Option<Vec<u8>>> = header
            .split_whitespace()
            .map(|part| {
                part.strip_prefix("v1,")
                    .and_then(|encoded| STANDARD.decode(encoded).ok())
            })
            .collect();
        verify_any(&mac_for(secret, id, signed_at, body), &candidates)?;
        check_skew(signed_at, now, max_skew)
    }
}

/// Signs outgoing hook deliveries with Standard Webhooks: implements the `WebhookSigner` port.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardWebhooksSigner;

impl WebhookSigner for StandardWebhooksSigner {
    fn new_secret(&self, bytes: [u8; 32]) -> String {
        standard_webhooks::Secret::from_bytes(&bytes).reveal()
    }

    fn sign(&self, secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
        standard_webhooks::Secret::parse(secret)
            .map(|secret| standard_webhooks::sign(&secret, id, timestamp, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds).unwrap()
    }

    const BODY: &[u8] = br#"{"projectCode":"my-project"}"#;
    /// HMAC-SHA256("whsec_test", "1700000000." + BODY), computed with Python's hmac module.
    const ENVTRACKER_VECTOR: &str =
        "sha256=2fa1840828fdd293ac08a71f73c5b25de6e958764721a5f28f45c3ac27823807";

    #[test]
    fn envtracker_known_answer() {
        assert_eq!(
            envtracker::sign(b"whsec_test", "1700000000", BODY),
            ENVTRACKER_VECTOR
        );
        assert_eq!(
            envtracker::verify(
                b"whsec_test",
                "1700000000",
                BODY,
                ENVTRACKER_VECTOR,
                at(1_700_000_100),
                300
            ),
            Ok(())
        );
    }

    #[test]
    fn envtracker_accepts_any_of_several_signatures_for_rotation() {
        let old = envtracker::sign(b"old-secret", "1700000000", BODY);
        let header = format!("{old} {ENVTRACKER_VECTOR}");
        assert_eq!(
            envtracker::verify(
                b"whsec_test",
                "1700000000",
                BODY,
                &header,
                at(1_700_000_000),
                300
            ),
            Ok(())
        );
    }

    #[test]
    fn envtracker_refusals_say_why() {
        let now = at(1_700_000_000);
        let verify = |ts: &str, body: &[u8], header: &str, now: Timestamp| {
            envtracker::verify(b"whsec_test", ts, body, header, now, 300)
        };
        assert_eq!(
            verify("1700000000", b"{}", ENVTRACKER_VECTOR, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("1700000001", BODY, ENVTRACKER_VECTOR, now),
            Err(SignatureError::Mismatch),
            "the timestamp is signed"
        );
        assert!(matches!(
            verify("yesterday", BODY, ENVTRACKER_VECTOR, now),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify("1700000000", BODY, "md5=abc zz", now),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify("1700000000", BODY, "sha256=xyz", now),
            Err(SignatureError::Malformed(_))
        ));
        assert_eq!(
            verify("1700000000", BODY, ENVTRACKER_VECTOR, at(1_700_000_301)),
            Err(SignatureError::Expired {
                skew_seconds: 301,
                max_seconds: 300
            })
        );
        assert_eq!(
            verify("1700000000", BODY, ENVTRACKER_VECTOR, at(1_699_999_700)),
            Ok(()),
            "300 s early is fine"
        );
    }

    #[test]
    fn the_port_uses_the_secret_as_shown() {
        let secret = SigningSecret::from_stored("whsec_test".to_owned());
        let verifier = EnvtrackerVerifier::default();
        assert_eq!(
            verifier.verify(
                &secret,
                "1700000000",
                BODY,
                ENVTRACKER_VECTOR,
                at(1_700_000_000)
            ),
            Ok(())
        );
        let other = SigningSecret::from_stored("whsec_other".to_owned());
        assert_eq!(
            verifier.verify(
                &other,
                "1700000000",
                BODY,
                ENVTRACKER_VECTOR,
                at(1_700_000_000)
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn github_known_answer_from_its_documentation() {
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            github::sign(b"It's a Secret to Everybody", b"Hello, World!"),
            expected
        );
        assert_eq!(
            github::verify(b"It's a Secret to Everybody", b"Hello, World!", expected),
            Ok(())
        );
        assert_eq!(
            github::verify(b"It's a Secret to Everybody", b"Hello, World?", expected),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            github::verify(b"k", b"x", "sha1=00"),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn pagerduty_signatures_are_the_body_hmac_and_any_of_several_may_match() {
        // The same HMAC-SHA256 of the raw body as GitHub's, so GitHub's published answer holds.
        let secret = b"It's a Secret to Everybody";
        let good = "v1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(pagerduty::sign(secret, b"Hello, World!"), good);
        // During a rotation PagerDuty sends one signature per secret.
        let rotating = format!("v1=00ff00ff, {good}");
        assert_eq!(
            pagerduty::verify(secret, b"Hello, World!", &rotating),
            Ok(())
        );
        assert_eq!(
            pagerduty::verify(secret, b"Hello, World?", &rotating),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            pagerduty::verify(secret, b"Hello, World!", "v0=abc,sha256=00"),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn the_signer_makes_secrets_and_signatures_receivers_verify() {
        let signer = StandardWebhooksSigner;
        let secret = signer.new_secret([9; 32]);
        assert!(secret.starts_with("whsec_"));
        let signature = signer.sign(&secret, "msg_1", 1_700_000_000, b"{}").unwrap();
        let parsed = standard_webhooks::Secret::parse(&secret).unwrap();
        let now = Timestamp::from_unix_seconds(1_700_000_010).unwrap();
        assert_eq!(
            standard_webhooks::verify(&parsed, "msg_1", "1700000000", b"{}", &signature, now, 300),
            Ok(())
        );
        assert!(
            standard_webhooks::verify(&parsed, "msg_2", "1700000000", b"{}", &signature, now, 300)
                .is_err()
        );
        assert_eq!(signer.sign("not base64!", "msg_1", 1, b"{}"), None);
    }

    #[test]
    fn standard_webhooks_known_answer_from_the_specification() {
        let secret =
            standard_webhooks::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature =
            standard_webhooks::sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let verify = |header: &str, now: i64| {
            standard_webhooks::verify(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "1614265330",
                body,
                header,
                at(now),
                300,
            )
        };
        assert_eq!(
            verify(&format!("v1,bm9wZQ== {signature}"), 1_614_265_330),
            Ok(())
        );
        assert_eq!(
            verify("v1,bm9wZQ==", 1_614_265_330),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify(&signature, 1_614_266_000),
            Err(SignatureError::Expired { .. })
        ));
        assert_eq!(secret.reveal(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(standard_webhooks::Secret::parse("whsec_!!!").is_none());
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
