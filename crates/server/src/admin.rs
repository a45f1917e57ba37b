//! Admin subcommands: the admin API from the command line, against the database directly.
//! They run the same use cases as the HTTP routes, authenticated the same way (the master key, or
//! an admin API key), and print the same JSON.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use shiplog_app::App;
use shiplog_app::admin::{CreateApiKey, CreateWorkspace};
use shiplog_app::error::{AppError, AuthFailure};
use shiplog_domain::ids::{ProjectSlug, TeamCode, WorkspaceCode};
use shiplog_domain::key::Role;
use shiplog_domain::timestamp::Timestamp;
use shiplog_http::openapi::schemas;
use shiplog_server::open_app;

/// Where the data is and who asks.
#[derive(Debug, Args)]
pub(crate) struct Access {
    /// Database: a file path or sqlite://path for embedded SQLite, postgres://… for PostgreSQL.
    #[arg(
        long,
        env = "SHIPLOG_DATABASE_URL",
        default_value = "shiplog.db",
        hide_env_values = true,
        global = true
    )]
    database_url: String,
    /// The master key (for workspaces and keys).
    #[arg(long, env = "SHIPLOG_ADMIN_KEY", hide_env_values = true, global = true)]
    admin_key: Option<String>,
    /// An admin API key of the workspace (for projects and teams, or instead of the master key).
    #[arg(long, env = "SHIPLOG_KEY", hide_env_values = true, global = true)]
    key: Option<String>,
}

/// An admin action. The variants are the subcommands' names (`create-workspace`, …), hence the
/// shared prefix.
#[derive(Debug, Subcommand)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum Admin {
    /// Create a workspace (master key).
    CreateWorkspace {
        /// Its code, like `acme`.
        code: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// The most environments its projects may hold together.
        #[arg(long)]
        environment_limit: Option<u32>,
    },
    /// Create an API key of a workspace (master key, or an admin key of it); printed once.
    CreateKey(KeyArgs),
    /// Create a signing key for the signed endpoints (master key, or an admin key); printed once.
    CreateSigningKey(KeyArgs),
    /// Create a project (admin key).
    CreateProject {
        /// Its slug, like `my-project`.
        slug: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Create a team (admin key).
    CreateTeam {
        /// Its code, like `engineering`.
        code: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List every workspace (master key).
    ListWorkspaces,
    /// List a workspace's API and signing keys, never their secrets (master key, or an admin
    /// key of it).
    ListKeys {
        /// The workspace's code.
        workspace: String,
    },
    /// Revoke an API key (its id from list-keys); running servers refuse it within 5 s.
    RevokeKey {
        /// The workspace's code.
        workspace: String,
        /// The key's id.
        id: String,
    },
    /// Revoke a signing key (its id from list-keys, not its key_id); running servers refuse it
    /// within 5 s.
    RevokeSigningKey {
        /// The workspace's code.
        workspace: String,
        /// The key's id.
        id: String,
    },
    /// List the projects the key may see (SHIPLOG_KEY).
    ListProjects,
    /// List the workspace's teams (SHIPLOG_KEY).
    ListTeams,
}

/// What a new key is.
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// The workspace's code.
    workspace: String,
    /// admin, ingest or read (required for API keys; a signing key is `ingest` without it).
    #[arg(long)]
    role: Option<String>,
    /// A label.
    #[arg(long, default_value = "")]
    name: String,
    /// The one project the key is limited to.
    #[arg(long)]
    project: Option<String>,
    /// When the key stops working (RFC 3339, like 2027-01-01T00:00:00Z); never without it.
    #[arg(long)]
    expires_at: Option<String>,
}

fn parsed<T, E: std::fmt::Display>(field: &str, result: Result<T, E>) -> Result<T, String> {
    result.map_err(|e| format!("{field}: {e}"))
}

/// What the API would answer, as JSON: the API's own response types, so the two cannot differ.
fn shown(value: impl serde::Serialize) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| format!("cannot show the answer: {e}"))
}

fn failed(error: AppError) -> String {
    format!("{} ({})", error, error.code().as_str())
}

/// A refused key, said in the command line's terms (its variables and flags, not HTTP headers).
fn refused(error: AppError, which: &str) -> String {
    let code = error.code().as_str();
    match error {
        AppError::Unauthenticated(AuthFailure::MissingCredentials) => {
            format!("no key: set {which} ({code})")
        }
        AppError::Unauthenticated(AuthFailure::InvalidApiKey) => {
            format!("{which} is not a key of this server's database ({code})")
        }
        AppError::Unauthenticated(AuthFailure::ExpiredKey) => {
            format!("{which} has expired: ask a workspace admin for a new key ({code})")
        }
        other => failed(other),
    }
}

const MASTER: &str = "SHIPLOG_ADMIN_KEY (or --admin-key) to the master key";
const KEY: &str = "SHIPLOG_KEY (or --key) to an API key of the workspace";
const EITHER: &str =
    "SHIPLOG_ADMIN_KEY (the master key) or SHIPLOG_KEY (an admin API key of the workspace)";

