//! Validated identifiers. Each is parsed once at the edge and trusted everywhere after.
//!
//! Codes and slugs (workspace, project, team, environment, application) share one rule:
//! 1 to 64 characters from `a-z`, `0-9`, `-`, `_` and `.`, starting with a letter or digit.
//! Input is trimmed and lower-cased first, so `My-Project` and `my-project` are the same project.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The longest code or slug.
pub const MAX_CODE_LEN: usize = 64;

/// A code or slug that breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {what} {given:?}: use 1 to 64 characters from a-z, 0-9, '-', '_' and '.', starting with a letter or digit (for example {example:?})"
)]
pub struct InvalidCode {
    /// Which identifier (`project slug`, `environment code`, …).
    pub what: &'static str,
    /// What was sent (cut to 80 characters).
    pub given: String,
    /// A valid example.
    pub example: &'static str,
}

fn parse_code(
    value: &str,
    what: &'static str,
    example: &'static str,
) -> Result<String, InvalidCode> {
    let code = value.trim().to_ascii_lowercase();
    let ok = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code.starts_with(|c: char| c.is_ascii_alphanumeric())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(code)
    } else {
        Err(InvalidCode {
            what,
            given: value.chars().take(80).collect(),
            example,
        })
    }
}

/// Turns a free name into a code: `Feature Branch Preview` → `feature-branch-preview`.
/// `None` when the name has no letter or digit at all.
fn slugify(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len().min(MAX_CODE_LEN));
    let mut pending_dash = false;
    for c in name.trim().chars() {
        // A letter or digit outside ASCII (`ｐ`, `é`) would be dropped, and `ｐroduction` would
        // become `roduction`: refuse the name instead of silently changing it.
        if c.is_alphanumeric() && !c.is_ascii() {
            return None;
        }
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.') {
            let dash = pending_dash && !out.is_empty();
            if out.len() + usize::from(dash) + 1 > MAX_CODE_LEN {
                break;
            }
            if dash {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
    }
    let out = out.trim_start_matches(['-', '_', '.']).to_owned();
    (!out.is_empty()).then_some(out)
}

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(example = $example))]
        pub struct $name(String);

        impl $name {
            /// Validates and lower-cases.
            pub fn parse(value: &str) -> Result<Self, InvalidCode> {
                parse_code(value, $what, $example).map(Self)
            }

            /// Derives a valid value from a free name (`Production EU` → `production-eu`).
            pub fn from_name(name: &str) -> Result<Self, InvalidCode> {
                slugify(name).map(Self).ok_or_else(|| InvalidCode {
                    what: $what,
                    given: name.chars().take(80).collect(),
                    example: $example,
                })
            }

            /// The value as stored.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidCode;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

code_type!(
    /// A workspace (tenant) code, e.g. `acme`; Envtracker's `companyCode`.
    WorkspaceCode,
    "workspace code",
    "acme"
);
code_type!(
    /// A project slug, unique in its workspace; Clienwork `project_slug`, Envtracker `projectCode`.
    ProjectSlug,
    "project slug",
    "my-project"
);
code_type!(
    /// A team code, e.g. `engineering`; Envtracker `teamCode`.
    TeamCode,
    "team code",
    "engineering"
);
code_type!(
    /// An environment code, unique in its project; Envtracker `envCode`.
    EnvironmentCode,
    "environment code",
    "production"
);
code_type!(
    /// An application code, unique in its project; Envtracker `repoCode`/`appCode`.
    ApplicationCode,
    "application code",
    "my-app"
);

/// A Git commit hash: 4 to 64 hexadecimal digits, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitSha(String);

/// A value that is not a commit hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid commit SHA {given:?}: send the hexadecimal commit hash, 4 to 64 characters (for example \"abc123def456\")"
)]
pub struct InvalidCommitSha {
    /// What was sent (cut to 80 characters).
    pub given: String,
}

impl CommitSha {
    /// Validates and lower-cases.
    pub fn parse(value: &str) -> Result<Self, InvalidCommitSha> {
        let sha = value.trim().to_ascii_lowercase();
        if (4..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(sha))
        } else {
            Err(InvalidCommitSha {
                given: value.chars().take(80).collect(),
            })
        }
    }

    /// The hash as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether one of the two is a prefix of the other (a short SHA names the same commit).
    pub fn matches(&self, other: &Self) -> bool {
        self.0.starts_with(&other.0) || other.0.starts_with(&self.0)
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CommitSha {
    type Error = InvalidCommitSha;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CommitSha> for String {
    fn from(value: CommitSha) -> Self {
        value.0
    }
}

/// What makes two requests "the same deployment": Hivel's `deployment_id`, or a key derived
/// from the run (project, environment, run URL or commit). Unique per workspace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdempotencyKey(String);

/// A key that is empty, too long or has control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid deployment id {given:?}: send 1 to 200 printable characters that identify this deployment (for example \"deploy-20250922-1200\")"
)]
pub struct InvalidIdempotencyKey {
    /// What was sent (cut to 80 characters).
    pub given: String,
}

impl IdempotencyKey {
    /// The longest key.
    pub const MAX_LEN: usize = 200;

