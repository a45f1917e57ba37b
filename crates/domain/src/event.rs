//! Pipeline events: `build|test|deploy` × `started|completed`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::status::DeploymentStatus;

/// The pipeline stage an event reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Compiling and packaging.
    Build,
    /// Running test suites.
    Test,
    /// Putting a build into an environment. Only deploy events create deployments.
    Deploy,
}

/// Whether the stage began or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The stage began.
    Started,
    /// The stage ended (its status says how).
    Completed,
}

/// One of the six pipeline events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PipelineEvent {
    /// build, test or deploy.
    pub stage: Stage,
    /// started or completed.
    pub phase: Phase,
}

/// An event name that is not one of the six. Its message is the Clienwork-compatible
/// `Invalid event type: <given>`; [`PipelineEvent::VALID`] lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid event type: {given}")]
pub struct InvalidEvent {
    /// What was sent.
    pub given: String,
}

impl InvalidEvent {
    /// The valid event names, for error bodies.
    pub fn valid_events(&self) -> &'static [&'static str] {
        &PipelineEvent::VALID
    }
}

impl PipelineEvent {
    /// The six valid names, in the order the documentation lists them.
    pub const VALID: [&'static str; 6] = [
        "build.started",
        "build.completed",
        "test.started",
        "test.completed",
        "deploy.started",
        "deploy.completed",
    ];

    /// `deploy.started`.
    pub const DEPLOY_STARTED: Self = Self {
        stage: Stage::Deploy,
        phase: Phase::Started,
    };

    /// `deploy.completed`.
    pub const DEPLOY_COMPLETED: Self = Self {
        stage: Stage::Deploy,
        phase: Phase::Completed,
    };

    /// Reads `deploy.completed` and the like (trimmed, any case).
    pub fn parse(value: &str) -> Result<Self, InvalidEvent> {
        let invalid = || InvalidEvent {
            given: value.to_owned(),
        };
        let lower = value.trim().to_ascii_lowercase();
        let (stage, phase) = lower.split_once('.').ok_or_else(invalid)?;
        let stage = match stage {
            "build" => Stage::Build,
            "test" => Stage::Test,
            "deploy" => Stage::Deploy,
            _ => return Err(invalid()),
        };
        let phase = match phase {
            "started" => Phase::Started,
            "completed" => Phase::Completed,
            _ => return Err(invalid()),
        };
        Ok(Self { stage, phase })
    }

    /// The event's name (`deploy.completed`).
    pub const fn as_str(self) -> &'static str {
        match (self.stage, self.phase) {
            (Stage::Build, Phase::Started) => "build.started",
            (Stage::Build, Phase::Completed) => "build.completed",
            (Stage::Test, Phase::Started) => "test.started",
            (Stage::Test, Phase::Completed) => "test.completed",
            (Stage::Deploy, Phase::Started) => "deploy.started",
            (Stage::Deploy, Phase::Completed) => "deploy.completed",
        }
    }

    /// Whether this event creates or updates a deployment.
    pub const fn is_deploy(self) -> bool {
        matches!(self.stage, Stage::Deploy)
    }

    /// The status to assume when the event carries none: a started stage is running, a
    /// completed one with no status says nothing about success.
    pub const fn default_status(self) -> DeploymentStatus {
        match self.phase {
            Phase::Started => DeploymentStatus::Running,
            Phase::Completed => DeploymentStatus::Unknown,
        }
    }
}

impl fmt::Display for PipelineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for PipelineEvent {
    type Error = InvalidEvent;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PipelineEvent> for String {
    fn from(event: PipelineEvent) -> Self {
        event.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_six_events_round_trip() {
        for name in PipelineEvent::VALID {
            assert_eq!(PipelineEvent::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(
            PipelineEvent::parse(" Deploy.Completed "),
            Ok(PipelineEvent::DEPLOY_COMPLETED)
        );
    }

    #[test]
    fn an_invalid_event_names_itself_and_lists_the_valid_ones() {
        let err = PipelineEvent::parse("invalid").unwrap_err();
        assert_eq!(err.to_string(), "Invalid event type: invalid");
        assert_eq!(err.valid_events(), &PipelineEvent::VALID);
        for bad in ["deploy", "deploy.finished", "release.started", ".", ""] {
            assert!(PipelineEvent::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_deploy_events_touch_deployments() {
        assert!(PipelineEvent::DEPLOY_STARTED.is_deploy());
        assert!(!PipelineEvent::parse("build.completed").unwrap().is_deploy());
        assert_eq!(
            PipelineEvent::DEPLOY_STARTED.default_status(),
            DeploymentStatus::Running
        );
    }
}
