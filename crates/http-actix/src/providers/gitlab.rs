//! GitLab's webhooks.
//!
//! `Deployment Hook` (a deployment's status: `created`, `running`, `success`,
//! `failed`, `canceled`, through the GitLab CI words; every status of one GitLab deployment
//! updates one shiplog deployment, keyed by the job that ran it), `Job Hook` (a job that
//! starts an environment is a deployment there, keyed by the job: with both hooks enabled, one
//! record) and `Pipeline Hook` (a pipeline of a commit as a build started or completed, so
//! lead time can start at the commit's first pipeline). An environment created on first use
//! takes its kind from GitLab's tier. Any other event is ignored, with the list of those read.

use serde_json::Value;
use shiplog_app::import::{Source, source_key_parts};
use shiplog_app::ingest::IngestCommand;
use shiplog_app::integrations::Translation;
use shiplog_app::model::DeploymentFields;
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::ids::CommitSha;
use shiplog_domain::status::{Provider, finished};
use shiplog_domain::timestamp::Timestamp;

use super::{
    application_of, deployed_branch, merged_commits, object, pushed_commits, record, text,
};

/// The project path of a GitLab project's web address (`https://gitlab.example/group/app` →
/// `group/app`).
pub(super) fn project_path(web_url: &str) -> Option<&str> {
    let rest = web_url.split_once("://")?.1;
    let path = rest.split_once('/')?.1.trim_end_matches('/');
    (!path.is_empty()).then_some(path)
}

/// The GitLab events read.
pub(super) const GITLAB_EVENTS: &str =
    "Deployment Hook, Job Hook, Pipeline Hook, Push Hook and Merge Request Hook";

/// The key of one GitLab job's deployment: a Deployment Hook names its job (`deployable_id`),
/// a Job Hook is the job, so both update one record when both are enabled (and an import of
/// the same job, `shiplog_app::import::Source::GitlabJob`).
pub(super) fn gitlab_job_key<'a>(project: &'a str, job: &'a str) -> Vec<&'a str> {
    source_key_parts(Source::GitlabJob, project, job, "")
}

/// Sets the kind of an environment created on first use from GitLab's tier (`production`,
/// `staging`, `testing`, `development`, `other`), instead of guessing it from the name.
pub(super) fn gitlab_tier(command: &mut IngestCommand, tier: Option<&str>) {
    if let Some(environment) = command.environment.as_mut() {
        environment.kind = tier.and_then(|t| EnvironmentKind::parse(t).ok());
    }
}

/// GitLab's times: RFC 3339, or `2021-04-28 21:50:00 +0200` and `2016-08-12 15:23:28 UTC`.
pub(super) fn gitlab_time(value: &str) -> Option<Timestamp> {
    if let Ok(at) = Timestamp::parse(value) {
        return Some(at);
    }
    let mut parts = value.split_whitespace();
    let (date, clock, zone) = (parts.next()?, parts.next()?, parts.next()?);
    let zone = match zone {
        "UTC" | "Z" => "Z".to_owned(),
        offset if offset.len() == 5 => format!("{}:{}", offset.get(..3)?, offset.get(3..)?),
        offset => offset.to_owned(),
    };
    Timestamp::parse(&format!("{date}T{clock}{zone}")).ok()
}

pub(super) fn gitlab(event: Option<&str>, body: &[u8]) -> Translation {
    let Some(event) = event.map(str::trim).filter(|e| !e.is_empty()) else {
        return Translation::Malformed(
            "no X-Gitlab-Event header: send the event name as GitLab does".into(),
        );
    };
    let payload = match object(body) {
        Ok(payload) => payload,
        Err(refusal) => return refusal,
    };
    match event {
        "Deployment Hook" => gitlab_deployment(&payload),
        "Pipeline Hook" => gitlab_pipeline(&payload),
        "Job Hook" => gitlab_job(&payload),
        "Push Hook" => {
            let git_ref = text(&payload, &["ref"]).unwrap_or("?");
            if text(&payload, &["after"]).is_some_and(|after| after.bytes().all(|b| b == b'0')) {
                return Translation::Acknowledge(format!(
                    "push deleting {git_ref}: nothing to record"
                ));
            }
            pushed_commits(&payload, format!("push to {git_ref}"))
        }
        "Merge Request Hook" => {
            let attributes = payload.get("object_attributes").unwrap_or(&Value::Null);
            let action = text(attributes, &["action"]).unwrap_or("?");
            if action != "merge" {
                return Translation::Ignore(format!(
                    "merge request {action}: only a merge is read"
                ));
            }
            let number = attributes
                .get("iid")
                .map_or_else(|| "?".to_owned(), Value::to_string);
            merged_commits(
                [
                    text(attributes, &["merge_commit_sha"]),
                    text(attributes, &["last_commit", "id"]),
                ],
                text(attributes, &["created_at"]).and_then(gitlab_time),
                None,
                format!(
                    "merge request !{number} merged (its merge and last commits count from its opening)"
                ),
            )
        }
        other => Translation::Ignore(format!(
            "GitLab event {other:?} is not read; shiplog reads {GITLAB_EVENTS}"
        )),
    }
}

