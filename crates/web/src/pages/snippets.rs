//! Copy-paste CI snippets for a new project's empty state, taken from the CI guides in
//! `docs/ci/` (compiled in), so the dashboard and the guides never disagree.

const GITHUB_ACTIONS: &str = include_str!("../../../../docs/ci/github-actions.md");
const GITLAB_CI: &str = include_str!("../../../../docs/ci/gitlab-ci.md");

/// The guide's first YAML block.
fn first_yaml_block(guide: &str) -> &str {
    guide
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map_or("", |(block, _)| block)
}

/// The GitHub Actions workflow job of `docs/ci/github-actions.md` for a project on this server.
pub fn github_actions(base_url: &str, project: &str) -> String {
    first_yaml_block(GITHUB_ACTIONS)
        .replace("${{ vars.SHIPLOG_URL }}", base_url)
        .replace("\"my-project\"", &format!("\"{project}\""))
}

/// The GitLab CI job of `docs/ci/gitlab-ci.md` for a project on this server.
pub fn gitlab_ci(base_url: &str, project: &str) -> String {
    format!(
        "# CI/CD variables: SHIPLOG_URL = {base_url}, SHIPLOG_KEY = an ingest key (masked)\n{}",
        first_yaml_block(GITLAB_CI).replace("\"my-project\"", &format!("\"{project}\""))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_name_this_server_and_the_project() {
        for snippet in [
            github_actions("https://ship.example", "shop"),
            gitlab_ci("https://ship.example", "shop"),
        ] {
            assert!(snippet.contains("https://ship.example"), "{snippet}");
            assert!(snippet.contains("project_slug: \"shop\""), "{snippet}");
            assert!(!snippet.contains("my-project"), "{snippet}");
            assert!(snippet.contains("/api/webhooks/ci"), "{snippet}");
        }
        assert!(!github_actions("https://ship.example", "shop").contains("vars.SHIPLOG_URL"));
    }
}
