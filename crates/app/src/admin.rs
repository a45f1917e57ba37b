//! Administration: the master key, workspaces, API keys, projects and teams.
//!
//! The master key (like an instance owner's key) creates workspaces and their keys. It is kept
//! only as a hash. A workspace's `admin` keys manage that workspace; a key limited to one project
//! cannot create projects, teams or keys, since that would reach beyond its project.

use serde::Serialize;
use shiplog_domain::ids::{ProjectSlug, TeamCode, WorkspaceCode};
use shiplog_domain::key::{ApiKey, KeyHash, Role, SigningKeyId, SigningSecret};
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::{AppError, AuthFailure};
use crate::ids::{ApiKeyId, ProjectId, SigningKeyRecordId, TeamId, WorkspaceId};
use crate::model::{ApiKeyRecord, Project, ProjectLookup, SigningKeyRecord, Team, Workspace};
use crate::ports::KeyRef;

/// The shortest master key accepted from configuration.
pub const MIN_MASTER_KEY_LEN: usize = 16;
/// The longest display name.
pub const MAX_NAME_LEN: usize = 200;
/// The largest environment limit a workspace may be given (the store keeps it in 32 bits).
pub const MAX_ENVIRONMENT_LIMIT: u32 = 1_000_000;

/// Proof that a request carried the master key. Only [`App::authenticate_master`] makes one.
#[derive(Debug)]
pub struct Master {
    address: Option<String>,
}

impl Master {
    /// The same proof, noting the client's address for the audit log (set by the adapter
    /// that authenticated the request).
    pub fn from_address(self, address: Option<String>) -> Self {
        Self { address }
    }

    /// Who is acting, for the audit log.
    pub fn origin(&self) -> crate::audit::Origin {
        crate::audit::Origin {
            actor: crate::audit::Actor::Master,
            address: self.address.clone(),
        }
    }
}

/// Who may manage a workspace's keys: the master key, or an admin key of that workspace.
#[derive(Debug, Clone, Copy)]
pub enum WorkspaceAdmin<'a> {
    /// The instance's master key.
    Master(&'a Master),
    /// An API key.
    Key(&'a Principal),
}

/// Credentials that may manage a workspace's keys, as authenticated: the master key or an API
/// key (whose role and workspace the use case then checks).
#[derive(Debug)]
pub enum AdminCredentials {
    /// The instance's master key.
    Master(Master),
    /// An API key.
    Key(Principal),
}

impl AdminCredentials {
    /// The credentials as a use case takes them.
    pub fn as_admin(&self) -> WorkspaceAdmin<'_> {
        match self {
            Self::Master(master) => WorkspaceAdmin::Master(master),
            Self::Key(principal) => WorkspaceAdmin::Key(principal),
        }
    }
}

/// A new workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateWorkspace {
    /// Its code.
    pub code: WorkspaceCode,
    /// Display name (the code when empty).
    pub name: String,
    /// The most environments it may hold; `None` for no limit.
    pub environment_limit: Option<u32>,
}

/// A new API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateApiKey {
    /// A label.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The one project it is limited to, if any.
    pub project: Option<ProjectSlug>,
    /// When it stops working; `None` for never. Must be in the future.
    pub expires_at: Option<Timestamp>,
}

/// A key as listings show it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    /// Its id (what `DELETE` takes).
    pub id: String,
    /// A label.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The one project it is limited to, if any.
    pub project: Option<ProjectSlug>,
    /// API keys: the secret's first characters, to tell keys apart. Signing keys: `None`.
    pub hint: Option<String>,
    /// Signing keys: the public id sent in `X-Webhook-Key`. API keys: `None`.
    pub key_id: Option<SigningKeyId>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was last used, to the minute; `None` if never.
    pub last_used_at: Option<Timestamp>,
}

/// A key just created: the record, and the secret to show once.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// What is stored (no secret).
    pub record: ApiKeyRecord,
    /// The secret; shiplog forgets it once this is dropped.
    pub secret: ApiKey,
}

