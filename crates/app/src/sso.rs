//! Single sign-on: people sign in to the dashboard through the company's OpenID provider
//! (`docs/sso.md`).
//!
//! [`App::begin_sso`] sends the browser to the provider with a fresh `state`, `nonce` and PKCE
//! pair; [`App::finish_sso`] checks the `state` the browser brings back, has the
//! [`IdentityProvider`] redeem the code and verify the ID token, records the person, and opens
//! a session in one workspace with the role their groups give there
//! ([`shiplog_domain::sso::RoleRules`]).
//!
//! A person's session holds that role until its refresh time ([`Sso::refresh`], at most
//! [`MAX_REFRESH_MINUTES`]); after it, the session is not used until the person has been
//! through the provider again (which, with the provider's own session alive, is a redirect the
//! person does not see), and their groups are read again. Someone removed from a group loses
//! what it gave at their first request after that; someone in no mapped group is refused.

use std::sync::Arc;

use shiplog_domain::ids::WorkspaceCode;
use shiplog_domain::key::{Role, SessionSecret};
use shiplog_domain::sso::RoleRules;
use time::Duration;

use crate::App;
use crate::audit::Actor;
use crate::auth::Principal;
use crate::error::{AppError, SignInRefusal};
use crate::ids::PersonId;
use crate::model::{PersonRecord, SessionHolder, Workspace};
use crate::ports::{IdentityError, IdentityProvider, SignInAttempt, SignInStart};
use crate::sessions::SignedIn;

/// The longest a person's role is used without looking at their groups again.
pub const MAX_REFRESH_MINUTES: i64 = 15;
/// The default time between two looks at a person's groups.
pub const DEFAULT_REFRESH_MINUTES: i64 = 10;

/// A server's single sign-on: its provider and the rules that turn groups into roles.
#[derive(Clone)]
pub struct Sso {
    /// The provider.
    pub provider: Arc<dyn IdentityProvider>,
    /// Groups to workspaces and roles.
    pub rules: RoleRules,
    /// How long a person's role is used before their groups are looked at again.
    pub refresh: Duration,
}

/// What the browser brought back to the callback (its query parameters).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Callback {
    /// `state`.
    pub state: Option<String>,
    /// `code`.
    pub code: Option<String>,
    /// `error`, when the provider did not sign the person in.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

/// Where a sign-in leads: the workspace wanted (if any), the session the browser already holds
/// (refreshed rather than replaced when it is the same person's in the same workspace), and the
/// browser's address.
#[derive(Debug, Clone, Default)]
pub struct SsoTarget {
    /// The workspace asked for; the first one the person's groups open otherwise.
    pub workspace: Option<WorkspaceCode>,
    /// The session cookie the browser presented, if any.
    pub current_session: Option<String>,
    /// The browser's address, for the session list and the audit log.
    pub address: Option<String>,
}

impl App {
    /// Sets the server's single sign-on.
    pub fn with_sso(mut self, sso: Sso) -> Self {
        self.sso = Some(Arc::new(sso));
        self
    }

    /// Turns signing in with an API key off (people then sign in through the provider only).
    pub fn without_key_sign_in(mut self) -> Self {
        self.key_sign_in = false;
        self
    }

    /// Whether people can sign in through an OpenID provider here.
    pub fn sso_enabled(&self) -> bool {
        self.sso.is_some()
    }

    /// Whether the sign-in form takes API keys.
    pub fn key_sign_in_enabled(&self) -> bool {
        self.key_sign_in
    }

    fn sso(&self) -> Result<&Sso, AppError> {
        self.sso
            .as_deref()
            .ok_or(AppError::SignInRefused(SignInRefusal::NotConfigured))
    }

    /// Starts a sign-in through the provider: where to send the browser, and what to keep
    /// until it comes back.
    pub async fn begin_sso(&self) -> Result<SignInStart, AppError> {
        self.sso()?.provider.begin().await.map_err(provider_error)
    }

