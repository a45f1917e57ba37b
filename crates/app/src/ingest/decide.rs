//! What a deploy event does to the deployment it names: [`decide`], the pure function the
//! store calls inside its write transaction with the row it loaded, and what it answers.

use shiplog_domain::dora::{ReworkReason, rework_signal};
use shiplog_domain::ids::Fingerprint;
use shiplog_domain::lifecycle::Lifecycle;
use shiplog_domain::reference;
use shiplog_domain::reference::{Reference, ReferenceKey};
use shiplog_domain::status::{DeploymentStatus, Provider};

use super::{DeploymentPlan, EventPlan};
use crate::ids::DeploymentId;
use crate::model::DeploymentFields;

/// A deployment as loaded by the store inside its transaction, for [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeployment {
    /// Its id.
    pub id: DeploymentId,
    /// Its status history, settled.
    pub lifecycle: Lifecycle,
    /// Who reported the current status.
    pub provider: Provider,
    /// Its descriptive fields.
    pub fields: DeploymentFields,
    /// Its references.
    pub references: Vec<Reference>,
    /// The fingerprint of the event that created it.
    pub payload_fingerprint: Fingerprint,
    /// Why it is rework by what it says of itself, as last decided.
    pub rework: Option<ReworkReason>,
}

/// A status change, for hooks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusTransition {
    /// The status before; `None` when the deployment is new.
    pub from: Option<DeploymentStatus>,
    /// The status after.
    pub to: DeploymentStatus,
}

/// What the store must write for a deploy event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The deployment's id.
    pub id: DeploymentId,
    /// Whether to insert (else update).
    pub create: bool,
    /// The settled status.
    pub lifecycle: Lifecycle,
    /// Who reported the settled status.
    pub provider: Provider,
    /// The merged fields.
    pub fields: DeploymentFields,
    /// The merged references (closing wins).
    pub references: Vec<Reference>,
    /// The status change this event caused, if any.
    pub transition: Option<StatusTransition>,
    /// References to mark deployed (if not already): the closing ones of a successful deployment.
    pub deployed_references: Vec<ReferenceKey>,
    /// Why it is rework by what it says of itself ([`rework_signal`] over the merged fields; a
    /// sender's mark is never lost).
    pub rework: Option<ReworkReason>,
}

/// What [`decide`] refuses: an exclusive idempotency key (Hivel's `deployment_id`) sent again
/// with another deployment's payload. The key is in the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("deployment id {0} was already used for a different deployment")]
pub struct IdempotencyConflict(pub String);

/// Decides what a deploy event does to its deployment. Pure: the store calls it inside its
/// transaction with the row it loaded by idempotency key.
pub fn decide(
    existing: Option<&StoredDeployment>,
    plan: &DeploymentPlan,
    event: &EventPlan,
) -> Result<Decision, IdempotencyConflict> {
    let decision = match existing {
        None => {
            let lifecycle = Lifecycle::new(&plan.observation);
            Decision {
                id: plan.new_id,
                create: true,
                transition: Some(StatusTransition {
                    from: None,
                    to: lifecycle.status,
                }),
                lifecycle,
                provider: event.status.provider,
                fields: plan.fields.clone(),
                references: plan.references.clone(),
                deployed_references: Vec::new(),
                rework: None,
            }
        }
        Some(stored) => {
            if plan.exclusive && stored.payload_fingerprint != event.fingerprint {
                return Err(IdempotencyConflict(plan.key.to_string()));
            }
            let step = stored.lifecycle.apply(&plan.observation);
            let observed = &plan.observation;
            let this_event_won = step.lifecycle.status == observed.status
                && step.lifecycle.status_at == observed.at
                && step.lifecycle.provider_status == observed.provider_status;
            let provider = if this_event_won {
                event.status.provider
            } else {
                stored.provider
            };
            let mut references = stored.references.clone();
            for r in &plan.references {
                reference::add(&mut references, r.key.clone(), r.closing);
            }
            Decision {
                id: stored.id,
                create: false,
                transition: step.status_changed_from.map(|from| StatusTransition {
                    from: Some(from),
                    to: step.lifecycle.status,
                }),
                lifecycle: step.lifecycle,
                provider,
                fields: plan.fields.clone().or(&stored.fields),
                references,
                deployed_references: Vec::new(),
                rework: None,
            }
        }
    };
    // A mark, once made by any event of the deployment, stays.
    let marked = plan.marked_rework
        || existing.is_some_and(|stored| stored.rework == Some(ReworkReason::Marked));
    let patterns: Vec<&str> = plan.hotfix_patterns.iter().map(String::as_str).collect();
    let rework = rework_signal(
        marked,
        decision.fields.branch.as_deref(),
        decision.fields.git_ref.as_deref(),
        decision.fields.commit_message.as_deref(),
        &patterns,
    );
    let deployed_references = if decision.lifecycle.status == DeploymentStatus::Success {
        decision
            .references
            .iter()
            .filter(|r| r.closing)
            .map(|r| r.key.clone())
            .collect()
    } else {
        Vec::new()
    };
    Ok(Decision {
        deployed_references,
        rework,
        ..decision
    })
}
