//! Dashboard sessions: a person signs in with a `read` or `admin` API key once (or through the
//! company's OpenID provider, [`crate::sso`]), and the browser then holds a session secret
//! instead of the key.
//!
//! A session acts as its key: the same workspace, role and project, checked again on every
//! request (a revoked key's sessions end with it; an expired key's sessions stop working). It
//! ends after [`SESSION_HOURS`], or earlier when its key expires, or when it is signed out; a
//! key keeps at most [`MAX_SESSIONS_PER_KEY`] sessions (signing in again ends the oldest).
//! Only the secret's hash is stored. Forms that change something carry the session's CSRF
//! token ([`SessionSecret::csrf_token`]).

use shiplog_domain::key::{KeyHash, SessionSecret};
use shiplog_domain::timestamp::Timestamp;
use time::Duration;

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::{AppError, AuthFailure};
use crate::model::{SessionHolder, SessionOwner, SessionRecord, SessionSummary};

/// How long a session lasts at most.
pub const SESSION_HOURS: i64 = 12;
/// The most sessions one API key keeps open: signing in once more ends its oldest.
pub const MAX_SESSIONS_PER_KEY: u32 = 20;

/// The sessions a viewer sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionList {
    /// Their own: of their key, or of their person.
    pub own: Vec<SessionSummary>,
    /// Everyone's in the workspace, for an admin.
    pub everyone: Option<Vec<SessionSummary>>,
}

/// Whose sessions are the caller's own.
fn owner(caller: &Principal) -> Option<SessionOwner> {
    match &caller.actor {
        crate::audit::Actor::ApiKey { id, .. } => {
            crate::ids::ApiKeyId::parse(id).map(SessionOwner::Key)
        }
        crate::audit::Actor::Person { id, .. } => {
            crate::ids::PersonId::parse(id).map(SessionOwner::Person)
        }
        _ => None,
    }
}

/// A session just opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Its secret: set it in the browser's cookie; shiplog keeps only its hash.
    pub secret: SessionSecret,
    /// Who it acts as.
    pub principal: Principal,
    /// When it ends.
    pub expires_at: Timestamp,
}

impl App {
    /// Opens a session with an API key. Only keys that may read can sign in: an `ingest` key
    /// belongs in a pipeline, not a browser.
    /// `address` is the browser's, for the sessions page and the audit log.
    pub async fn sign_in(
        &self,
        presented_key: Option<&str>,
        address: Option<String>,
    ) -> Result<SignedIn, AppError> {
        if !self.key_sign_in {
            return Err(AppError::SignInRefused(
                crate::error::SignInRefusal::KeySignInOff,
            ));
        }
        let key = self.authenticated_key(presented_key).await?;
        let mut principal = Principal::of_key(&key);
        principal.require(Capability::Read, "sign in to the dashboard")?;
        principal.address = address;
        self.open_session(principal, SessionHolder::Key(key.id), key.expires_at)
            .await
    }

    /// Opens a session for `principal` (held by `holder`), ending after [`SESSION_HOURS`] or
    /// at `until` if that is sooner. Expired sessions of every workspace are deleted on the
    /// way, so the table holds only live ones.
    pub(crate) async fn open_session(
        &self,
        principal: Principal,
        holder: SessionHolder,
        until: Option<Timestamp>,
    ) -> Result<SignedIn, AppError> {
        let now = self.ports.clock.now();
        self.ports.keys.delete_expired_sessions(now).await?;
        let end = now
            .checked_add(Duration::hours(SESSION_HOURS))
            .unwrap_or(now);
        let expires_at = until.map_or(end, |until| until.min(end));
        let secret = SessionSecret::from_random(self.ports.ids.secret_bytes());
        self.ports
            .keys
            .create_session(
                SessionRecord {
                    hash: secret.hash(),
                    workspace: principal.workspace,
                    holder,
                    address: principal.address.clone(),
                    created_at: now,
                    expires_at,
                },
                MAX_SESSIONS_PER_KEY,
            )
            .await?;
        Ok(SignedIn {
            secret,
            principal,
            expires_at,
        })
    }

