//! Who is calling, and what they may do.
//!
//! A request is authenticated once, by API key or by signature, into a [`Principal`]; every use
//! case then asks the principal for the capability it needs. A key limited to one project sees
//! nothing of the others: other projects answer "not found", never "forbidden", so their
//! existence does not leak.

use shiplog_domain::ids::WorkspaceCode;
use shiplog_domain::key::{KeyHash, Role, SigningKeyId};
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::error::{AppError, AuthFailure};
use crate::ids::{ProjectId, WorkspaceId};
use crate::model::{ApiKeyRecord, SigningKeyRecord};
use crate::ports::{KeyRef, SignatureError};

/// How stale a key's `last_used_at` may get before a use rewrites it: one minute.
const LAST_USED_STEP_MICROS: i64 = 60_000_000;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The workspace the credentials belong to.
    pub workspace: WorkspaceId,
    /// What they may do.
    pub role: Role,
    /// The one project they are limited to, if any.
    pub project: Option<ProjectId>,
    /// Who they are, for the audit log.
    pub actor: crate::audit::Actor,
    /// The client's address, set by the adapter that authenticated the request.
    pub address: Option<String>,
}

/// What a use case needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Send pipeline events, create environments and assign applications (CI automation).
    Ingest,
    /// Read deployments, environments, references and metrics.
    Read,
    /// Manage keys, projects, teams and hooks.
    Administer,
}

impl Principal {
    /// Fails with `Forbidden` unless the role grants `capability`; `action` says what was tried.
    pub fn require(&self, capability: Capability, action: &'static str) -> Result<(), AppError> {
        let (allowed, needed) = match capability {
            Capability::Ingest => (self.role.can_ingest(), Role::Ingest),
            Capability::Read => (self.role.can_read(), Role::Read),
            Capability::Administer => (self.role.can_administer(), Role::Admin),
        };
        if allowed {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                role: self.role,
                action,
                needed,
            })
        }
    }

    /// Who an API key acts as.
    pub fn of_key(key: &ApiKeyRecord) -> Self {
        Self {
            workspace: key.workspace,
            role: key.role,
            project: key.project,
            actor: crate::audit::Actor::ApiKey {
                id: key.id.to_string(),
                name: key.name.clone(),
            },
            address: None,
        }
    }

    /// Whether the principal may see `project`.
    pub fn sees(&self, project: ProjectId) -> bool {
        self.project.is_none_or(|only| only == project)
    }
}

/// The three headers of a signed request, as received (any may be missing).
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `X-Webhook-Key`.
    pub key_id: Option<&'a str>,
    /// `X-Webhook-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Webhook-Signature`.
    pub signature: Option<&'a str>,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
}

impl App {
    /// Fails with "not found" unless `code` names the caller's own workspace (paths that repeat
    /// the workspace, like Envtracker's `/v1/company/{companyCode}/…`). Other workspaces answer
    /// "not found" so their existence does not leak.
    pub async fn require_own_workspace(
        &self,
        caller: &Principal,
        code: &WorkspaceCode,
    ) -> Result<(), AppError> {
        let found = self.ports.workspaces.by_code(code).await?;
        if found.is_some_and(|w| w.id == caller.workspace) {
            Ok(())
        } else {
            Err(AppError::NotFoundWorkspace(code.to_string()))
        }
    }
}

/// A header value that is there and not blank.
fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

impl App {
    /// Authenticates an API key presented in any of the accepted headers.
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<Principal, AppError> {
        let record = self.authenticated_key(presented).await?;
        Ok(Principal::of_key(&record))
    }