fn display_name(field: &'static str, name: &str, fallback: &str) -> Result<String, AppError> {
    let name = name.trim();
    let name = if name.is_empty() { fallback } else { name };
    if name.len() > MAX_NAME_LEN {
        return Err(AppError::invalid(
            field,
            format!("send at most {MAX_NAME_LEN} characters"),
        ));
    }
    AppError::check_line(field, name)?;
    Ok(name.to_owned())
}

impl App {
    /// Sets the master key at start. A configured key replaces the stored hash; without one, the
    /// stored hash stays; without either, a key is generated, its hash stored, and the key
    /// returned so the caller can print it once.
    pub async fn ensure_master_key(
        &self,
        configured: Option<&str>,
    ) -> Result<Option<ApiKey>, AppError> {
        if let Some(key) = configured.map(str::trim).filter(|k| !k.is_empty()) {
            if key.len() < MIN_MASTER_KEY_LEN {
                return Err(AppError::invalid(
                    "SHIPLOG_ADMIN_KEY",
                    format!("is too short: use at least {MIN_MASTER_KEY_LEN} random characters"),
                ));
            }
            self.ports
                .keys
                .set_master_key_hash(KeyHash::of(key), self.ports.clock.now())
                .await?;
            return Ok(None);
        }
        if self.ports.keys.master_key_hash().await?.is_some() {
            return Ok(None);
        }
        let key = ApiKey::from_random(self.ports.ids.secret_bytes());
        self.ports
            .keys
            .set_master_key_hash(key.hash(), self.ports.clock.now())
            .await?;
        Ok(Some(key))
    }