pub(super) fn gitlab_deployment(payload: &Value) -> Translation {
    let Some(id) = payload.get("deployment_id").map(Value::to_string) else {
        return Translation::Malformed("deployment_id is missing".into());
    };
    let Some(status) = text(payload, &["status"]) else {
        return Translation::Malformed("status is missing".into());
    };
    let Some(environment) = text(payload, &["environment"]) else {
        return Translation::Malformed("environment is missing".into());
    };
    let application = match application_of(payload, &["project", "web_url"], true) {
        Ok(application) => application,
        Err(refusal) => return refusal,
    };
    let terminal = finished(Provider::GitlabCi, status);
    let project = text(payload, &["project", "path_with_namespace"]).unwrap_or("");
    let job = payload
        .get("deployable_id")
        .filter(|v| !v.is_null())
        .map(Value::to_string);
    let key = match &job {
        Some(job) => gitlab_job_key(project, job),
        None => source_key_parts(Source::GitlabDeployment, project, &id, ""),
    };
    let mut command = record(
        Provider::GitlabCi,
        application,
        Some(environment),
        terminal,
        status.to_owned(),
        Some(&key),
    );
    gitlab_tier(&mut command, text(payload, &["environment_tier"]));
    let at = text(payload, &["status_changed_at"]).and_then(gitlab_time);
    if terminal {
        command.finished_at = at;
    } else {
        command.started_at = at;
    }
    // The full commit is the last segment of commit_url; short_sha otherwise.
    let commit = text(payload, &["commit_url"])
        .and_then(|url| url.rsplit('/').next())
        .or_else(|| text(payload, &["short_sha"]))
        .and_then(|sha| CommitSha::parse(sha).ok());
    // Newer GitLab versions send the deployed `ref` (a branch or a tag, not said which).
    let git_ref = text(payload, &["ref"]);
    command.fields = DeploymentFields {
        external_id: Some(id),
        branch: deployed_branch(git_ref, commit.as_ref().map(CommitSha::as_str)),
        commit_sha: commit,
        commit_message: text(payload, &["commit_title"]).map(str::to_owned),
        git_ref: git_ref.map(str::to_owned),
        run_url: text(payload, &["deployable_url"]).map(str::to_owned),
        deployed_by: text(payload, &["user", "username"]).map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

/// A Job Hook: a job that starts an environment (`environment.action` `start`) is a deploy
/// there, one job attempt one deployment; any other job is ignored (its pipeline reports the
/// build).
pub(super) fn gitlab_job(payload: &Value) -> Translation {
    let name = text(payload, &["build_name"]).unwrap_or("");
    let environment = payload.get("environment").filter(|e| !e.is_null());
    let Some(environment_name) = environment.and_then(|e| text(e, &["name"])) else {
        return Translation::Ignore(format!(
            "job {name:?} has no environment; its Pipeline Hook reports the build"
        ));
    };
    let action = environment
        .and_then(|e| text(e, &["action"]))
        .unwrap_or("start");
    if action != "start" {
        return Translation::Ignore(format!(
            "job {name:?} does {action} on {environment_name}, which is not a deployment (only start is)"
        ));
    }
    let Some(id) = payload.get("build_id").map(Value::to_string) else {
        return Translation::Malformed("build_id is missing".into());
    };
    let Some(status) = text(payload, &["build_status"]) else {
        return Translation::Malformed("build_status is missing".into());
    };
    // Job Hooks of GitLab versions without a `project` object name the project only by its
    // `repository.homepage`: the same address, so the same application and job key as the
    // Deployment Hook of the job.
    let web_path: &[&str] = if text(payload, &["project", "web_url"]).is_some() {
        &["project", "web_url"]
    } else {
        &["repository", "homepage"]
    };
    let application = match application_of(payload, web_path, true) {
        Ok(application) => application,
        Err(refusal) => return refusal,
    };
    let web_url = text(payload, web_path);
    let terminal = finished(Provider::GitlabCi, status);
    let project = text(payload, &["project", "path_with_namespace"])
        .or_else(|| web_url.and_then(project_path))
        .unwrap_or("");
    let mut command = record(
        Provider::GitlabCi,
        application,
        Some(environment_name),
        terminal,
        status.to_owned(),
        Some(&gitlab_job_key(project, &id)),
    );
    gitlab_tier(
        &mut command,
        environment.and_then(|e| text(e, &["deployment_tier"])),
    );
    let time = |field: &str| {
        text(payload, &[&format!("{field}_iso")])
            .or_else(|| text(payload, &[field]))
            .and_then(gitlab_time)
    };
    command.started_at = time("build_started_at").or_else(|| time("build_created_at"));
    if terminal {
        command.finished_at = time("build_finished_at");
    }
    let tag = payload.get("tag").and_then(Value::as_bool).unwrap_or(false);
    let git_ref = text(payload, &["ref"]);
    command.fields = DeploymentFields {
        external_id: Some(id.clone()),
        commit_sha: text(payload, &["sha"]).and_then(|s| CommitSha::parse(s).ok()),
        commit_message: text(payload, &["commit", "message"]).map(str::to_owned),
        git_ref: git_ref.map(str::to_owned),
        branch: git_ref.filter(|_| !tag).map(str::to_owned),
        run_url: web_url.map(|web| format!("{}/-/jobs/{id}", web.trim_end_matches('/'))),
        deployed_by: text(payload, &["user", "username"])
            .or_else(|| text(payload, &["user", "name"]))
            .map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

pub(super) fn gitlab_pipeline(payload: &Value) -> Translation {
    let attributes = payload.get("object_attributes").unwrap_or(&Value::Null);
    let Some(status) = text(attributes, &["status"]) else {
        return Translation::Malformed("object_attributes.status is missing".into());
    };
    let Some(sha) = text(attributes, &["sha"]).and_then(|s| CommitSha::parse(s).ok()) else {
        return Translation::Malformed("object_attributes.sha is missing or not a commit".into());
    };
    let application = match application_of(payload, &["project", "web_url"], true) {
        Ok(application) => application,
        Err(refusal) => return refusal,
    };
    let terminal = finished(Provider::GitlabCi, status);
    let mut command = record(
        Provider::GitlabCi,
        application,
        None,
        terminal,
        status.to_owned(),
        None,
    );
    command.started_at = text(attributes, &["created_at"]).and_then(gitlab_time);
    if terminal {
        command.finished_at = text(attributes, &["finished_at"]).and_then(gitlab_time);
    }
    let tag = attributes
        .get("tag")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let git_ref = text(attributes, &["ref"]);
    command.fields = DeploymentFields {
        external_id: attributes.get("id").map(Value::to_string),
        commit_sha: Some(sha),
        commit_message: text(payload, &["commit", "message"]).map(str::to_owned),
        commit_timestamp: text(payload, &["commit", "timestamp"]).and_then(gitlab_time),
        git_ref: git_ref.map(str::to_owned),
        branch: git_ref.filter(|_| !tag).map(str::to_owned),
        run_url: text(attributes, &["url"]).map(str::to_owned),
        deployed_by: text(payload, &["user", "username"]).map(str::to_owned),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::providers::tests::command;

    #[test]
    fn a_gitlab_project_path_comes_from_its_web_address() {
        assert_eq!(
            project_path("http://192.168.64.1:3005/gitlab-org/gitlab-test"),
            Some("gitlab-org/gitlab-test")
        );
        assert_eq!(project_path("https://gitlab.example/a/b/c/"), Some("a/b/c"));
        assert_eq!(project_path("https://gitlab.example/"), None);
        assert_eq!(project_path("gitlab.example"), None);
    }

    #[test]
    fn gitlab_times_read_in_every_spelling() {
        for (given, expected) in [
            ("2021-04-28 21:50:00 +0200", "2021-04-28T19:50:00Z"),
            ("2016-08-12 15:23:28 UTC", "2016-08-12T15:23:28Z"),
            ("2016-08-12T17:23:21+02:00", "2016-08-12T15:23:21Z"),
        ] {
            assert_eq!(
                gitlab_time(given).unwrap().to_rfc3339(),
                expected,
                "{given}"
            );
        }
        assert!(gitlab_time("yesterday").is_none());
    }

    #[test]
    fn a_gitlab_pipeline_is_a_build_of_its_commit() {
        let body = serde_json::json!({
            "object_kind": "pipeline",
            "object_attributes": {"id": 31, "ref": "main", "tag": false, "status": "success",
                "sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
                "created_at": "2016-08-12 15:23:28 UTC", "finished_at": "2016-08-12 15:26:29 UTC",
                "url": "http://example.com/gitlab-org/gitlab-test/-/pipelines/31"},
            "user": {"username": "root"},
            "project": {"web_url": "http://example.com/gitlab-org/gitlab-test"},
            "commit": {"message": "test\n", "timestamp": "2016-08-12T17:23:21+02:00"},
        });
        let c = command(gitlab(Some("Pipeline Hook"), body.to_string().as_bytes()));
        assert_eq!(c.event.to_string(), "build.completed");
        assert_eq!(c.fields.branch.as_deref(), Some("main"));
        assert_eq!(
            c.fields.commit_timestamp.unwrap().to_rfc3339(),
            "2016-08-12T15:23:21Z"
        );
        assert!(
            matches!(gitlab(Some("Issue Hook"), b"{}"), Translation::Ignore(r) if r.contains("Deployment Hook"))
        );
        // A push with no commits records nothing.
        assert!(matches!(
            gitlab(Some("Push Hook"), b"{}"),
            Translation::Acknowledge(_)
        ));
    }
}