    /// The API key presented, if it exists and has not expired (its use recorded).
    pub(crate) async fn authenticated_key(
        &self,
        presented: Option<&str>,
    ) -> Result<ApiKeyRecord, AppError> {
        let presented = presented
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AppError::Unauthenticated(AuthFailure::MissingCredentials))?;
        let record = self
            .ports
            .keys
            .api_key_by_hash(&KeyHash::of(presented))
            .await?
            .ok_or(AppError::Unauthenticated(AuthFailure::InvalidApiKey))?;
        self.note_use(
            KeyRef::Api(record.id),
            record.expires_at,
            record.last_used_at,
        )
        .await?;
        Ok(record)
    }

    /// Authenticates a signed request (Envtracker scheme): all three headers present, a known
    /// key id, a fresh timestamp, and a matching signature. The two halves,
    /// [`App::signing_key_for`] (headers only) and [`App::verify_signature`] (the body), let an
    /// adapter refuse an unknown key before it reads the body.
    pub async fn authenticate_signed(
        &self,
        request: SignedRequest<'_>,
    ) -> Result<Principal, AppError> {
        let headers = self
            .signing_key_for(request.key_id, request.timestamp, request.signature)
            .await?;
        self.verify_signature(headers, request.body).await
    }

    /// Refuses an expired key, and records its use at most once a minute (a write per request
    /// would put every authenticated read on the writer).
    async fn note_use(
        &self,
        key: KeyRef,
        expires_at: Option<Timestamp>,
        last_used_at: Option<Timestamp>,
    ) -> Result<(), AppError> {
        let now = self.ports.clock.now();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(AppError::Unauthenticated(AuthFailure::ExpiredKey));
        }
        let stale = last_used_at.is_none_or(|at| {
            now.unix_micros().saturating_sub(at.unix_micros()) >= LAST_USED_STEP_MICROS
        });
        if stale {
            self.ports
                .keys
                .touch_key(key, now)
                .await
                .map_err(AppError::from)?;
        }
        Ok(())
    }

    /// The first half of [`App::authenticate_signed`], from the headers alone: all three present
    /// and a known key id. Nothing about the timestamp is said yet, so only a request whose
    /// signature matches learns about clock skew.
    pub async fn signing_key_for(
        &self,
        key_id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<SignedHeaders, AppError> {
        let (Some(key_id), Some(timestamp), Some(signature)) =
            (present(key_id), present(timestamp), present(signature))
        else {
            return Err(AppError::Unauthenticated(AuthFailure::MissingCredentials));
        };
        let unknown = AppError::Unauthenticated(AuthFailure::UnknownSigningKey);
        let key_id = SigningKeyId::parse(key_id).map_err(|_| unknown.clone())?;
        let key = self.ports.keys.signing_key(&key_id).await?.ok_or(unknown)?;
        Ok(SignedHeaders {
            key,
            timestamp: timestamp.to_owned(),
            signature: signature.to_owned(),
        })
    }

    /// The second half of [`App::authenticate_signed`]: the signature over the raw body, then
    /// the timestamp, then the key's expiry.
    pub async fn verify_signature(
        &self,
        headers: SignedHeaders,
        body: &[u8],
    ) -> Result<Principal, AppError> {
        let now = self.ports.clock.now();
        let key = headers.key;
        self.ports
            .signatures
            .verify(
                &key.secret,
                &headers.timestamp,
                body,
                &headers.signature,
                now,
            )
            .map_err(|error| {
                AppError::Unauthenticated(match error {
                    SignatureError::Expired { .. } => AuthFailure::ExpiredTimestamp,
                    SignatureError::Malformed(_) | SignatureError::Mismatch => {
                        AuthFailure::InvalidSignature
                    }
                })
            })?;
        self.note_use(KeyRef::Signing(key.id), key.expires_at, key.last_used_at)
            .await?;
        Ok(Principal {
            workspace: key.workspace,
            role: key.role,
            project: key.project,
            actor: crate::audit::Actor::SigningKey {
                id: key.id.to_string(),
            },
            address: None,
        })
    }
}

/// The headers of a signed request whose key is known, waiting for the body its signature covers
/// ([`App::verify_signature`]). Only [`App::signing_key_for`] makes one.
#[derive(Debug, Clone)]
pub struct SignedHeaders {
    key: SigningKeyRecord,
    timestamp: String,
    signature: String,
}

#[cfg(test)]
mod tests {
    use shiplog_domain::key::SigningSecret;
    use shiplog_domain::timestamp::Timestamp;

    use super::*;
    use crate::ids::{ApiKeyId, SigningKeyRecordId};
    use crate::model::{ApiKeyRecord, SigningKeyRecord};
    use crate::testing::{TestPorts, ids};

    fn record(role: Role, project: Option<ProjectId>) -> ApiKeyRecord {
        ApiKeyRecord {
            id: ApiKeyId::from_uuid(ids(1)),
            workspace: WorkspaceId::from_uuid(ids(2)),
            name: "ci".into(),
            role,
            project,
            hash: KeyHash::of("shiplog_secret"),
            hint: "shiplog_secr".into(),
            created_at: Timestamp::UNIX_EPOCH,
            expires_at: None,
            last_used_at: None,
        }
    }

