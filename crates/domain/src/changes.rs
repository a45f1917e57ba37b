//! What a deployment changed: which commits lie between it and the previous successful
//! deployment of its application to its environment, and where a person reads them.
//!
//! shiplog does not clone repositories, so it does not know the commit graph. It knows when it
//! first saw each commit (its [`crate::sighting`], the earliest pipeline event or push of the
//! commit). Commits are ordered by that: the commits a deployment brings are the ones first seen
//! after the previous deployment's commit and up to its own ([`Span`]). A deployment of a commit
//! first seen *before* the previous one's is a rollback; the same commit again is a redeploy.
//!
//! [`Forge`] builds the provider's compare and commit addresses from a repository identity.

use serde::{Deserialize, Serialize};

use crate::ids::CommitSha;
use crate::repo::RepoIdentity;
use crate::timestamp::Timestamp;

/// How a deployment relates to the previous successful one of its application and environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChangeKind {
    /// No earlier successful deployment is known: everything is new.
    First,
    /// A commit first seen after the previous one's: it brings the commits in between.
    Forward,
    /// The same commit as the previous one: nothing changed in the code.
    Redeploy,
    /// A commit first seen before the previous one's: it takes the commits in between away.
    Rollback,
    /// One of the two names no commit, or a commit never seen: the changes cannot be told.
    Unknown,
}

/// A deployment's commit as far as this module needs it: the hash and when it was first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCommit {
    /// The commit.
    pub sha: CommitSha,
    /// Its first sighting; `None` when no event of it was recorded.
    pub first_seen: Option<Timestamp>,
}

/// Which commits a deployment changed, in first-sighting order: those first seen in
/// `(after, up_to]`. The commit first seen at `up_to` is the newer of the two deployments'; the
/// one at `after` (the older) is not part of the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The kind of change.
    pub kind: ChangeKind,
    /// The sighting range to read commits in; `None` when there is none to read (a first
    /// deployment, a redeploy, an unknown change).
    pub range: Option<(Timestamp, Timestamp)>,
}

impl Span {
    /// The span between the previous successful deployment's commit (`previous`: `None` when
    /// there is no previous deployment, `Some(None)` when it named no commit) and this one's.
    ///
    /// ```
    /// use shiplog_domain::changes::{ChangeKind, SeenCommit, Span};
    /// use shiplog_domain::ids::CommitSha;
    /// use shiplog_domain::timestamp::Timestamp;
    /// let seen = |sha: &str, at: i64| SeenCommit {
    ///     sha: CommitSha::parse(sha).unwrap(),
    ///     first_seen: Some(Timestamp::from_unix_seconds(at).unwrap()),
    /// };
    /// let forward = Span::between(Some(Some(&seen("aaaa", 10))), Some(&seen("bbbb", 20)));
    /// assert_eq!(forward.kind, ChangeKind::Forward);
    /// let back = Span::between(Some(Some(&seen("bbbb", 20))), Some(&seen("aaaa", 10)));
    /// assert_eq!(back.kind, ChangeKind::Rollback);
    /// assert_eq!(back.range, forward.range);
    /// ```
    pub fn between(previous: Option<Option<&SeenCommit>>, this: Option<&SeenCommit>) -> Self {
        let none = |kind| Self { kind, range: None };
        let Some(previous) = previous else {
            return none(ChangeKind::First);
        };
        let (Some(before), Some(this)) = (previous, this) else {
            return none(ChangeKind::Unknown);
        };
        if before.sha.matches(&this.sha) {
            return none(ChangeKind::Redeploy);
        }
        let (Some(was), Some(is)) = (before.first_seen, this.first_seen) else {
            return none(ChangeKind::Unknown);
        };
        if is >= was {
            Self {
                kind: ChangeKind::Forward,
                range: Some((was, is)),
            }
        } else {
            Self {
                kind: ChangeKind::Rollback,
                range: Some((is, was)),
            }
        }
    }
}

/// Where a repository is hosted, for its compare and commit addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// GitHub (github.com or GitHub Enterprise).
    GitHub,
    /// GitLab (gitlab.com or self-managed).
    GitLab,
    /// Bitbucket Cloud.
    Bitbucket,
}

impl Forge {
    /// The forge of a repository: from its host (`github.com`, `gitlab.com`, `bitbucket.org`,
    /// or a host whose first label names one, like `gitlab.example.com`), else from the
    /// application's source provider (`github`, `gitlab`, `bitbucket`); `None` when neither
    /// tells.
    pub fn of(repo: &RepoIdentity, source_provider: Option<&str>) -> Option<Self> {
        let named = |word: &str| match word.to_ascii_lowercase().as_str() {
            "github" => Some(Self::GitHub),
            "gitlab" => Some(Self::GitLab),
            "bitbucket" => Some(Self::Bitbucket),
            _ => None,
        };
        let host = repo.host();
        let first = host.split('.').next().unwrap_or_default();
        match host {
            "github.com" => Some(Self::GitHub),
            "gitlab.com" => Some(Self::GitLab),
            "bitbucket.org" => Some(Self::Bitbucket),
            _ => named(first).or_else(|| source_provider.and_then(named)),
        }
    }

