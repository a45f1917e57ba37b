//! The ports that are not stores: the clock, ids, signature checks, sending and signing hook
//! deliveries, running work off the request threads, and telling live views of changes.

use async_trait::async_trait;
use shiplog_domain::key::SigningSecret;
use shiplog_domain::timestamp::Timestamp;

use crate::hooks::{OutgoingRequest, SendResult};
use crate::ids::WorkspaceId;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// The time. The only way use cases learn it, so tests control it.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;
}

/// Fresh identifiers and secrets.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait IdGenerator: Send + Sync {
    /// A new unique id (time-ordered ids keep indexes compact).
    fn uuid(&self) -> uuid::Uuid;
    /// 32 bytes from a cryptographically secure source, for API keys and secrets.
    fn secret_bytes(&self) -> [u8; 32];
}

/// Checks the signature of a signed request (the Envtracker scheme).
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait SignatureVerifier: Send + Sync {
    /// Accepts when one of the space-separated `signatures` (`sha256=<hex>`) is the HMAC-SHA256
    /// of `"<timestamp>.<body>"` under `secret`, and `timestamp` (Unix seconds) is within the
    /// allowed skew of `now`. Comparison is constant-time.
    fn verify(
        &self,
        secret: &SigningSecret,
        timestamp: &str,
        body: &[u8],
        signatures: &str,
        now: Timestamp,
    ) -> Result<(), SignatureError>;

    /// Accepts when `header` (`sha256=<hex>`, GitHub's `X-Hub-Signature-256`) is the
    /// HMAC-SHA256 of the raw `body` under `secret`. Comparison is constant-time.
    fn verify_hub_signature(
        &self,
        secret: &SigningSecret,
        body: &[u8],
        header: &str,
    ) -> Result<(), SignatureError>;

    /// Accepts when one of the comma-separated signatures of `header` (`v1=<hex>`, PagerDuty's
    /// `X-PagerDuty-Signature`, several during a secret's rotation) is the HMAC-SHA256 of the
    /// raw `body` under `secret`. Comparison is constant-time.
    fn verify_pagerduty_signature(
        &self,
        secret: &SigningSecret,
        body: &[u8],
        header: &str,
    ) -> Result<(), SignatureError>;
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp is not Unix seconds, or no signature has the `sha256=<hex>` form.
    #[error("malformed signature headers: {0}")]
    Malformed(String),
    /// The timestamp is too far from the server's clock.
    #[error(
        "timestamp is {skew_seconds} s from the server clock (at most {max_seconds} s allowed)"
    )]
    Expired {
        /// How far off it is.
        skew_seconds: i64,
        /// The allowed skew.
        max_seconds: i64,
    },
    /// No signature matches.
    #[error("invalid signature")]
    Mismatch,
}

/// Sends one HTTP request of a delivery.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait HookSender: Send + Sync {
    /// Sends `request` and reports what happened; never fails, a refused target or a network
    /// error is in [`SendResult::error`]. Bounded in time (15 s) and in the body it reads.
    async fn send(&self, request: OutgoingRequest) -> SendResult;
    /// Checks a rendered target URL before it is saved or sent: an `http` or `https` URL whose
    /// host is not a private, loopback, link-local or metadata address (unless the operator
    /// allows them). Names are resolved only when sending.
    fn check_target(&self, url: &str) -> Result<(), String>;
}

/// Signs outgoing deliveries (Standard Webhooks).
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait WebhookSigner: Send + Sync {
    /// A new secret in the scheme's text form (`whsec_…`), from 32 random bytes.
    fn new_secret(&self, bytes: [u8; 32]) -> String;
    /// The `webhook-signature` value for a message id, Unix timestamp and body; `None` when the
    /// stored secret is unreadable.
    fn sign(&self, secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String>;
}

/// Runs CPU-bound work (rendering hook templates) where blocking is allowed, so that one
/// workspace's template never holds an async executor thread that serves the others.
pub trait Offload: Send + Sync {
    /// Runs `job` off the async executor; the future resolves once it has run.
    fn run(
        &self,
        job: Box<dyn FnOnce() + Send + 'static>,
    ) -> futures_util::future::BoxFuture<'static, ()>;
}

/// Told when a workspace's deployments change (after the change is committed), so that live
/// views (the dashboard's deployments list) refresh at once instead of at their next poll.
/// Must return at once: it runs on the ingest path.
pub trait ChangeNotifier: Send + Sync {
    /// A deployment of `workspace` was created or changed.
    fn deployments_changed(&self, workspace: WorkspaceId);
    /// An import of history into `workspace` ended: its past days' DORA records are worth
    /// packing now rather than at the packer's next round.
    fn history_imported(&self, workspace: WorkspaceId) {
        let _ = workspace;
    }
}

/// Tells nobody: live views find changes by polling alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl ChangeNotifier for Silent {
    fn deployments_changed(&self, _: WorkspaceId) {}
}

/// Runs each job in place: for tests, and for embedders with no executor to protect.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl Offload for Inline {
    fn run(
        &self,
        job: Box<dyn FnOnce() + Send + 'static>,
    ) -> futures_util::future::BoxFuture<'static, ()> {
        job();
        Box::pin(std::future::ready(()))
    }
}

/// The company's OpenID provider (single sign-on, `docs/sso.md`): the protocol is the
/// adapter's, what a sign-in grants is the use cases'.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Where to send a browser to sign in, with a fresh `state`, `nonce` and PKCE pair the
    /// caller keeps until the browser comes back.
    async fn begin(&self) -> Result<SignInStart, IdentityError>;
    /// Redeems the authorization `code` the browser brought back (with the attempt's PKCE
    /// verifier) and verifies the ID token: signature by the issuer's keys (fetched again once
    /// when it names a key not seen yet), issuer, audience, expiry and `nonce`.
    async fn redeem(&self, code: &str, attempt: &SignInAttempt) -> Result<Identity, IdentityError>;
}

/// A sign-in just started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInStart {
    /// The provider's authorization address, with every parameter.
    pub url: String,
    /// What to check when the browser comes back.
    pub attempt: SignInAttempt,
}

/// What a sign-in's callback is checked against: kept by the browser's adapter (the web
/// dashboard keeps it in a short-lived cookie) between leaving for the provider and coming back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignInAttempt {
    /// The `state` sent; the callback must bring the same.
    pub state: String,
    /// The `nonce` sent; the ID token must carry the same.
    pub nonce: String,
    /// The PKCE verifier whose challenge was sent.
    pub pkce_verifier: String,
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The issuer.
    pub issuer: String,
    /// The subject: stable for one person at one issuer.
    pub subject: String,
    /// Their name, when given.
    pub name: Option<String>,
    /// Their email, when given.
    pub email: Option<String>,
    /// Their groups, from the configured claim (empty when the token has none).
    pub groups: Vec<String>,
}

/// Why the provider's answer did not sign anyone in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The provider could not be reached, or answered something that is not OpenID Connect.
    #[error("the OpenID provider cannot be reached: {0}")]
    Unreachable(String),
    /// The provider refused to redeem the code (used already, expired, or not for this
    /// client).
    #[error("the OpenID provider refused the sign-in: {0}")]
    Refused(String),
    /// The ID token failed verification.
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
}
