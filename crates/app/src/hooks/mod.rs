//! Outgoing hooks: templated HTTP requests sent when a deployment changes status.
//!
//! A hook belongs to a project and may be narrowed to one application and one environment.
//! Each status change that raises one of a hook's events gets one delivery, written in the same
//! transaction as the change (the store's outbox). [`App::deliver_due`] is one round of the
//! delivery worker: it leases due deliveries, renders their templates ([`template`]), signs
//! them (Standard Webhooks), sends them through the [`crate::ports::HookSender`] port and
//! records every attempt, retrying on the domain's schedule.
//!
//! Secrets (template `secrets`, header values, the signing secret) are stored but never shown
//! again after creation, and never appear in `Debug` output.

use std::collections::BTreeMap;

use shiplog_domain::hook::HookEvent;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode};
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::ids::{ApplicationId, DeliveryId, EnvironmentId, HookId};
use crate::model::{Application, Project, ProjectLookup};

pub mod cost;
pub mod presets;
mod records;
pub mod template;
mod worker;

pub use records::{
    Attempt, AttemptRecord, ClaimedDelivery, CreatedHook, Delivery, DeliveryClaim, DeliveryOutcome,
    DeliveryStatus, DeliverySubject, HeaderView, Hook, HookFilter, HookHeader, HookInput, HookList,
    HookMethod, HookPage, HookRequest, HookSettingsView, HookView, MAX_DELIVERIES_LISTED,
    MAX_HEADERS, MAX_HOOKS_PER_PROJECT, MAX_NAME_LEN, OutgoingRequest, REDACTED,
    RESPONSE_BODY_KEPT, ScopeRef, SecretText, SendResult,
};
pub use worker::{MAX_IN_FLIGHT, MAX_IN_FLIGHT_PER_WORKSPACE, TEST_EVENT, WorkerSettings};

impl App {
    /// Creates a hook in a project (admin keys only). Templates are checked against the
    /// documented variables now, so a typo is a 400 here rather than an empty string later.
    pub async fn create_hook(
        &self,
        caller: &Principal,
        project: ProjectLookup,
        input: HookInput,
    ) -> Result<CreatedHook, AppError> {
        caller.require(Capability::Administer, "manage hooks")?;
        let project = self.visible_project(caller, &project).await?;
        let now = self.ports.clock.now();
        let signing_secret = self.ports.signer.new_secret(self.ports.ids.secret_bytes());
        let id = HookId::from_uuid(self.ports.ids.uuid());
        let hook = self
            .build_hook(
                caller,
                &project,
                input,
                None,
                id,
                SecretText::new(signing_secret),
                now,
            )
            .await?;
        if !self
            .ports
            .hooks
            .create_hook(hook.clone(), MAX_HOOKS_PER_PROJECT)
            .await?
        {
            return Err(AppError::HookLimitReached {
                limit: MAX_HOOKS_PER_PROJECT,
            });
        }
        self.audit_hook(caller, crate::audit::AuditAction::HookCreated, &hook)
            .await;
        Ok(CreatedHook {
            hook: HookView::from(&hook),
            signing_secret: hook.signing_secret.reveal().to_owned(),
        })
    }

    async fn audit_hook(&self, caller: &Principal, action: crate::audit::AuditAction, hook: &Hook) {
        self.audit(
            caller.origin(),
            Some(caller.workspace),
            action,
            crate::audit::AuditTarget {
                kind: "hook",
                id: hook.id.to_string(),
                name: Some(hook.name.clone()),
            },
        )
        .await;
    }

    /// Devopness-compatible creation: `POST /pipelines/{pipeline_id}/hooks/outgoing`, where the
    /// pipeline is an application (by id); the hook is limited to that application.
    pub async fn create_pipeline_hook(
        &self,
        caller: &Principal,
        pipeline: &str,
        mut input: HookInput,
    ) -> Result<CreatedHook, AppError> {
        caller.require(Capability::Administer, "manage hooks")?;
        let application = self.pipeline(caller, pipeline).await?;
        input.application = Some(application.code);
        self.create_hook(caller, ProjectLookup::Id(application.project), input)
            .await
    }

    /// Devopness-compatible listing: the hooks limited to one application (pipeline).
    pub async fn list_pipeline_hooks(
        &self,
        caller: &Principal,
        pipeline: &str,
    ) -> Result<Vec<HookView>, AppError> {
        caller.require(Capability::Read, "read hooks")?;
        let application = self.pipeline(caller, pipeline).await?;
        let hooks = self
            .ports
            .hooks
            .hooks(
                caller.workspace,
                HookFilter {
                    project: Some(application.project),
                    application: Some(application.id),
                    environment: None,
                },
            )
            .await?;
        Ok(hooks.iter().map(HookView::from).collect())
    }

