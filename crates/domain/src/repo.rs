//! Repository identity: every spelling of one Git remote becomes one value.
//!
//! `https://github.com/org/repo`, `https://github.com/org/repo.git`, `git@github.com:org/repo.git`,
//! `ssh://git@github.com/org/repo.git` and GitHub's `org/repo` (`${{ github.repository }}`) are all
//! `github.com/org/repo`. The host is lower-cased; the path keeps its case. Credentials, ports,
//! query strings, fragments, a trailing `/` and a trailing `.git` are dropped, so a token pasted into
//! a clone URL is never stored.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `host/path` of a Git repository, e.g. `github.com/org/repo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepoIdentity(String);

/// A value that does not name a repository.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a repository URL: send https://host/owner/repo, git@host:owner/repo.git, ssh://git@host/owner/repo.git or owner/repo"
)]
pub struct InvalidRepo {
    /// What was sent, without credentials, cut to 200 characters.
    pub given: String,
}

const MAX_LEN: usize = 512;

impl RepoIdentity {
    /// Reads a repository URL in any of the accepted spellings; credentials are dropped.
    ///
    /// ```
    /// use shiplog_domain::repo::RepoIdentity;
    /// let https = RepoIdentity::parse("https://token@github.com/acme/shop.git").unwrap();
    /// let ssh = RepoIdentity::parse("git@github.com:acme/shop").unwrap();
    /// assert_eq!(https, ssh);
    /// assert_eq!(https.as_str(), "github.com/acme/shop");
    /// ```
    pub fn parse(value: &str) -> Result<Self, InvalidRepo> {
        let trimmed = value.trim();
        let invalid = || InvalidRepo {
            given: redact(trimmed),
        };
        if trimmed.is_empty() || trimmed.len() > MAX_LEN || trimmed.chars().any(char::is_whitespace)
        {
            return Err(invalid());
        }
        let (host, path) = if let Some((_, rest)) = trimmed.split_once("://") {
            // scheme://[user[:pass]@]host[:port]/path
            let (authority, path) = rest.split_once('/').ok_or_else(invalid)?;
            (host_of(authority), path)
        } else if let Some((authority, path)) = scp_like(trimmed) {
            (host_of(authority), path)
        } else if !trimmed.contains(':') && !trimmed.contains('@') {
            let mut parts = trimmed.split('/');
            match (parts.next(), parts.next(), parts.next()) {
                // GitHub's `owner/repo`.
                (Some(owner), Some(repo), None) if !owner.is_empty() && !repo.is_empty() => {
                    ("github.com".to_owned(), trimmed)
                }
                // The canonical `host/owner/repo` (also how Go modules name repositories).
                (Some(host), Some(_), Some(_)) if host.contains('.') => {
                    let (host, path) = trimmed.split_once('/').unwrap_or_default();
                    (host.to_ascii_lowercase(), path)
                }
                _ => return Err(invalid()),
            }
        } else {
            return Err(invalid());
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = path.trim_matches('/');
        let path = path
            .strip_suffix(".git")
            .unwrap_or(path)
            .trim_end_matches('/');
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        let segments_ok = !path.is_empty()
            && path.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '~' | '%'))
            });
        if !host_ok || !segments_ok {
            return Err(invalid());
        }
        Ok(Self(format!("{host}/{path}")))
    }

    /// The identity as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host (`github.com`).
    pub fn host(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(host, _)| host)
    }

    /// The path after the host (`org/repo`).
    pub fn path(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, path)| path)
    }

    /// The last path segment (`repo`): the default name of an application.
    pub fn name(&self) -> &str {
        self.path().rsplit('/').next().unwrap_or_default()
    }
}

/// `[user@]host:path` as scp and git write it; `C:\…` style drive letters are not hosts.
fn scp_like(value: &str) -> Option<(&str, &str)> {
    let (authority, path) = value.split_once(':')?;
    if authority.contains('/') || path.starts_with("//") || authority.len() < 2 {
        return None;
    }
    Some((authority, path))
}

/// Drops `user[:password]@` and `:port`, lower-cases.
fn host_of(authority: &str) -> String {
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split_once(':').map_or(host, |(h, _)| h);
    host.to_ascii_lowercase()
}

/// Removes credentials from a URL before it is echoed in an error.
fn redact(value: &str) -> String {
    let cleaned = match value.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, after)) if !rest.split('/').next().unwrap_or_default().is_empty() => {
                format!("{scheme}://***@{after}")
            }
            _ => value.to_owned(),
        },
        None => value.to_owned(),
    };
    cleaned.chars().take(200).collect()
}

impl fmt::Display for RepoIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RepoIdentity {
    type Error = InvalidRepo;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RepoIdentity> for String {
    fn from(repo: RepoIdentity) -> Self {
        repo.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> String {
        RepoIdentity::parse(s).unwrap().to_string()
    }

    #[test]
    fn every_spelling_is_one_identity() {
        for spelling in [
            "https://github.com/org/repo",
            "https://github.com/org/repo.git",
            "https://github.com/org/repo/",
            "http://GitHub.com/org/repo",
            "git@github.com:org/repo.git",
            "ssh://git@github.com/org/repo.git",
            "ssh://git@github.com:22/org/repo.git",
            "org/repo",
            "https://x-access-token:ghp_secret@github.com/org/repo.git",
            "https://github.com/org/repo?tab=readme#top",
            "github.com/org/repo",
            "GitHub.com/org/repo.git",
        ] {
            assert_eq!(id(spelling), "github.com/org/repo", "{spelling}");
        }
    }

    #[test]
    fn the_canonical_form_parses_back_to_itself() {
        for spelling in [
            "org/repo",
            "https://gitlab.example.com/group/sub/app",
            "https://org@dev.azure.com/org/project/_git/app",
            "git@bitbucket.org:team/Service.git",
        ] {
            let repo = RepoIdentity::parse(spelling).unwrap();
            assert_eq!(
                RepoIdentity::parse(repo.as_str()).unwrap(),
                repo,
                "{spelling}"
            );
        }
    }

    #[test]
    fn the_seeds_repositories() {
        assert_eq!(
            id("https://github.com/hivelai/webhook-logger"),
            "github.com/hivelai/webhook-logger"
        );
        assert_eq!(
            id("https://github.com/hivelai/webhook-logger.git"),
            "github.com/hivelai/webhook-logger"
        );
    }

    #[test]
    fn other_hosts_and_deep_paths_keep_their_path() {
        assert_eq!(
            id("https://gitlab.example.com/group/sub/app"),
            "gitlab.example.com/group/sub/app"
        );
        assert_eq!(
            id("https://org@dev.azure.com/org/project/_git/app"),
            "dev.azure.com/org/project/_git/app"
        );
        let repo = RepoIdentity::parse("git@bitbucket.org:team/Service.git").unwrap();
        assert_eq!(repo.host(), "bitbucket.org");
        assert_eq!(repo.path(), "team/Service");
        assert_eq!(repo.name(), "Service");
    }

    #[test]
    fn non_repositories_are_rejected_without_echoing_secrets() {
        for bad in [
            "",
            "repo",
            "a/b/c",
            "https://github.com",
            "https://github.com/",
            "https://github.com/../x",
            "has space/repo",
            "C:\\repo",
        ] {
            assert!(RepoIdentity::parse(bad).is_err(), "{bad:?}");
        }
        let err = RepoIdentity::parse("https://user:hunter2@host/").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("send https://host/owner/repo"));
    }
}