    /// Finishes a sign-in: checks `callback` against `attempt`, has the provider redeem the
    /// code, and opens (or refreshes) a session.
    pub async fn finish_sso(
        &self,
        attempt: Option<&SignInAttempt>,
        callback: Callback,
        target: SsoTarget,
    ) -> Result<SignedIn, AppError> {
        let sso = self.sso()?;
        if let Some(error) = callback.error {
            let detail = callback
                .error_description
                .map_or_else(|| error.clone(), |d| format!("{error}: {d}"));
            return Err(AppError::SignInRefused(SignInRefusal::Provider(text_of(
                &detail,
            ))));
        }
        // The state first: a callback this browser did not start is refused before the code
        // goes anywhere.
        let attempt = attempt.ok_or(AppError::SignInRefused(SignInRefusal::State))?;
        let state_matches = callback.state.as_deref().is_some_and(|state| {
            shiplog_domain::key::KeyHash::of(state)
                == shiplog_domain::key::KeyHash::of(&attempt.state)
        });
        if !state_matches {
            return Err(AppError::SignInRefused(SignInRefusal::State));
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty())
            .ok_or(AppError::SignInRefused(SignInRefusal::Provider(
                "the provider sent no code".into(),
            )))?;
        let identity = sso
            .provider
            .redeem(&code, attempt)
            .await
            .map_err(provider_error)?;
        let grants = sso.rules.grants(&identity.groups);
        // The browser's session, read once: on a refresh (no workspace asked), its workspace
        // is kept when the groups still open it.
        let current = match target.current_session.as_deref() {
            Some(presented) => {
                let secret = SessionSecret::presented(presented);
                let grant = self.ports.keys.session(&secret.hash()).await?;
                grant.map(|grant| (secret, grant))
            }
            None => None,
        };
        let mut open: Vec<(Workspace, Role)> = Vec::new();
        for (code, role) in &grants {
            if target.workspace.as_ref().is_some_and(|w| w != code) {
                continue;
            }
            if let Some(workspace) = self.ports.workspaces.by_code(code).await? {
                open.push((workspace, *role));
            }
        }
        let kept = current.as_ref().and_then(|(_, grant)| {
            matches!(grant.actor, Actor::Person { .. })
                .then(|| open.iter().position(|(w, _)| w.id == grant.workspace))
                .flatten()
        });
        let chosen = match kept {
            Some(index) => open.into_iter().nth(index),
            None => open.into_iter().next(),
        };
        let who = identity
            .name
            .clone()
            .or_else(|| identity.email.clone())
            .unwrap_or_else(|| identity.subject.clone());
        let Some((workspace, role)) = chosen else {
            // Refused with no workspace asked for (a refresh, or a plain sign-in): a person's
            // session this browser holds ends too. Asking for a workspace they cannot open
            // leaves the one they are in.
            if let Some((secret, grant)) = &current
                && matches!(grant.actor, Actor::Person { .. })
                && target.workspace.is_none()
            {
                self.ports.keys.delete_session(&secret.hash()).await?;
            }
            return Err(AppError::SignInRefused(SignInRefusal::NoAccess {
                who: text_of(&who),
                groups: identity.groups.iter().map(|g| text_of(g)).collect(),
                workspace: target.workspace.map(|w| w.to_string()),
            }));
        };
        let now = self.ports.clock.now();
        let person = self
            .ports
            .keys
            .record_person(PersonRecord {
                id: PersonId::from_uuid(self.ports.ids.uuid()),
                issuer: identity.issuer.clone(),
                subject: identity.subject.clone(),
                name: text_of(&who),
                email: identity.email.as_deref().map(text_of),
                created_at: now,
                signed_in_at: now,
            })
            .await?;
        let refresh_at = now.checked_add(sso.refresh).unwrap_or(now);
        let holder = SessionHolder::Person {
            id: person.id,
            role,
            refresh_at,
        };
        let principal = Principal {
            workspace: workspace.id,
            role,
            project: None,
            actor: Actor::Person {
                id: person.id.to_string(),
                name: person.name.clone(),
            },
            address: target.address.clone(),
        };
        // The browser's session, when it is this person's in this workspace, is refreshed
        // in place: the same secret, the new role.
        if let Some((secret, grant)) = current {
            let same_person =
                matches!(&grant.actor, Actor::Person { id, .. } if *id == person.id.to_string());
            if same_person
                && grant.workspace == workspace.id
                && grant.expires_at > now
                && self
                    .ports
                    .keys
                    .refresh_session(&secret.hash(), holder.clone(), workspace.id)
                    .await?
            {
                return Ok(SignedIn {
                    secret,
                    principal,
                    expires_at: grant.expires_at,
                });
            }
            // Someone else's session, or another workspace's: this sign-in replaces it.
            self.ports.keys.delete_session(&secret.hash()).await?;
        }
        self.open_session(principal, holder, None).await
    }
}

/// Text from the provider, made safe to store and show: one line
/// ([`shiplog_domain::text::one_line`]), at most 200 characters.
fn text_of(text: &str) -> String {
    shiplog_domain::text::one_line(text)
        .chars()
        .take(200)
        .collect()
}