    /// Who the session presented acts as now.
    pub async fn session_principal(&self, presented: Option<&str>) -> Result<Principal, AppError> {
        let invalid = AppError::Unauthenticated(AuthFailure::InvalidSession);
        let secret = presented
            .map(SessionSecret::presented)
            .filter(|s| !s.reveal().is_empty())
            .ok_or(AppError::Unauthenticated(AuthFailure::MissingCredentials))?;
        let grant = self
            .ports
            .keys
            .session(&secret.hash())
            .await?
            .ok_or_else(|| invalid.clone())?;
        let now = self.ports.clock.now();
        if grant.expires_at <= now || grant.key_expires_at.is_some_and(|at| at <= now) {
            return Err(invalid);
        }
        // A person's role is used until its refresh time, then looked at again through the
        // provider (`crate::sso`).
        if grant.refresh_at.is_some_and(|at| at <= now) {
            return Err(AppError::Unauthenticated(AuthFailure::SessionRefresh));
        }
        Ok(Principal {
            workspace: grant.workspace,
            role: grant.role,
            project: grant.project,
            actor: grant.actor,
            address: None,
        })
    }

    /// The live sessions the caller may see: their own (the sessions of their key, or their
    /// person's), and for an admin everyone's in the workspace.
    pub async fn list_sessions(&self, caller: &Principal) -> Result<SessionList, AppError> {
        caller.require(Capability::Read, "list sessions")?;
        let now = self.ports.clock.now();
        let own = match owner(caller) {
            Some(owner) => {
                self.ports
                    .keys
                    .sessions(caller.workspace, Some(owner), now)
                    .await?
            }
            None => Vec::new(),
        };
        let everyone = if caller.role == shiplog_domain::key::Role::Admin {
            Some(
                self.ports
                    .keys
                    .sessions(caller.workspace, None, now)
                    .await?,
            )
        } else {
            None
        };
        Ok(SessionList { own, everyone })
    }

    /// Ends a session by its hash (as [`App::list_sessions`] names it): the caller's own, or
    /// for an admin anyone's in the workspace. Recorded in the audit log.
    pub async fn end_session(&self, caller: &Principal, hash: &str) -> Result<(), AppError> {
        caller.require(Capability::Read, "end a session")?;
        let not_found = || AppError::SessionNotFound(hash.chars().take(64).collect());
        let hash = KeyHash::from_hex(hash).ok_or_else(not_found)?;
        // An admin may end any of the workspace's sessions, anyone else their own.
        let listed = self.list_sessions(caller).await?;
        let sessions = listed.everyone.unwrap_or(listed.own);
        let session = sessions
            .into_iter()
            .find(|s| s.hash == hash)
            .ok_or_else(not_found)?;
        if !self.ports.keys.end_session(caller.workspace, &hash).await? {
            return Err(not_found());
        }
        self.audit(
            caller.origin(),
            Some(caller.workspace),
            crate::audit::AuditAction::SessionEnded,
            crate::audit::AuditTarget {
                kind: "session",
                id: hash.as_str().chars().take(12).collect(),
                name: session.actor.name().map(str::to_owned),
            },
        )
        .await;
        Ok(())
    }