impl KeyArgs {
    /// The request; `default_role` is used when `--role` is left out, else it is required.
    fn request(&self, default_role: Option<Role>) -> Result<(WorkspaceCode, CreateApiKey), String> {
        let role = match (&self.role, default_role) {
            (Some(role), _) => parsed("--role", Role::parse(role))?,
            (None, Some(role)) => role,
            (None, None) => return Err("--role is required: admin, ingest or read".to_owned()),
        };
        let expires_at = self
            .expires_at
            .as_deref()
            .map(|at| parsed("--expires-at", Timestamp::parse(at)))
            .transpose()?;
        Ok((
            parsed("workspace", WorkspaceCode::parse(&self.workspace))?,
            CreateApiKey {
                name: self.name.clone(),
                role,
                project: self
                    .project
                    .as_deref()
                    .map(|p| parsed("--project", ProjectSlug::parse(p)))
                    .transpose()?,
                expires_at,
            },
        ))
    }
}

async fn run(app: &App, access: &Access, action: Admin) -> Result<Value, String> {
    let master = || async {
        app.authenticate_master(access.admin_key.as_deref())
            .await
            .map_err(|e| refused(e, MASTER))
    };
    let principal = || async {
        app.authenticate(access.key.as_deref())
            .await
            .map_err(|e| refused(e, KEY))
    };
    // Keys may be issued with the master key, or else with an admin key.
    let admin = || async {
        app.authenticate_admin(access.admin_key.as_deref().or(access.key.as_deref()))
            .await
            .map_err(|e| refused(e, EITHER))
    };
    match action {
        Admin::CreateWorkspace {
            code,
            name,
            environment_limit,
        } => {
            let code = parsed("code", WorkspaceCode::parse(&code))?;
            let workspace = app
                .create_workspace(
                    &master().await?,
                    CreateWorkspace {
                        code,
                        name,
                        environment_limit,
                    },
                )
                .await
                .map_err(failed)?;
            shown(schemas::Workspace::from(workspace))
        }
        Admin::CreateKey(args) => {
            let (workspace, request) = args.request(None)?;
            let project = request.project.clone();
            let issued = app
                .create_api_key(admin().await?.as_admin(), &workspace, request)
                .await
                .map_err(failed)?;
            shown(schemas::IssuedApiKey::new(issued, project))
        }
        Admin::CreateSigningKey(args) => {
            let (workspace, request) = args.request(Some(Role::Ingest))?;
            let project = request.project.clone();
            let key = app
                .create_signing_key(admin().await?.as_admin(), &workspace, request)
                .await
                .map_err(failed)?;
            shown(schemas::IssuedSigningKey::new(key, project))
        }
        Admin::CreateProject { slug, name } => {
            let slug = parsed("slug", ProjectSlug::parse(&slug))?;
            let project = app
                .create_project(&principal().await?, slug, &name)
                .await
                .map_err(failed)?;
            shown(schemas::Project::from(project))
        }
        Admin::CreateTeam { code, name } => {
            let code = parsed("code", TeamCode::parse(&code))?;
            let team = app
                .create_team(&principal().await?, code, &name)
                .await
                .map_err(failed)?;
            shown(schemas::Team::from(team))
        }
        Admin::ListWorkspaces => {
            let workspaces = app
                .list_workspaces(&master().await?)
                .await
                .map_err(failed)?;
            shown(
                workspaces
                    .into_iter()
                    .map(schemas::Workspace::from)
                    .collect::<Vec<_>>(),
            )
        }
        Admin::ListKeys { workspace } => {
            let workspace = parsed("workspace", WorkspaceCode::parse(&workspace))?;
            let (api_keys, signing_keys) = app
                .list_keys(admin().await?.as_admin(), &workspace)
                .await
                .map_err(failed)?;
            Ok(json!({"api_keys": api_keys, "signing_keys": signing_keys}))
        }
        Admin::RevokeKey { workspace, id } => {
            let workspace = parsed("workspace", WorkspaceCode::parse(&workspace))?;
            app.revoke_key(admin().await?.as_admin(), &workspace, false, &id)
                .await
                .map_err(failed)?;
            Ok(json!({"revoked": id}))
        }
        Admin::RevokeSigningKey { workspace, id } => {
            let workspace = parsed("workspace", WorkspaceCode::parse(&workspace))?;
            app.revoke_key(admin().await?.as_admin(), &workspace, true, &id)
                .await
                .map_err(failed)?;
            Ok(json!({"revoked": id}))
        }
        Admin::ListProjects => {
            let projects = app
                .list_projects(&principal().await?)
                .await
                .map_err(failed)?;
            shown(
                projects
                    .into_iter()
                    .map(schemas::Project::from)
                    .collect::<Vec<_>>(),
            )
        }
        Admin::ListTeams => {
            let teams = app.list_teams(&principal().await?).await.map_err(failed)?;
            shown(
                teams
                    .into_iter()
                    .map(schemas::Team::from)
                    .collect::<Vec<_>>(),
            )
        }
    }
}

/// Runs one admin action and prints its JSON.
pub(crate) fn admin(access: Access, action: Admin) -> ExitCode {
    let result = actix_web::rt::System::new().block_on(async {
        let (app, _store) = open_app(&access.database_url, true)
            .await
            .map_err(|e| e.to_string())?;
        run(&app, &access, action).await
    });
    match result {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("shiplog: {message}");
            ExitCode::FAILURE
        }
    }
}