fn provider_error(error: IdentityError) -> AppError {
    match error {
        IdentityError::Unreachable(detail) => {
            AppError::SignInRefused(SignInRefusal::Unreachable(text_of(&detail)))
        }
        IdentityError::Refused(detail) => {
            AppError::SignInRefused(SignInRefusal::Provider(text_of(&detail)))
        }
        IdentityError::InvalidToken(detail) => {
            AppError::SignInRefused(SignInRefusal::InvalidToken(text_of(&detail)))
        }
    }
}

#[cfg(test)]
mod tests {
    use shiplog_domain::timestamp::Timestamp;

    use super::*;
    use crate::error::ErrorCode;
    use crate::ids::WorkspaceId;
    use crate::model::SessionGrant;
    use crate::ports::{Identity, MockIdentityProvider};
    use crate::testing::{TestPorts, now, workspace};

    fn attempt() -> SignInAttempt {
        SignInAttempt {
            state: "the-state".into(),
            nonce: "the-nonce".into(),
            pkce_verifier: "the-verifier".into(),
        }
    }

    fn callback(state: &str) -> Callback {
        Callback {
            state: Some(state.into()),
            code: Some("the-code".into()),
            ..Callback::default()
        }
    }

    fn identity(groups: &[&str]) -> Identity {
        Identity {
            issuer: "https://id.example.test".into(),
            subject: "248289761001".into(),
            name: Some("Jane Doe".into()),
            email: Some("jane@example.test".into()),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    fn acme() -> Workspace {
        Workspace {
            id: workspace(),
            code: WorkspaceCode::parse("acme").unwrap(),
            name: "Acme".into(),
            environment_limit: None,
            created_at: now(),
        }
    }

    fn person_id() -> PersonId {
        PersonId::from_uuid(uuid::Uuid::from_u128(42))
    }

    /// Jane's session in `workspace`, due for a refresh at `refresh_at`.
    fn jane_session(workspace: WorkspaceId, refresh_at: Timestamp) -> SessionGrant {
        SessionGrant {
            workspace,
            role: Role::Admin,
            project: None,
            key_expires_at: None,
            expires_at: now().checked_add(Duration::hours(1)).unwrap(),
            actor: Actor::Person {
                id: person_id().to_string(),
                name: "Jane Doe".into(),
            },
            refresh_at: Some(refresh_at),
        }
    }

    /// An app whose provider answers `identity` (or is never asked, with `None`).
    fn app(mut ports: TestPorts, answer: Option<Identity>) -> App {
        let mut provider = MockIdentityProvider::new();
        match answer {
            Some(identity) => {
                provider
                    .expect_redeem()
                    .withf(|code, attempt| code == "the-code" && attempt.nonce == "the-nonce")
                    .returning(move |_, _| Ok(identity.clone()));
            }
            None => {
                provider.expect_redeem().never();
            }
        }
        ports.with_clock_and_ids();
        ports.app().with_sso(Sso {
            provider: Arc::new(provider),
            rules: RoleRules::parse("platform=acme:admin, engineers=acme:read").unwrap(),
            refresh: Duration::minutes(10),
        })
    }

    fn with_workspace_and_person(ports: &mut TestPorts) {
        ports
            .workspaces
            .expect_by_code()
            .returning(|_| Ok(Some(acme())));
        ports.keys.expect_record_person().returning(|mut person| {
            person.id = person_id();
            Ok(person)
        });
    }

    #[tokio::test]
    async fn a_callback_with_another_state_never_reaches_the_provider() {
        for (attempt, state) in [(Some(attempt()), "forged"), (None, "the-state")] {
            let ports = TestPorts::new();
            let app = app(ports, None);
            let error = app
                .finish_sso(attempt.as_ref(), callback(state), SsoTarget::default())
                .await
                .unwrap_err();
            assert_eq!(error.code(), ErrorCode::SignInRefused, "{error}");
            assert!(error.to_string().contains("did not start in this browser"));
        }
    }

    #[tokio::test]
    async fn groups_give_the_highest_role_and_a_session_until_the_refresh() {
        let mut ports = TestPorts::new();
        with_workspace_and_person(&mut ports);
        ports.ids.expect_secret_bytes().returning(|| [3; 32]);
        ports
            .keys
            .expect_delete_expired_sessions()
            .returning(|_| Ok(0));
        ports
            .keys
            .expect_create_session()
            .times(1)
            .withf(|session, _| {
                session.holder
                    == SessionHolder::Person {
                        id: person_id(),
                        role: Role::Admin,
                        refresh_at: now().checked_add(Duration::minutes(10)).unwrap(),
                    }
                    && session.workspace == workspace()
            })
            .returning(|_, _| Ok(()));
        let app = app(ports, Some(identity(&["engineers", "platform"])));
        let signed = app
            .finish_sso(
                Some(&attempt()),
                callback("the-state"),
                SsoTarget::default(),
            )
            .await
            .unwrap();
        assert_eq!(signed.principal.role, Role::Admin);
        assert_eq!(
            signed.principal.actor,
            Actor::Person {
                id: person_id().to_string(),
                name: "Jane Doe".into()
            }
        );
    }

    #[tokio::test]
    async fn the_same_persons_session_is_refreshed_in_place_with_the_new_role() {
        let mut ports = TestPorts::new();
        with_workspace_and_person(&mut ports);
        let presented = SessionSecret::from_random([7; 32]);
        let hash = presented.hash();
        ports
            .keys
            .expect_session()
            .returning(|_| Ok(Some(jane_session(workspace(), now()))));
        ports
            .keys
            .expect_refresh_session()
            .times(1)
            .withf(move |h, holder, w| {
                *h == hash
                    && *w == workspace()
                    && matches!(
                        holder,
                        SessionHolder::Person {
                            role: Role::Read,
                            ..
                        }
                    )
            })
            .returning(|_, _, _| Ok(true));
        ports.keys.expect_create_session().never();
        ports.keys.expect_delete_session().never();
        let app = app(ports, Some(identity(&["engineers"])));
        let signed = app
            .finish_sso(
                Some(&attempt()),
                callback("the-state"),
                SsoTarget {
                    current_session: Some(presented.reveal().to_owned()),
                    ..SsoTarget::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(signed.principal.role, Role::Read);
        assert_eq!(signed.secret.reveal(), presented.reveal());
    }

    #[tokio::test]
    async fn no_mapped_group_is_refused_and_ends_the_persons_session() {
        let mut ports = TestPorts::new();
        ports.workspaces.expect_by_code().never();
        ports.keys.expect_record_person().never();
        ports.keys.expect_session().returning(|_| {
            Ok(Some(jane_session(
                WorkspaceId::from_uuid(uuid::Uuid::from_u128(1)),
                now(),
            )))
        });
        ports
            .keys
            .expect_delete_session()
            .times(1)
            .returning(|_| Ok(true));
        let app = app(ports, Some(identity(&["marketing"])));
        let error = app
            .finish_sso(
                Some(&attempt()),
                callback("the-state"),
                SsoTarget {
                    current_session: Some("shiplog_session_secret".into()),
                    ..SsoTarget::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::SignInRefused);
        let message = error.to_string();
        assert!(
            message.contains("none of your groups (marketing)"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn asking_for_a_workspace_the_groups_do_not_open_keeps_the_session() {
        let mut ports = TestPorts::new();
        ports
            .keys
            .expect_session()
            .returning(|_| Ok(Some(jane_session(workspace(), now()))));
        ports.keys.expect_delete_session().never();
        ports.keys.expect_record_person().never();
        let app = app(ports, Some(identity(&["engineers"])));
        let error = app
            .finish_sso(
                Some(&attempt()),
                callback("the-state"),
                SsoTarget {
                    workspace: Some(WorkspaceCode::parse("beta").unwrap()),
                    current_session: Some("shiplog_session_secret".into()),
                    ..SsoTarget::default()
                },
            )
            .await
            .unwrap_err();
        assert!(error.to_string().contains("to workspace beta"), "{error}");
    }

    #[tokio::test]
    async fn a_persons_session_past_its_refresh_goes_back_to_the_provider() {
        for (refresh_at, refreshed) in [
            (now(), true),
            (now().checked_add(Duration::seconds(1)).unwrap(), false),
        ] {
            let mut ports = TestPorts::new();
            ports
                .keys
                .expect_session()
                .returning(move |_| Ok(Some(jane_session(workspace(), refresh_at))));
            let app = app(ports, None);
            let result = app.session_principal(Some("a-session")).await;
            if refreshed {
                assert_eq!(result.unwrap_err().code(), ErrorCode::SessionRefresh);
            } else {
                assert_eq!(result.unwrap().role, Role::Admin);
            }
        }
    }

    #[tokio::test]
    async fn api_keys_cannot_sign_in_when_turned_off() {
        let mut ports = TestPorts::new();
        ports.keys.expect_api_key_by_hash().never();
        let app = app(ports, None).without_key_sign_in();
        let error = app.sign_in(Some("shiplog_secret"), None).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::SignInRefused);
        assert!(error.to_string().contains("turned off"));
    }
}