    /// Validates (trimmed; case is kept).
    pub fn parse(value: &str) -> Result<Self, InvalidIdempotencyKey> {
        let key = value.trim();
        if !key.is_empty() && key.len() <= Self::MAX_LEN && !key.chars().any(char::is_control) {
            Ok(Self(key.to_owned()))
        } else {
            Err(InvalidIdempotencyKey {
                given: value.chars().take(80).collect(),
            })
        }
    }

    /// A key derived from the parts that identify one run, namespaced so it can never equal a
    /// key a client sent: `run:` and the SHA-256 of the parts.
    pub fn derived(parts: &[&str]) -> Self {
        Self(format!("run:{}", Fingerprint::of(parts)))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidIdempotencyKey;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<IdempotencyKey> for String {
    fn from(value: IdempotencyKey) -> Self {
        value.0
    }
}

/// SHA-256 over a list of fields (each length-prefixed, so `["ab", "c"]` ≠ `["a", "bc"]`),
/// in lower-case hex. Identifies a request's content for de-duplication.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Hashes the fields.
    pub fn of(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        Self(hex(&hasher.finalize()))
    }

    /// Rebuilds a stored fingerprint.
    pub fn from_hex(value: &str) -> Option<Self> {
        (value.len() == 64
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Self(value.to_owned()))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-case hex of bytes (digests, keys, signatures).
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_trimmed_and_lowercased() {
        assert_eq!(
            ProjectSlug::parse(" My-Project ").unwrap().as_str(),
            "my-project"
        );
        assert_eq!(
            EnvironmentCode::parse("feature-preview").unwrap().as_str(),
            "feature-preview"
        );
        assert_eq!(
            ApplicationCode::parse("api_v2.1").unwrap().as_str(),
            "api_v2.1"
        );
    }

    #[test]
    fn bad_codes_name_the_identifier_and_the_fix() {
        for bad in ["", "-lead", "has space", "é", &"x".repeat(65), "a/b"] {
            let err = ProjectSlug::parse(bad).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("invalid project slug"), "{text}");
            assert!(text.contains("for example \"my-project\""), "{text}");
        }
        assert!(
            TeamCode::parse("Team A")
                .unwrap_err()
                .to_string()
                .contains("team code")
        );
    }

    #[test]
    fn names_become_codes() {
        assert_eq!(
            EnvironmentCode::from_name("Feature Branch Preview")
                .unwrap()
                .as_str(),
            "feature-branch-preview"
        );
        assert_eq!(
            EnvironmentCode::from_name("  Production (EU) ")
                .unwrap()
                .as_str(),
            "production-eu"
        );
        assert_eq!(EnvironmentCode::from_name("_x").unwrap().as_str(), "x");
        assert!(EnvironmentCode::from_name("!!!").is_err());
        let long = "a".repeat(100);
        assert_eq!(
            EnvironmentCode::from_name(&long).unwrap().as_str().len(),
            64
        );
        // Whatever from_name returns is valid by parse's rule.
        for name in ["Prod / EU", "QA #2", "x.y_z", "env — 2 ✓"] {
            let code = EnvironmentCode::from_name(name).unwrap();
            assert_eq!(EnvironmentCode::parse(code.as_str()).unwrap(), code);
        }
        // A letter or digit that a code cannot hold is refused, never dropped: the full-width
        // `ｐroduction` must not become `roduction`, nor `Café` `caf`.
        for name in ["ｐroduction", "Café", "Ünïcode env", "prod-٣"] {
            let error = EnvironmentCode::from_name(name).unwrap_err();
            assert_eq!(error.given, name);
        }
    }

    #[test]
    fn commit_shas() {
        assert_eq!(
            CommitSha::parse("ABC123DEF456").unwrap().as_str(),
            "abc123def456"
        );
        let full = CommitSha::parse("abc123def456789012345678901234567890abcd").unwrap();
        let short = CommitSha::parse("abc123d").unwrap();
        assert!(full.matches(&short) && short.matches(&full));
        for bad in ["", "abc", "xyz123", &"a".repeat(65), "${GIT_COMMIT}"] {
            let err = CommitSha::parse(bad).unwrap_err();
            assert!(err.to_string().contains("hexadecimal commit hash"), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys() {
        assert_eq!(
            IdempotencyKey::parse("deploy-20250922-1200")
                .unwrap()
                .as_str(),
            "deploy-20250922-1200"
        );
        assert!(IdempotencyKey::parse("  ").is_err());
        assert!(IdempotencyKey::parse("a\nb").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(201)).is_err());
        let derived = IdempotencyKey::derived(&["p", "production", "https://ci/run/1"]);
        assert!(derived.as_str().starts_with("run:"));
        assert_eq!(
            derived,
            IdempotencyKey::derived(&["p", "production", "https://ci/run/1"])
        );
    }

    #[test]
    fn fingerprints_separate_fields() {
        assert_ne!(Fingerprint::of(&["ab", "c"]), Fingerprint::of(&["a", "bc"]));
        // Known answer: SHA-256 of 8 zero bytes (the length prefix of one empty field).
        assert_eq!(
            Fingerprint::of(&[""]).as_str(),
            "af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc"
        );
        let fp = Fingerprint::of(&["x"]);
        assert_eq!(Fingerprint::from_hex(fp.as_str()), Some(fp));
        assert_eq!(Fingerprint::from_hex("xyz"), None);
    }
}
