//! Jenkins' Notification plugin.
//!
//! The plugin's JSON (`name`, `build.number`, `build.phase`,
//! `build.status`, `build.full_url`, `build.scm.commit`, `build.scm.branch`, `build.scm.url`):
//! a job named in the integration's `settings.deploy_jobs` (`{"job name": "environment"}`) is a
//! deploy to that environment, any other job a build. `QUEUED`/`STARTED` start it,
//! `COMPLETED` ends it with its status; `FINALIZED` repeats `COMPLETED` and is ignored. One
//! Jenkins build is one shiplog deployment or build, keyed by the job and the build number.

use serde_json::Value;
use shiplog_app::ingest::ApplicationRef;
use shiplog_app::integrations::Translation;
use shiplog_app::model::DeploymentFields;
use shiplog_domain::ids::CommitSha;
use shiplog_domain::status::Provider;
use shiplog_domain::timestamp::Timestamp;

use super::{application_of, object, record, text};

pub(super) fn jenkins(settings: &Value, body: &[u8]) -> Translation {
    let payload = match object(body) {
        Ok(payload) => payload,
        Err(refusal) => return refusal,
    };
    let Some(job) = text(&payload, &["name"]) else {
        return Translation::Malformed("name (the job) is missing".into());
    };
    let build = payload.get("build").unwrap_or(&Value::Null);
    let Some(number) = build.get("number").map(Value::to_string) else {
        return Translation::Malformed("build.number is missing".into());
    };
    let Some(phase) = text(build, &["phase"]).map(str::to_ascii_uppercase) else {
        return Translation::Malformed("build.phase is missing".into());
    };
    let completed = match phase.as_str() {
        "QUEUED" | "STARTED" => false,
        "COMPLETED" => true,
        "FINALIZED" => {
            return Translation::Ignore(format!(
                "{job} #{number} FINALIZED: repeats COMPLETED, which was recorded"
            ));
        }
        other => {
            return Translation::Malformed(format!(
                "build.phase {other:?} is not one of QUEUED, STARTED, COMPLETED, FINALIZED"
            ));
        }
    };
    // A job in a folder or a multibranch project sends its short name (`main`); its `url`
    // (`job/shop/job/main/`) gives the full name (`shop/main`), which `deploy_jobs` may name
    // instead, and which tells the jobs of two folders apart.
    let full = full_job_name(text(&payload, &["url"])).unwrap_or_else(|| job.to_owned());
    let deploy_jobs = settings.get("deploy_jobs");
    let environment = [full.as_str(), job].into_iter().find_map(|name| {
        deploy_jobs
            .and_then(|jobs| jobs.get(name))
            .and_then(Value::as_str)
    });
    let application =
        application_of(build, &["scm", "url"], false).unwrap_or(ApplicationRef::ProjectDefault);
    let status = if completed {
        text(build, &["status"]).unwrap_or("UNKNOWN").to_owned()
    } else if phase == "QUEUED" {
        "QUEUED".to_owned()
    } else {
        "RUNNING".to_owned()
    };
    let mut command = record(
        Provider::Jenkins,
        application,
        environment,
        completed,
        status,
        Some(&["jenkins", &full, &number]),
    );
    // `build.timestamp` (milliseconds) is the build's start in STARTED and its start plus its
    // `duration` in COMPLETED, as the plugin's JobListener sends them.
    let millis = |name: &str| build.get(name).and_then(Value::as_i64);
    let at = |ms: i64| {
        ms.checked_mul(1000)
            .and_then(|micros| Timestamp::from_unix_micros(micros).ok())
    };
    match (phase.as_str(), millis("timestamp")) {
        ("STARTED", Some(start)) => command.started_at = at(start),
        ("COMPLETED", Some(end)) => {
            command.finished_at = at(end);
            if let Some(duration) = millis("duration").filter(|d| *d > 0) {
                command.started_at = end.checked_sub(duration).and_then(at);
            }
        }
        _ => {}
    }
    let branch = text(build, &["scm", "branch"]);
    let culprits: Vec<&str> = build
        .get("scm")
        .and_then(|scm| scm.get("culprits"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).take(5).collect())
        .unwrap_or_default();
    command.fields = DeploymentFields {
        external_id: Some(format!("{full}#{number}")),
        deployed_by: (!culprits.is_empty()).then(|| culprits.join(", ")),
        commit_sha: text(build, &["scm", "commit"]).and_then(|c| CommitSha::parse(c).ok()),
        git_ref: branch.map(str::to_owned),
        branch: branch.map(|b| b.strip_prefix("origin/").unwrap_or(b).to_owned()),
        run_url: text(build, &["full_url"]).map(str::to_owned),
        build_number: Some(number),
        ..DeploymentFields::default()
    };
    Translation::Ingest(Box::new(command))
}