    /// The page of one commit.
    pub fn commit_url(self, repo: &RepoIdentity, sha: &CommitSha) -> String {
        let base = format!("https://{}", repo.as_str());
        match self {
            Self::GitHub => format!("{base}/commit/{sha}"),
            Self::GitLab => format!("{base}/-/commit/{sha}"),
            Self::Bitbucket => format!("{base}/commits/{sha}"),
        }
    }

    /// The page comparing `base` (older) with `head` (newer).
    pub fn compare_url(self, repo: &RepoIdentity, base: &CommitSha, head: &CommitSha) -> String {
        let root = format!("https://{}", repo.as_str());
        match self {
            Self::GitHub => format!("{root}/compare/{base}...{head}"),
            Self::GitLab => format!("{root}/-/compare/{base}...{head}"),
            // Bitbucket names the source first and the destination after a carriage return.
            Self::Bitbucket => format!("{root}/branches/compare/{head}%0D{base}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(sha: &str, at: Option<i64>) -> SeenCommit {
        SeenCommit {
            sha: CommitSha::parse(sha).unwrap(),
            first_seen: at.map(|s| Timestamp::from_unix_seconds(s).unwrap()),
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix_seconds(s).unwrap()
    }

    #[test]
    fn the_span_follows_first_sightings() {
        let old = seen("aaaa1111", Some(10));
        let new = seen("bbbb2222", Some(20));
        assert_eq!(
            Span::between(Some(Some(&old)), Some(&new)),
            Span {
                kind: ChangeKind::Forward,
                range: Some((t(10), t(20)))
            }
        );
        assert_eq!(
            Span::between(Some(Some(&new)), Some(&old)),
            Span {
                kind: ChangeKind::Rollback,
                range: Some((t(10), t(20)))
            }
        );
        // A short hash of the same commit is a redeploy.
        let short = seen("bbbb", Some(30));
        assert_eq!(
            Span::between(Some(Some(&new)), Some(&short)).kind,
            ChangeKind::Redeploy
        );
        assert_eq!(Span::between(None, Some(&new)).kind, ChangeKind::First);
        assert_eq!(Span::between(None, None).kind, ChangeKind::First);
        for (previous, this) in [
            (Some(None), Some(&new)),
            (Some(Some(&old)), None),
            (Some(Some(&seen("cccc", None))), Some(&new)),
        ] {
            let span = Span::between(previous, this);
            assert_eq!(span.kind, ChangeKind::Unknown);
            assert_eq!(span.range, None);
        }
        // Two commits first seen at one instant: forward, an empty-looking range that still
        // holds the newer commit (the range's end is included).
        let tie = seen("dddd", Some(10));
        assert_eq!(
            Span::between(Some(Some(&old)), Some(&tie)).range,
            Some((t(10), t(10)))
        );
    }

    #[test]
    fn forges_are_told_by_host_then_by_provider() {
        let repo = |s: &str| RepoIdentity::parse(s).unwrap();
        assert_eq!(Forge::of(&repo("acme/shop"), None), Some(Forge::GitHub));
        assert_eq!(
            Forge::of(&repo("https://gitlab.example.com/g/sub/app"), None),
            Some(Forge::GitLab)
        );
        assert_eq!(
            Forge::of(&repo("git@bitbucket.org:team/app.git"), None),
            Some(Forge::Bitbucket)
        );
        assert_eq!(
            Forge::of(&repo("https://git.example.com/team/app"), Some("GitHub")),
            Some(Forge::GitHub)
        );
        assert_eq!(
            Forge::of(&repo("https://git.example.com/team/app"), None),
            None
        );
        assert_eq!(
            Forge::of(&repo("https://git.example.com/team/app"), Some("gitea")),
            None
        );
    }

    #[test]
    fn addresses_follow_each_forges_spelling() {
        let a = CommitSha::parse("aaaa1111").unwrap();
        let b = CommitSha::parse("bbbb2222").unwrap();
        let gh = RepoIdentity::parse("acme/shop").unwrap();
        assert_eq!(
            Forge::GitHub.compare_url(&gh, &a, &b),
            "https://github.com/acme/shop/compare/aaaa1111...bbbb2222"
        );
        assert_eq!(
            Forge::GitHub.commit_url(&gh, &b),
            "https://github.com/acme/shop/commit/bbbb2222"
        );
        let gl = RepoIdentity::parse("https://gitlab.com/g/sub/app").unwrap();
        assert_eq!(
            Forge::GitLab.compare_url(&gl, &a, &b),
            "https://gitlab.com/g/sub/app/-/compare/aaaa1111...bbbb2222"
        );
        assert_eq!(
            Forge::GitLab.commit_url(&gl, &a),
            "https://gitlab.com/g/sub/app/-/commit/aaaa1111"
        );
        let bb = RepoIdentity::parse("git@bitbucket.org:team/app.git").unwrap();
        assert_eq!(
            Forge::Bitbucket.compare_url(&bb, &a, &b),
            "https://bitbucket.org/team/app/branches/compare/bbbb2222%0Daaaa1111"
        );
        assert_eq!(
            Forge::Bitbucket.commit_url(&bb, &a),
            "https://bitbucket.org/team/app/commits/aaaa1111"
        );
    }
}