    #[tokio::test]
    async fn an_expired_key_is_refused_and_use_is_written_once_a_minute() {
        let now = crate::testing::now();
        let at = |seconds: i64| {
            Timestamp::from_unix_micros(now.unix_micros() + seconds * 1_000_000).unwrap()
        };
        for (expires, last_used, refused, touched) in [
            (Some(at(-1)), None, true, 0),
            (Some(at(0)), None, true, 0),
            (Some(at(1)), Some(at(-59)), false, 0),
            (None, Some(at(-60)), false, 1),
            (None, None, false, 1),
        ] {
            let mut ports = TestPorts::new();
            ports.keys.expect_api_key_by_hash().returning(move |_| {
                Ok(Some(ApiKeyRecord {
                    expires_at: expires,
                    last_used_at: last_used,
                    ..record(Role::Ingest, None)
                }))
            });
            ports.clock.expect_now().returning(crate::testing::now);
            ports
                .keys
                .expect_touch_key()
                .times(touched)
                .returning(|_, _| Ok(()));
            let result = ports.app().authenticate(Some("shiplog_secret")).await;
            assert_eq!(
                result.is_err(),
                refused,
                "{expires:?} {last_used:?}: {result:?}"
            );
            if refused {
                assert_eq!(
                    result.unwrap_err().code(),
                    crate::error::ErrorCode::ExpiredKey
                );
            }
        }
    }

    #[tokio::test]
    async fn an_api_key_is_looked_up_by_its_hash_only() {
        let mut ports = TestPorts::new();
        ports
            .keys
            .expect_api_key_by_hash()
            .withf(|hash| *hash == KeyHash::of("shiplog_secret"))
            .returning(|_| Ok(Some(record(Role::Ingest, None))));
        ports.clock.expect_now().returning(crate::testing::now);
        ports
            .keys
            .expect_touch_key()
            .withf(|key, _| *key == KeyRef::Api(ApiKeyId::from_uuid(ids(1))))
            .times(1)
            .returning(|_, _| Ok(()));
        let principal = ports
            .app()
            .authenticate(Some(" shiplog_secret "))
            .await
            .unwrap();
        assert_eq!(principal.role, Role::Ingest);
        assert_eq!(principal.workspace, WorkspaceId::from_uuid(ids(2)));
    }

    #[tokio::test]
    async fn only_the_callers_own_workspace_passes() {
        let mut ports = TestPorts::new();
        ports.workspaces.expect_by_code().returning(|code| {
            Ok(Some(crate::model::Workspace {
                id: WorkspaceId::from_uuid(ids(if code.as_str() == "acme" { 2 } else { 3 })),
                code: code.clone(),
                name: String::new(),
                environment_limit: None,
                created_at: Timestamp::UNIX_EPOCH,
            }))
        });
        let app = ports.app();
        let caller = Principal {
            workspace: WorkspaceId::from_uuid(ids(2)),
            role: Role::Ingest,
            project: None,
            actor: crate::audit::Actor::Master,
            address: None,
        };
        let acme = WorkspaceCode::parse("acme").unwrap();
        assert_eq!(app.require_own_workspace(&caller, &acme).await, Ok(()));
        let globex = WorkspaceCode::parse("globex").unwrap();
        assert_eq!(
            app.require_own_workspace(&caller, &globex).await,
            Err(AppError::NotFoundWorkspace("globex".into()))
        );
    }

    #[tokio::test]
    async fn missing_and_unknown_keys_are_told_apart() {
        let mut ports = TestPorts::new();
        ports.keys.expect_api_key_by_hash().returning(|_| Ok(None));
        let app = ports.app();
        assert_eq!(
            app.authenticate(None).await.unwrap_err(),
            AppError::Unauthenticated(AuthFailure::MissingCredentials)
        );
        assert_eq!(
            app.authenticate(Some("  ")).await.unwrap_err(),
            AppError::Unauthenticated(AuthFailure::MissingCredentials)
        );
        assert_eq!(
            app.authenticate(Some("nope")).await.unwrap_err(),
            AppError::Unauthenticated(AuthFailure::InvalidApiKey)
        );
    }