/// A Jenkins job's full name from its `url` (`job/shop/job/main/` → `shop/main`; Jenkins
/// percent-encodes each name, `job/my%20app/` → `my app`).
pub(super) fn full_job_name(url: Option<&str>) -> Option<String> {
    let mut names = Vec::new();
    let mut parts = url?.trim_matches('/').split('/');
    while let Some(part) = parts.next() {
        if part == "job" {
            names.push(
                percent_encoding::percent_decode_str(parts.next()?)
                    .decode_utf8()
                    .ok()?
                    .into_owned(),
            );
        }
    }
    (!names.is_empty()).then(|| names.join("/"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::providers::tests::command;
    use shiplog_domain::event::PipelineEvent;

    #[test]
    fn a_jenkins_jobs_full_name_comes_from_its_url() {
        assert_eq!(
            full_job_name(Some("job/shop/job/main/")).as_deref(),
            Some("shop/main")
        );
        assert_eq!(
            full_job_name(Some("job/shop-deploy/")).as_deref(),
            Some("shop-deploy")
        );
        assert_eq!(
            full_job_name(Some("job/my%20app/job/feature%2Fx/")).as_deref(),
            Some("my app/feature/x")
        );
        assert_eq!(full_job_name(Some("job/100%/")).as_deref(), Some("100%"));
        assert_eq!(full_job_name(Some("")), None);
        assert_eq!(full_job_name(None), None);
    }

    #[test]
    fn a_jenkins_job_is_a_deploy_when_the_settings_say_so() {
        let settings = serde_json::json!({"deploy_jobs": {"shop-deploy": "production"}});
        let body = |job: &str, phase: &str| {
            serde_json::json!({"name": job, "url": "job/x/",
                "build": {"full_url": "http://ci/job/x/18/", "number": 18, "phase": phase,
                          "status": "FAILURE", "url": "job/x/18/",
                          "scm": {"url": "https://github.com/acme/shop.git", "branch": "origin/main",
                                  "commit": "c6e2f6ffd2a5df5bce1be3e6ba6cc7b0fcf4d3e0"}}})
            .to_string()
        };
        let deploy = command(jenkins(
            &settings,
            body("shop-deploy", "COMPLETED").as_bytes(),
        ));
        assert_eq!(deploy.event, PipelineEvent::DEPLOY_COMPLETED);
        assert_eq!(deploy.environment.unwrap().name, "production");
        assert_eq!(deploy.status.as_deref(), Some("FAILURE"));
        assert_eq!(deploy.fields.branch.as_deref(), Some("main"));
        let started = command(jenkins(
            &settings,
            body("shop-deploy", "STARTED").as_bytes(),
        ));
        assert_eq!(started.event, PipelineEvent::DEPLOY_STARTED);
        assert_eq!(started.correlation, deploy.correlation);
        let build = command(jenkins(
            &settings,
            body("shop-test", "COMPLETED").as_bytes(),
        ));
        assert_eq!(build.event.to_string(), "build.completed");
        assert!(build.environment.is_none());
        assert!(matches!(
            jenkins(&settings, body("shop-deploy", "FINALIZED").as_bytes()),
            Translation::Ignore(_)
        ));
        assert!(matches!(
            jenkins(&settings, b"[]"),
            Translation::Malformed(_)
        ));
    }
}