    /// The applications of a project, by code: where users find an application's id, the
    /// Devopness pipeline id.
    pub async fn list_applications(
        &self,
        caller: &Principal,
        project: ProjectLookup,
    ) -> Result<Vec<Application>, AppError> {
        caller.require(Capability::Read, "read applications")?;
        let project = self.visible_project(caller, &project).await?;
        Ok(self
            .ports
            .applications
            .list(caller.workspace, project.id)
            .await?)
    }

    /// Stores (or replaces) an application's source-provider credential, which
    /// `application.source_provider.access_token` renders in its hooks (a hook's own
    /// `access_token` secret wins). Admin only; the token is never returned or logged.
    pub async fn set_source_provider(
        &self,
        caller: &Principal,
        application: &str,
        provider: &str,
        access_token: SecretText,
    ) -> Result<(), AppError> {
        caller.require(Capability::Administer, "store source-provider credentials")?;
        let not_found = || AppError::ApplicationIdNotFound(application.to_owned());
        let id = ApplicationId::parse(application).ok_or_else(not_found)?;
        let found = self
            .ports
            .applications
            .by_id(caller.workspace, id)
            .await?
            .filter(|a| caller.sees(a.project))
            .ok_or_else(not_found)?;
        let provider = provider.trim().to_ascii_lowercase();
        if provider.is_empty()
            || provider.len() > 40
            || !provider
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AppError::invalid(
                "provider",
                "send the provider's name, like \"github\", \"gitlab\" or \"bitbucket\"",
            ));
        }
        let token = access_token.reveal();
        if token.trim().is_empty() || token.len() > 4096 {
            return Err(AppError::invalid(
                "access_token",
                "send the token, at most 4096 characters",
            ));
        }
        if token.chars().any(|c| c.is_control()) {
            return Err(AppError::invalid(
                "access_token",
                "holds a control character (a line break?): send the token alone",
            ));
        }
        if self
            .ports
            .applications
            .set_source_provider(caller.workspace, found.id, provider, access_token)
            .await?
        {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// A project's hooks, oldest first, optionally only those limited to an application or
    /// environment: at most `limit` (default and most [`MAX_HOOKS_PER_PROJECT`], so a project's
    /// hooks fit one page unless a smaller one is asked for), from the hook after `after`.
    pub async fn list_hooks(
        &self,
        caller: &Principal,
        project: ProjectLookup,
        application: Option<ApplicationCode>,
        environment: Option<EnvironmentCode>,
        page: HookPage,
    ) -> Result<HookList, AppError> {
        caller.require(Capability::Read, "read hooks")?;
        let limit = page.limit.unwrap_or(MAX_HOOKS_PER_PROJECT);
        if limit == 0 || limit > MAX_HOOKS_PER_PROJECT {
            return Err(AppError::invalid(
                "limit",
                format!("must be from 1 to {MAX_HOOKS_PER_PROJECT}"),
            ));
        }
        let project = self.visible_project(caller, &project).await?;
        let (application, environment) = self
            .scope_ids(caller, &project, application, environment)
            .await?;
        let hooks = self
            .ports
            .hooks
            .hooks(
                caller.workspace,
                HookFilter {
                    project: Some(project.id),
                    application: application.map(|a| a.id),
                    environment: environment.map(|e| e.id),
                },
            )
            .await?;
        let start = match page.after.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => 0,
            Some(after) => hooks
                .iter()
                .position(|h| h.id.to_string() == after)
                .map(|i| i + 1)
                .ok_or_else(|| {
                    AppError::invalid(
                        "after",
                        "names no hook of this listing: send the id of the last hook of the previous page",
                    )
                })?,
        };
        let rest = hooks.get(start..).unwrap_or_default();
        let take = usize::try_from(limit).unwrap_or(usize::MAX).min(rest.len());
        let items: Vec<HookView> = rest.iter().take(take).map(HookView::from).collect();
        let next_after = (rest.len() > take)
            .then(|| items.last().map(|h| h.id.to_string()))
            .flatten();
        Ok(HookList { items, next_after })
    }

    /// One hook.
    pub async fn get_hook(&self, caller: &Principal, id: &str) -> Result<HookView, AppError> {
        caller.require(Capability::Read, "read hooks")?;
        Ok(HookView::from(&self.visible_hook(caller, id).await?))
    }

    /// Replaces a hook's definition. Secrets left out are kept; header values must be sent
    /// again (they are never shown, so they cannot be edited in place).
    pub async fn replace_hook(
        &self,
        caller: &Principal,
        id: &str,
        input: HookInput,
    ) -> Result<HookView, AppError> {
        caller.require(Capability::Administer, "manage hooks")?;
        let old = self.visible_hook(caller, id).await?;
        let project = self
            .visible_project(caller, &ProjectLookup::Id(old.project.id))
            .await?;
        let mut hook = self
            .build_hook(
                caller,
                &project,
                input,
                Some(&old.secrets),
                old.id,
                old.signing_secret.clone(),
                self.ports.clock.now(),
            )
            .await?;
        hook.created_at = old.created_at;
        if !self.ports.hooks.update_hook(hook.clone()).await? {
            return Err(AppError::HookNotFound(id.to_owned()));
        }
        self.audit_hook(caller, crate::audit::AuditAction::HookReplaced, &hook)
            .await;
        Ok(HookView::from(&hook))
    }

    /// Enables or disables a hook. Enabling clears an automatic disable (`410 Gone`); deliveries
    /// left pending resume.
    pub async fn set_hook_enabled(
        &self,
        caller: &Principal,
        id: &str,
        enabled: bool,
    ) -> Result<HookView, AppError> {
        caller.require(Capability::Administer, "manage hooks")?;
        let mut hook = self.visible_hook(caller, id).await?;
        hook.enabled = enabled;
        if enabled {
            hook.disabled_reason = None;
        }
        hook.updated_at = self.ports.clock.now();
        if !self.ports.hooks.update_hook(hook.clone()).await? {
            return Err(AppError::HookNotFound(id.to_owned()));
        }
        let action = if enabled {
            crate::audit::AuditAction::HookEnabled
        } else {
            crate::audit::AuditAction::HookDisabled
        };
        self.audit_hook(caller, action, &hook).await;
        Ok(HookView::from(&hook))
    }

    /// Checks every enabled hook against this release's template rules; the server runs it at
    /// start. A hook an older release accepted that no longer passes (a template that could
    /// build more than the budget, say) would fail every delivery: it is disabled instead, with
    /// the reason in `disabled_reason`, for an admin to fix and enable again. Returns the hooks
    /// disabled, with why.
    pub async fn check_stored_hooks(&self) -> Result<Vec<(HookId, String)>, AppError> {
        let mut disabled = Vec::new();
        for workspace in self.ports.workspaces.list().await? {
            let hooks = self
                .ports
                .hooks
                .hooks(workspace.id, HookFilter::default())
                .await?;
            for mut hook in hooks.into_iter().filter(|h| h.enabled) {
                let token = self.application_has_token(&hook).await?;
                let sample = template::Variables::sample(&hook, &self.public_url, token);
                let checked = hook.clone();
                let verdict = self
                    .offload(move || template::validate(&checked, &sample, token).map(drop))
                    .await?;
                let Err(error) = verdict else { continue };
                let reason = format!(
                    "disabled when the server started: its templates no longer pass this \
                     release's checks ({error}); fix them (PUT /api/v1/hooks/{{id}}) and enable it"
                );
                hook.enabled = false;
                hook.disabled_reason = Some(reason.clone());
                hook.updated_at = self.ports.clock.now();
                self.ports.hooks.update_hook(hook.clone()).await?;
                disabled.push((hook.id, reason));
            }
        }
        Ok(disabled)
    }

    /// Deletes a hook and its deliveries.
    pub async fn delete_hook(&self, caller: &Principal, id: &str) -> Result<(), AppError> {
        caller.require(Capability::Administer, "manage hooks")?;
        let hook = self.visible_hook(caller, id).await?;
        if self
            .ports
            .hooks
            .delete_hook(caller.workspace, hook.id)
            .await?
        {
            self.audit_hook(caller, crate::audit::AuditAction::HookDeleted, &hook)
                .await;
            Ok(())
        } else {
            Err(AppError::HookNotFound(id.to_owned()))
        }
    }

    /// The newest deliveries of a hook (at most `limit`, default 50, at most 100).
    pub async fn list_deliveries(
        &self,
        caller: &Principal,
        hook: &str,
        limit: Option<u32>,
    ) -> Result<Vec<Delivery>, AppError> {
        caller.require(Capability::Read, "read hooks")?;
        let hook = self.visible_hook(caller, hook).await?;
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > MAX_DELIVERIES_LISTED {
            return Err(AppError::invalid(
                "limit",
                format!("use a number from 1 to {MAX_DELIVERIES_LISTED}"),
            ));
        }
        Ok(self
            .ports
            .hooks
            .deliveries(caller.workspace, hook.id, limit)
            .await?)
    }

    /// Sends a delivery again: it becomes pending, due now, with a fresh retry schedule.
    pub async fn redeliver(&self, caller: &Principal, id: &str) -> Result<Delivery, AppError> {
        caller.require(Capability::Administer, "manage hooks")?;
        let delivery = self.visible_delivery(caller, id).await?;
        if delivery.deployment.is_none() {
            return Err(AppError::invalid(
                "delivery",
                "a test send cannot be redelivered: send another test (POST /api/v1/hooks/{id}/test)",
            ));
        }
        let now = self.ports.clock.now();
        if !self
            .ports
            .hooks
            .redeliver(caller.workspace, delivery.id, now)
            .await?
        {
            return Err(AppError::DeliveryNotFound(id.to_owned()));
        }
        self.visible_delivery(caller, id).await
    }

    async fn visible_delivery(&self, caller: &Principal, id: &str) -> Result<Delivery, AppError> {
        let not_found = || AppError::DeliveryNotFound(id.to_owned());
        let delivery_id = DeliveryId::parse(id).ok_or_else(not_found)?;
        let delivery = self
            .ports
            .hooks
            .delivery(caller.workspace, delivery_id)
            .await?
            .ok_or_else(not_found)?;
        // The hook decides visibility (a project-limited key sees its project's hooks only);
        // a backend failure stays a backend failure.
        match self.visible_hook(caller, &delivery.hook.to_string()).await {
            Err(AppError::HookNotFound(_)) => return Err(not_found()),
            other => other?,
        };
        Ok(delivery)
    }

    pub(crate) async fn visible_hook(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Hook, AppError> {
        let not_found = || AppError::HookNotFound(id.to_owned());
        let hook_id = HookId::parse(id).ok_or_else(not_found)?;
        let hook = self
            .ports
            .hooks
            .hook(caller.workspace, hook_id)
            .await?
            .ok_or_else(not_found)?;
        if caller.sees(hook.project.id) {
            Ok(hook)
        } else {
            Err(not_found())
        }
    }

    async fn pipeline(&self, caller: &Principal, pipeline: &str) -> Result<Application, AppError> {
        let not_found = || AppError::PipelineNotFound(pipeline.to_owned());
        let id = ApplicationId::parse(pipeline).ok_or_else(not_found)?;
        let application = self
            .ports
            .applications
            .by_id(caller.workspace, id)
            .await?
            .ok_or_else(not_found)?;
        if caller.sees(application.project) {
            Ok(application)
        } else {
            Err(not_found())
        }
    }

    async fn scope_ids(
        &self,
        caller: &Principal,
        project: &Project,
        application: Option<ApplicationCode>,
        environment: Option<EnvironmentCode>,
    ) -> Result<
        (
            Option<ScopeRef<ApplicationId, ApplicationCode>>,
            Option<ScopeRef<EnvironmentId, EnvironmentCode>>,
        ),
        AppError,
    > {
        let application = match application {
            None => None,
            Some(code) => {
                let found = self
                    .ports
                    .applications
                    .get(caller.workspace, project.id, &code)
                    .await?
                    .ok_or_else(|| AppError::ApplicationNotFound(code.clone()))?;
                Some(ScopeRef { id: found.id, code })
            }
        };
        let environment = match environment {
            None => None,
            Some(code) => {
                let found = self
                    .ports
                    .environments
                    .get(caller.workspace, &code)
                    .await?
                    .ok_or_else(|| AppError::EnvironmentNotFound(code.clone()))?;
                Some(ScopeRef { id: found.id, code })
            }
        };
        Ok((application, environment))
    }

    /// Whether the hook's application (if it is scoped to one) has a stored source-provider
    /// token for `application.source_provider.access_token`.
    pub(crate) async fn application_has_token(&self, hook: &Hook) -> Result<bool, AppError> {
        Ok(match &hook.application {
            Some(application) => self
                .ports
                .applications
                .by_id(hook.workspace, application.id)
                .await?
                .is_some_and(|a| a.source_provider.is_some()),
            None => false,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn build_hook(
        &self,
        caller: &Principal,
        project: &Project,
        input: HookInput,
        kept_secrets: Option<&BTreeMap<String, SecretText>>,
        id: HookId,
        signing_secret: SecretText,
        now: Timestamp,
    ) -> Result<Hook, AppError> {
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(AppError::invalid(
                "name",
                format!("give the hook a name of 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        AppError::check_line("name", &name)?;
        let (application, environment) = self
            .scope_ids(caller, project, input.application, input.environment)
            .await?;
        let mut secrets: BTreeMap<String, SecretText> = match input.secrets {
            Some(given) => given
                .into_iter()
                .map(|(k, v)| (k, SecretText::new(v)))
                .collect(),
            None => kept_secrets.cloned().unwrap_or_default(),
        };
        let mut request = HookRequest {
            method: input
                .method
                .as_deref()
                .map(HookMethod::parse)
                .transpose()?
                .unwrap_or_default(),
            target_url: input.target_url.unwrap_or_default().trim().to_owned(),
            headers: input
                .headers
                .into_iter()
                .map(|(name, value)| HookHeader {
                    name: name.trim().to_owned(),
                    value: SecretText::new(value),
                })
                .collect(),
            body: input.body,
        };
        let mut events = input.events;
        if let Some(preset) = input.preset {
            presets::apply(preset, &mut request, &mut secrets, &mut events)?;
        }
        if request.target_url.is_empty() {
            return Err(AppError::MissingField {
                field: "target_url",
                hint: "the URL to send to (a template), or a preset",
            });
        }
        let events = parse_events(&events)?;
        check_headers(&request.headers)?;
        let hook = Hook {
            id,
            workspace: caller.workspace,
            project: ScopeRef {
                id: project.id,
                code: project.slug.clone(),
            },
            application,
            environment,
            name,
            action_type: input
                .action_type
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "deploy".to_owned()),
            events,
            request,
            secrets,
            signing_secret,
            enabled: input.enabled.unwrap_or(true),
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        let application_token = self.application_has_token(&hook).await?;
        let sample = template::Variables::sample(&hook, &self.public_url, application_token);
        let checked = hook.clone();
        let rendered = self
            .offload(move || template::validate(&checked, &sample, application_token))
            .await??;
        self.ports
            .sender
            .check_target(rendered.url.reveal())
            .map_err(|why| AppError::invalid("target_url", why))?;
        Ok(hook)
    }
}

fn parse_events(names: &[String]) -> Result<Vec<HookEvent>, AppError> {
    if names.is_empty() {
        return Err(AppError::MissingField {
            field: "trigger_when.events",
            hint: "at least one event, e.g. [\"action.started\", \"action.completed\", \"action.failed\"]",
        });
    }
    let mut events = Vec::with_capacity(names.len());
    for name in names {
        let event: HookEvent =
            name.parse()
                .map_err(|e: shiplog_domain::hook::UnknownHookEvent| {
                    AppError::invalid("trigger_when.events", e.to_string())
                })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

fn check_headers(headers: &[HookHeader]) -> Result<(), AppError> {
    if headers.len() > MAX_HEADERS {
        return Err(AppError::invalid(
            "settings.request_headers",
            format!("send at most {MAX_HEADERS} headers"),
        ));
    }
    for header in headers {
        let valid_name = !header.name.is_empty()
            && header
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(AppError::invalid(
                "settings.request_headers",
                format!(
                    "{:?} is not a valid header name: use letters, digits and - (e.g. Authorization)",
                    header.name
                ),
            ));
        }
        let lower = header.name.to_ascii_lowercase();
        let hop_by_hop = lower.starts_with("proxy-")
            || matches!(
                lower.as_str(),
                "connection" | "transfer-encoding" | "upgrade" | "te" | "keep-alive" | "expect"
            );
        if hop_by_hop {
            return Err(AppError::invalid(
                "settings.request_headers",
                format!(
                    "{} is a hop-by-hop header, which a webhook may not set: remove it",
                    header.name
                ),
            ));
        }
        if header.value.reveal().contains('\0') {
            return Err(AppError::invalid(
                "settings.request_headers",
                format!(
                    "the value of {} holds a NUL character: remove it",
                    header.name
                ),
            ));
        }
        if lower.starts_with("webhook-") || matches!(lower.as_str(), "host" | "content-length") {
            return Err(AppError::invalid(
                "settings.request_headers",
                format!(
                    "{} is set by shiplog on every delivery: remove it",
                    header.name
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