    /// Checks a presented master key.
    pub async fn authenticate_master(&self, presented: Option<&str>) -> Result<Master, AppError> {
        let presented = presented
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AppError::Unauthenticated(AuthFailure::MissingCredentials))?;
        let stored = self.ports.keys.master_key_hash().await?;
        if stored == Some(KeyHash::of(presented)) {
            Ok(Master { address: None })
        } else {
            Err(AppError::Unauthenticated(AuthFailure::InvalidApiKey))
        }
    }

    /// Authenticates a presented secret as the master key if it is one, else as an API key.
    pub async fn authenticate_admin(
        &self,
        presented: Option<&str>,
    ) -> Result<AdminCredentials, AppError> {
        match self.authenticate_master(presented).await {
            Ok(master) => Ok(AdminCredentials::Master(master)),
            Err(AppError::Unauthenticated(AuthFailure::InvalidApiKey)) => {
                Ok(AdminCredentials::Key(self.authenticate(presented).await?))
            }
            Err(other) => Err(other),
        }
    }

    /// Creates a workspace (master key only).
    pub async fn create_workspace(
        &self,
        master: &Master,
        request: CreateWorkspace,
    ) -> Result<Workspace, AppError> {
        if request
            .environment_limit
            .is_some_and(|limit| limit > MAX_ENVIRONMENT_LIMIT)
        {
            return Err(AppError::invalid(
                "environment_limit",
                format!("send 0 to {MAX_ENVIRONMENT_LIMIT}, or none for no limit"),
            ));
        }
        let workspace = Workspace {
            id: WorkspaceId::from_uuid(self.ports.ids.uuid()),
            name: display_name("name", &request.name, request.code.as_str())?,
            code: request.code,
            environment_limit: request.environment_limit,
            created_at: self.ports.clock.now(),
        };
        self.ports.workspaces.create(workspace.clone()).await?;
        self.audit(
            master.origin(),
            Some(workspace.id),
            crate::audit::AuditAction::WorkspaceCreated,
            crate::audit::AuditTarget {
                kind: "workspace",
                id: workspace.id.to_string(),
                name: Some(workspace.code.to_string()),
            },
        )
        .await;
        Ok(workspace)
    }

    /// Creates an API key of a workspace; the secret is in the result and nowhere else.
    pub async fn create_api_key(
        &self,
        admin: WorkspaceAdmin<'_>,
        workspace: &WorkspaceCode,
        request: CreateApiKey,
    ) -> Result<IssuedKey, AppError> {
        let (workspace_id, project) = self.key_owner(admin, workspace, &request).await?;
        let name = display_name("name", &request.name, request.role.as_str())?;
        let secret = ApiKey::from_random(self.ports.ids.secret_bytes());
        let record = ApiKeyRecord {
            id: ApiKeyId::from_uuid(self.ports.ids.uuid()),
            workspace: workspace_id,
            name,
            role: request.role,
            project,
            hash: secret.hash(),
            hint: secret.hint(),
            created_at: self.ports.clock.now(),
            expires_at: request.expires_at,
            last_used_at: None,
        };
        self.ports.keys.create_api_key(record.clone()).await?;
        self.audit(
            admin.origin(),
            Some(workspace_id),
            crate::audit::AuditAction::ApiKeyCreated,
            crate::audit::AuditTarget {
                kind: "api_key",
                id: record.id.to_string(),
                name: Some(format!("{} ({})", record.name, record.role.as_str())),
            },
        )
        .await;
        Ok(IssuedKey { record, secret })
    }

    /// Creates a signing key (for the Envtracker-style signed endpoints) of a workspace; the
    /// secret is in the result, shown once. Unlike API keys it is stored, since verifying an HMAC
    /// needs it; it is never returned again.
    pub async fn create_signing_key(
        &self,
        admin: WorkspaceAdmin<'_>,
        workspace: &WorkspaceCode,
        request: CreateApiKey,
    ) -> Result<SigningKeyRecord, AppError> {
        let (workspace_id, project) = self.key_owner(admin, workspace, &request).await?;
        let id_bytes = self.ports.ids.secret_bytes();
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(id_bytes.get(..8).unwrap_or(&[0; 8]));
        let record = SigningKeyRecord {
            id: SigningKeyRecordId::from_uuid(self.ports.ids.uuid()),
            workspace: workspace_id,
            key_id: SigningKeyId::from_random(key_id),
            name: display_name("name", &request.name, request.role.as_str())?,
            secret: SigningSecret::from_random(self.ports.ids.secret_bytes()),
            role: request.role,
            project,
            created_at: self.ports.clock.now(),
            expires_at: request.expires_at,
            last_used_at: None,
        };
        self.ports.keys.create_signing_key(record.clone()).await?;
        self.audit(
            admin.origin(),
            Some(workspace_id),
            crate::audit::AuditAction::SigningKeyCreated,
            crate::audit::AuditTarget {
                kind: "signing_key",
                id: record.id.to_string(),
                name: Some(format!("{} ({})", record.name, record.role.as_str())),
            },
        )
        .await;
        Ok(record)
    }

    /// The API and signing keys of a workspace, oldest first, without their secrets.
    pub async fn list_keys(
        &self,
        admin: WorkspaceAdmin<'_>,
        workspace: &WorkspaceCode,
    ) -> Result<(Vec<KeySummary>, Vec<KeySummary>), AppError> {
        let workspace = self.administered(admin, workspace, "list keys").await?;
        let projects = self.ports.projects.list(workspace).await?;
        let slug = |id: Option<ProjectId>| {
            id.and_then(|id| projects.iter().find(|p| p.id == id))
                .map(|p| p.slug.clone())
        };
        let api = self
            .ports
            .keys
            .api_keys(workspace)
            .await?
            .into_iter()
            .map(|k| KeySummary {
                id: k.id.to_string(),
                name: k.name,
                role: k.role,
                project: slug(k.project),
                hint: Some(k.hint),
                key_id: None,
                created_at: k.created_at,
                expires_at: k.expires_at,
                last_used_at: k.last_used_at,
            })
            .collect();
        let signing = self
            .ports
            .keys
            .signing_keys(workspace)
            .await?
            .into_iter()
            .map(|k| KeySummary {
                id: k.id.to_string(),
                name: k.name,
                role: k.role,
                project: slug(k.project),
                hint: None,
                key_id: Some(k.key_id),
                created_at: k.created_at,
                expires_at: k.expires_at,
                last_used_at: k.last_used_at,
            })
            .collect();
        Ok((api, signing))
    }

    /// Revokes (deletes) an API key (`signing` false) or a signing key of a workspace, by the
    /// id its listing shows. Authentication refuses it as soon as the key store no longer finds
    /// it (shiplog's store keeps copies for at most 5 s in other processes).
    pub async fn revoke_key(
        &self,
        admin: WorkspaceAdmin<'_>,
        workspace: &WorkspaceCode,
        signing: bool,
        id: &str,
    ) -> Result<(), AppError> {
        let workspace = self.administered(admin, workspace, "revoke keys").await?;
        let not_found = || AppError::KeyNotFound(id.to_owned());
        let key = if signing {
            KeyRef::Signing(SigningKeyRecordId::parse(id).ok_or_else(not_found)?)
        } else {
            KeyRef::Api(ApiKeyId::parse(id).ok_or_else(not_found)?)
        };
        if self.ports.keys.delete_key(workspace, key).await? {
            let (action, kind) = if signing {
                (crate::audit::AuditAction::SigningKeyRevoked, "signing_key")
            } else {
                (crate::audit::AuditAction::ApiKeyRevoked, "api_key")
            };
            self.audit(
                admin.origin(),
                Some(workspace),
                action,
                crate::audit::AuditTarget {
                    kind,
                    id: id.to_owned(),
                    name: None,
                },
            )
            .await;
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// The caller's own workspace (the dashboard's administration pages name it by code).
    pub async fn caller_workspace(&self, caller: &Principal) -> Result<Workspace, AppError> {
        self.ports
            .workspaces
            .list()
            .await?
            .into_iter()
            .find(|w| w.id == caller.workspace)
            .ok_or_else(|| AppError::NotFoundWorkspace(caller.workspace.to_string()))
    }

    /// Every workspace (master key only).
    pub async fn list_workspaces(&self, _master: &Master) -> Result<Vec<Workspace>, AppError> {
        Ok(self.ports.workspaces.list().await?)
    }

    /// The projects the caller may see, by slug.
    pub async fn list_projects(&self, caller: &Principal) -> Result<Vec<Project>, AppError> {
        caller.require(Capability::Read, "list projects")?;
        let mut projects = self.ports.projects.list(caller.workspace).await?;
        projects.retain(|p| caller.sees(p.id));
        Ok(projects)
    }

    /// The teams of the caller's workspace, by code.
    pub async fn list_teams(&self, caller: &Principal) -> Result<Vec<Team>, AppError> {
        caller.require(Capability::Read, "list teams")?;
        Ok(self.ports.teams.list(caller.workspace).await?)
    }

    /// The workspace `admin` may manage, by code; another workspace is not found.
    pub(crate) async fn administered(
        &self,
        admin: WorkspaceAdmin<'_>,
        workspace: &WorkspaceCode,
        action: &'static str,
    ) -> Result<WorkspaceId, AppError> {
        let not_found = || AppError::NotFoundWorkspace(workspace.to_string());
        let found = self
            .ports
            .workspaces
            .by_code(workspace)
            .await?
            .ok_or_else(not_found)?;
        if let WorkspaceAdmin::Key(caller) = admin {
            if caller.workspace != found.id {
                return Err(not_found());
            }
            Self::require_workspace_admin(caller, action)?;
        }
        Ok(found.id)
    }

    /// The workspace (and optional project) a new key belongs to, after checking who asks.
    async fn key_owner(
        &self,
        admin: WorkspaceAdmin<'_>,
        workspace: &WorkspaceCode,
        request: &CreateApiKey,
    ) -> Result<(WorkspaceId, Option<ProjectId>), AppError> {
        let workspace = self.administered(admin, workspace, "create keys").await?;
        if let Some(expires_at) = request.expires_at
            && expires_at <= self.ports.clock.now()
        {
            return Err(AppError::invalid(
                "expires_at",
                "is not in the future: send a later time, or none for a key that never expires",
            ));
        }
        let found_id = workspace;
        let project = request.project.clone();
        let project = match project {
            None => None,
            Some(slug) => Some(
                self.ports
                    .projects
                    .get(found_id, &ProjectLookup::Slug(slug.clone()))
                    .await?
                    .ok_or_else(|| AppError::ProjectNotFound(slug.to_string()))?
                    .id,
            ),
        };
        Ok((found_id, project))
    }

    pub(crate) fn require_workspace_admin(
        caller: &Principal,
        action: &'static str,
    ) -> Result<(), AppError> {
        caller.require(Capability::Administer, action)?;
        if caller.project.is_some() {
            return Err(AppError::Forbidden {
                role: caller.role,
                action,
                needed: Role::Admin,
            });
        }
        Ok(())
    }

    /// Creates a project in the caller's workspace.
    pub async fn create_project(
        &self,
        caller: &Principal,
        slug: ProjectSlug,
        name: &str,
    ) -> Result<Project, AppError> {
        Self::require_workspace_admin(caller, "create projects")?;
        let project = Project {
            id: ProjectId::from_uuid(self.ports.ids.uuid()),
            workspace: caller.workspace,
            name: display_name("name", name, slug.as_str())?,
            slug,
            created_at: self.ports.clock.now(),
            hotfix_patterns: None,
        };
        self.ports.projects.create(project.clone()).await?;
        Ok(project)
    }

    /// Sets a project's hotfix patterns (`None`: back to [`DEFAULT_HOTFIX_PATTERNS`]). They
    /// decide the rework of deployments whose events arrive from now on; deployments recorded
    /// before keep what was decided then.
    ///
    /// [`DEFAULT_HOTFIX_PATTERNS`]: shiplog_domain::dora::DEFAULT_HOTFIX_PATTERNS
    pub async fn set_hotfix_patterns(
        &self,
        caller: &Principal,
        lookup: &ProjectLookup,
        patterns: Option<Vec<String>>,
    ) -> Result<Project, AppError> {
        caller.require(Capability::Administer, "change a project's settings")?;
        let mut project = self.visible_project(caller, lookup).await?;
        let patterns = patterns.map(valid_hotfix_patterns).transpose()?;
        self.ports
            .projects
            .set_hotfix_patterns(caller.workspace, project.id, patterns.clone())
            .await?;
        project.hotfix_patterns = patterns;
        Ok(project)
    }

    /// A project's settings, for an administrator (a change that changes nothing).
    pub async fn project_settings(
        &self,
        caller: &Principal,
        lookup: &ProjectLookup,
    ) -> Result<Project, AppError> {
        caller.require(Capability::Administer, "change a project's settings")?;
        self.visible_project(caller, lookup).await
    }

    /// Creates a team in the caller's workspace.
    pub async fn create_team(
        &self,
        caller: &Principal,
        code: TeamCode,
        name: &str,
    ) -> Result<Team, AppError> {
        Self::require_workspace_admin(caller, "create teams")?;
        let team = Team {
            id: TeamId::from_uuid(self.ports.ids.uuid()),
            workspace: caller.workspace,
            name: display_name("name", name, code.as_str())?,
            code,
            created_at: self.ports.clock.now(),
        };
        self.ports.teams.create(team.clone()).await?;
        Ok(team)
    }
}

/// The most hotfix patterns a project may set.
pub const MAX_HOTFIX_PATTERNS: usize = 20;
/// The longest hotfix pattern, in characters.
pub const MAX_HOTFIX_PATTERN_LEN: usize = 100;

/// Trimmed, deduplicated patterns, each of 1 to [`MAX_HOTFIX_PATTERN_LEN`] characters of
/// printable text, at most [`MAX_HOTFIX_PATTERNS`] of them.
fn valid_hotfix_patterns(patterns: Vec<String>) -> Result<Vec<String>, AppError> {
    if patterns.len() > MAX_HOTFIX_PATTERNS {
        return Err(AppError::invalid(
            "hotfix_patterns",
            format!(
                "has {} patterns; send at most {MAX_HOTFIX_PATTERNS}",
                patterns.len()
            ),
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(patterns.len());
    for pattern in patterns {
        let pattern = pattern.trim().to_owned();
        if pattern.is_empty() || pattern.chars().count() > MAX_HOTFIX_PATTERN_LEN {
            return Err(AppError::invalid(
                "hotfix_patterns",
                format!(
                    "each pattern is 1 to {MAX_HOTFIX_PATTERN_LEN} characters, like \"hotfix/*\" (`*` matches any run of characters)"
                ),
            ));
        }
        // Printable: a control character matches no branch, and a line break would split the
        // pattern where the store keeps one per line.
        if pattern.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "hotfix_patterns",
                format!("{pattern:?} holds a control character: send printable text"),
            ));
        }
        if !kept.contains(&pattern) {
            kept.push(pattern);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::error::ErrorCode;
    use crate::ports::ProjectStoreError;
    use crate::testing::{TestPorts, admin, ids, ingester, project, workspace};

    fn with_master(ports: &mut TestPorts, key: &str) {
        let hash = KeyHash::of(key);
        ports
            .keys
            .expect_master_key_hash()
            .returning(move || Ok(Some(hash.clone())));
    }

    #[tokio::test]
    async fn a_missing_master_key_is_generated_once_and_only_its_hash_is_kept() {
        let stored = Arc::new(Mutex::new(None::<KeyHash>));
        let mut ports = TestPorts::new();
        let read = Arc::clone(&stored);
        ports
            .keys
            .expect_master_key_hash()
            .returning(move || Ok(read.lock().unwrap().clone()));
        let write = Arc::clone(&stored);
        ports
            .keys
            .expect_set_master_key_hash()
            .returning(move |hash, _| {
                *write.lock().unwrap() = Some(hash);
                Ok(())
            });
        ports.ids.expect_secret_bytes().returning(|| [9; 32]);
        ports.clock.expect_now().returning(crate::testing::now);
        let app = ports.app();
        let generated = app
            .ensure_master_key(None)
            .await
            .unwrap()
            .expect("generated on first start");
        assert_eq!(stored.lock().unwrap().clone(), Some(generated.hash()));
        assert_eq!(
            app.ensure_master_key(None)
                .await
                .unwrap()
                .map(|k| k.reveal().to_owned()),
            None,
            "second start"
        );
        assert!(
            app.authenticate_master(Some(generated.reveal()))
                .await
                .is_ok()
        );
        assert_eq!(
            app.authenticate_master(Some("wrong")).await.unwrap_err(),
            AppError::Unauthenticated(AuthFailure::InvalidApiKey)
        );
    }

    #[tokio::test]
    async fn admin_credentials_are_the_master_key_else_an_api_key() {
        let mut ports = TestPorts::new();
        with_master(&mut ports, "master-key-0123456789");
        ports.clock.expect_now().returning(crate::testing::now);
        ports.keys.expect_touch_key().returning(|_, _| Ok(()));
        ports.keys.expect_api_key_by_hash().returning(|hash| {
            Ok(
                (*hash == KeyHash::of("shiplog_admin")).then(|| ApiKeyRecord {
                    id: ApiKeyId::from_uuid(ids(7)),
                    workspace: workspace(),
                    name: "admin".into(),
                    role: Role::Admin,
                    project: None,
                    hash: hash.clone(),
                    hint: String::new(),
                    created_at: crate::testing::now(),
                    expires_at: None,
                    last_used_at: None,
                }),
            )
        });
        let app = ports.app();
        let master = app
            .authenticate_admin(Some("master-key-0123456789"))
            .await
            .unwrap();
        assert!(matches!(master, AdminCredentials::Master(_)));
        let key = app.authenticate_admin(Some("shiplog_admin")).await.unwrap();
        assert!(matches!(key, AdminCredentials::Key(ref p) if p.role == Role::Admin));
        assert_eq!(
            app.authenticate_admin(Some("neither")).await.unwrap_err(),
            AppError::Unauthenticated(AuthFailure::InvalidApiKey)
        );
        assert_eq!(
            app.authenticate_admin(None).await.unwrap_err(),
            AppError::Unauthenticated(AuthFailure::MissingCredentials)
        );
    }

    #[tokio::test]
    async fn a_configured_master_key_replaces_the_stored_one_and_must_be_long() {
        let mut ports = TestPorts::new();
        ports
            .keys
            .expect_set_master_key_hash()
            .withf(|hash, _| *hash == KeyHash::of("a-long-enough-master-key"))
            .times(1)
            .returning(|_, _| Ok(()));
        ports.clock.expect_now().returning(crate::testing::now);
        let app = ports.app();
        assert!(
            app.ensure_master_key(Some("a-long-enough-master-key"))
                .await
                .unwrap()
                .is_none()
        );
        let err = app.ensure_master_key(Some("short")).await.unwrap_err();
        assert!(
            matches!(
                err,
                AppError::InvalidField {
                    field: "SHIPLOG_ADMIN_KEY",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn api_keys_are_issued_once_and_stored_as_hashes() {
        let mut ports = TestPorts::new();
        with_master(&mut ports, "master-key-0123456789");
        ports.with_clock_and_ids();
        ports.with_project();
        ports.ids.expect_secret_bytes().returning(|| [0x42; 32]);
        ports.workspaces.expect_by_code().returning(|code| {
            Ok((code.as_str() == "acme").then(|| Workspace {
                id: workspace(),
                code: code.clone(),
                name: "Acme".into(),
                environment_limit: None,
                created_at: crate::testing::now(),
            }))
        });
        let saved = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&saved);
        ports.keys.expect_create_api_key().returning(move |record| {
            keep.lock().unwrap().push(record);
            Ok(())
        });
        let app = ports.app();
        let master = app
            .authenticate_master(Some("master-key-0123456789"))
            .await
            .unwrap();
        let acme = WorkspaceCode::parse("acme").unwrap();
        let issued = app
            .create_api_key(
                WorkspaceAdmin::Master(&master),
                &acme,
                CreateApiKey {
                    expires_at: None,
                    name: "ci".into(),
                    role: Role::Ingest,
                    project: Some(ProjectSlug::parse("my-project").unwrap()),
                },
            )
            .await
            .unwrap();
        assert!(issued.secret.reveal().starts_with("shiplog_4242"));
        let stored = saved.lock().unwrap().clone();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].hash, issued.secret.hash());
        assert_eq!(stored[0].project, Some(project().id));
        assert!(
            !format!("{:?}", stored[0]).contains(&issued.secret.reveal()[12..]),
            "no secret in the record"
        );

        let other = WorkspaceCode::parse("globex").unwrap();
        let err = app
            .create_api_key(
                WorkspaceAdmin::Key(&admin()),
                &other,
                CreateApiKey {
                    expires_at: None,
                    name: String::new(),
                    role: Role::Read,
                    project: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::WorkspaceNotFound);
        let err = app
            .create_api_key(
                WorkspaceAdmin::Key(&ingester()),
                &acme,
                CreateApiKey {
                    expires_at: None,
                    name: String::new(),
                    role: Role::Read,
                    project: None,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Forbidden { .. }));
    }

    #[tokio::test]
    async fn projects_and_teams_need_an_unscoped_admin_key() {
        let mut ports = TestPorts::new();
        ports.with_clock_and_ids();
        ports.projects.expect_create().returning(|p| {
            if p.slug.as_str() == "taken" {
                Err(ProjectStoreError::SlugTaken(p.slug))
            } else {
                Ok(())
            }
        });
        let app = ports.app();
        let created = app
            .create_project(&admin(), ProjectSlug::parse("web").unwrap(), "")
            .await
            .unwrap();
        assert_eq!(
            created.name, "web",
            "the slug names a project without a name"
        );
        let err = app
            .create_project(&admin(), ProjectSlug::parse("taken").unwrap(), "T")
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AlreadyExists);
        let mut scoped = admin();
        scoped.project = Some(ProjectId::from_uuid(ids(5)));
        let err = app
            .create_project(&scoped, ProjectSlug::parse("web2").unwrap(), "")
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Forbidden { .. }));
        let err = app
            .create_team(&ingester(), TeamCode::parse("eng").unwrap(), "")
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Forbidden { .. }));
    }
}