    /// Ends the session presented (nothing happens for an unknown one).
    pub async fn sign_out(&self, presented: &str) -> Result<(), AppError> {
        let secret = SessionSecret::presented(presented);
        self.ports.keys.delete_session(&secret.hash()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use shiplog_domain::key::{KeyHash, Role};

    use super::*;
    use crate::error::ErrorCode;
    use crate::ids::{ApiKeyId, WorkspaceId};
    use crate::model::{ApiKeyRecord, SessionGrant};
    use crate::testing::{TestPorts, now};

    fn key(role: Role, expires_at: Option<Timestamp>) -> ApiKeyRecord {
        ApiKeyRecord {
            id: ApiKeyId::from_uuid(uuid::Uuid::from_u128(7)),
            workspace: WorkspaceId::from_uuid(uuid::Uuid::from_u128(1)),
            name: "laptop".into(),
            role,
            project: None,
            hash: KeyHash::of("shiplog_secret"),
            hint: "shiplog_sec".into(),
            created_at: now(),
            expires_at,
            last_used_at: Some(now()),
        }
    }

    fn hours(n: i64) -> Timestamp {
        now().checked_add(Duration::hours(n)).unwrap()
    }

    #[tokio::test]
    async fn a_read_key_opens_a_session_that_ends_no_later_than_the_key() {
        let mut ports = TestPorts::new();
        ports.with_clock_and_ids();
        ports.ids.expect_secret_bytes().returning(|| [3; 32]);
        ports
            .keys
            .expect_api_key_by_hash()
            .returning(|_| Ok(Some(key(Role::Read, Some(hours(2))))));
        ports
            .keys
            .expect_delete_expired_sessions()
            .times(1)
            .returning(|_| Ok(0));
        ports
            .keys
            .expect_create_session()
            .times(1)
            .withf(|s, keep| {
                s.expires_at == hours(2)
                    && s.holder == SessionHolder::Key(ApiKeyId::from_uuid(uuid::Uuid::from_u128(7)))
                    && *keep == MAX_SESSIONS_PER_KEY
            })
            .returning(|_, _| Ok(()));
        let signed = ports
            .app()
            .sign_in(Some("shiplog_secret"), None)
            .await
            .unwrap();
        assert_eq!(
            signed.expires_at,
            hours(2),
            "the key expires before 12 hours"
        );
        assert_eq!(signed.principal.role, Role::Read);
        assert_ne!(signed.secret.reveal(), "shiplog_secret");
    }

    #[tokio::test]
    async fn an_ingest_key_cannot_sign_in_and_no_session_is_made() {
        let mut ports = TestPorts::new();
        ports.with_clock_and_ids();
        ports
            .keys
            .expect_api_key_by_hash()
            .returning(|_| Ok(Some(key(Role::Ingest, None))));
        ports.keys.expect_create_session().never();
        let err = ports
            .app()
            .sign_in(Some("shiplog_secret"), None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::RoleForbidden);
    }

    #[tokio::test]
    async fn a_session_acts_as_its_key_until_it_or_the_key_expires() {
        for (expires_at, key_expires_at, valid) in [
            (hours(1), None, true),
            (hours(1), Some(hours(-1)), false),
            (now(), None, false),
        ] {
            let mut ports = TestPorts::new();
            ports.with_clock_and_ids();
            ports.keys.expect_session().returning(move |_| {
                Ok(Some(SessionGrant {
                    workspace: WorkspaceId::from_uuid(uuid::Uuid::from_u128(1)),
                    role: Role::Admin,
                    project: None,
                    key_expires_at,
                    expires_at,
                    actor: crate::audit::Actor::ApiKey {
                        id: crate::ids::ApiKeyId::from_uuid(uuid::Uuid::from_u128(5)).to_string(),
                        name: "ci".to_owned(),
                    },
                    refresh_at: None,
                }))
            });
            let got = ports.app().session_principal(Some("abc")).await;
            match got {
                Ok(principal) => {
                    assert!(valid);
                    assert_eq!(principal.role, Role::Admin);
                }
                Err(err) => {
                    assert!(!valid);
                    assert_eq!(err.code(), ErrorCode::InvalidSession);
                }
            }
        }
        let mut ports = TestPorts::new();
        ports.with_clock_and_ids();
        ports.keys.expect_session().returning(|_| Ok(None));
        let app = ports.app();
        let err = app.session_principal(Some("abc")).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidSession);
        let err = app.session_principal(None).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::MissingCredentials);
    }
}