    #[test]
    fn roles_and_scopes() {
        let ingest = Principal {
            workspace: WorkspaceId::from_uuid(ids(1)),
            role: Role::Ingest,
            project: Some(ProjectId::from_uuid(ids(5))),
            actor: crate::audit::Actor::Master,
            address: None,
        };
        assert!(ingest.require(Capability::Ingest, "send events").is_ok());
        let err = ingest
            .require(Capability::Read, "read deployments")
            .unwrap_err();
        assert!(matches!(
            err,
            AppError::Forbidden {
                needed: Role::Read,
                ..
            }
        ));
        assert!(ingest.sees(ProjectId::from_uuid(ids(5))));
        assert!(!ingest.sees(ProjectId::from_uuid(ids(6))));
    }

    fn signing_key() -> SigningKeyRecord {
        SigningKeyRecord {
            id: SigningKeyRecordId::from_uuid(ids(3)),
            workspace: WorkspaceId::from_uuid(ids(2)),
            key_id: SigningKeyId::parse("whk_0011223344556677").unwrap(),
            name: "envtracker".into(),
            secret: SigningSecret::from_stored("whsec_x".into()),
            role: Role::Ingest,
            project: None,
            created_at: Timestamp::UNIX_EPOCH,
            expires_at: None,
            last_used_at: None,
        }
    }

    fn signed<'a>(key: Option<&'a str>, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            key_id: key,
            timestamp: Some("1700000000"),
            signature: Some("sha256=00"),
            body,
        }
    }

    #[tokio::test]
    async fn signed_requests_check_headers_key_and_signature_in_that_order() {
        let mut ports = TestPorts::new();
        ports.keys.expect_touch_key().returning(|_, _| Ok(()));
        ports
            .keys
            .expect_signing_key()
            .returning(|id| Ok((id.as_str() == "whk_0011223344556677").then(signing_key)));
        ports
            .clock
            .expect_now()
            .returning(|| Timestamp::from_unix_seconds(1_700_000_100).unwrap());
        ports
            .signatures
            .expect_verify()
            .withf(|secret, ts, body, sig, _| {
                secret.reveal() == "whsec_x"
                    && ts == "1700000000"
                    && body == b"{}"
                    && sig == "sha256=00"
            })
            .returning(|_, _, body, _, _| {
                if body == b"{}" {
                    Ok(())
                } else {
                    Err(SignatureError::Mismatch)
                }
            });
        let app = ports.app();
        let missing = SignedRequest {
            signature: None,
            ..signed(Some("whk_0011223344556677"), b"{}")
        };
        assert_eq!(
            app.authenticate_signed(missing).await.unwrap_err(),
            AppError::Unauthenticated(AuthFailure::MissingCredentials)
        );
        assert_eq!(
            app.authenticate_signed(signed(Some("whk_ffffffffffffffff"), b"{}"))
                .await
                .unwrap_err(),
            AppError::Unauthenticated(AuthFailure::UnknownSigningKey)
        );
        assert_eq!(
            app.authenticate_signed(signed(Some("not-a-key"), b"{}"))
                .await
                .unwrap_err(),
            AppError::Unauthenticated(AuthFailure::UnknownSigningKey)
        );
        let ok = app
            .authenticate_signed(signed(Some("whk_0011223344556677"), b"{}"))
            .await
            .unwrap();
        assert_eq!(ok.role, Role::Ingest);
    }

    #[tokio::test]
    async fn signature_failures_map_to_their_reasons() {
        for (error, expected) in [
            (SignatureError::Mismatch, AuthFailure::InvalidSignature),
            (
                SignatureError::Malformed("x".into()),
                AuthFailure::InvalidSignature,
            ),
            (
                SignatureError::Expired {
                    skew_seconds: 400,
                    max_seconds: 300,
                },
                AuthFailure::ExpiredTimestamp,
            ),
        ] {
            let mut ports = TestPorts::new();
            ports
                .keys
                .expect_signing_key()
                .returning(|_| Ok(Some(signing_key())));
            ports.clock.expect_now().returning(|| Timestamp::UNIX_EPOCH);
            ports
                .signatures
                .expect_verify()
                .returning(move |_, _, _, _, _| Err(error.clone()));
            let err = ports
                .app()
                .authenticate_signed(signed(Some("whk_0011223344556677"), b"{}"))
                .await
                .unwrap_err();
            assert_eq!(err, AppError::Unauthenticated(expected));
        }
    }
}
