//! Change requests named in commit messages.
//!
//! Three spellings are references:
//! - `#PREFIX-N` (`#PR-123`, `#REQ-456`): PREFIX is an uppercase letter followed by uppercase
//!   letters or digits; the key is `PREFIX-N`.
//! - `#N` (GitHub-style issue or pull request in the same repository); the key is `#N`.
//! - `owner/repo#N` (another repository); the key is `owner/repo#N`, owner and repo lower-cased.
//!
//! A closing keyword (`close`, `closes`, `closed`, `fix`, `fixes`, `fixed`, `resolve`,
//! `resolves`, `resolved`, any case, optionally followed by a colon) marks the reference right
//! after it as closing: when a deployment carrying it succeeds, the request is deployed.
//!
//! A reference must stand alone as a word: `abc#PR-1` and `https://x.io/a#PR-1` are not
//! references. Surrounding brackets, quotes and trailing punctuation are allowed
//! (`(#PR-1)`, `#PR-1,`, `**#PR-1**`). Results are de-duplicated (closing wins) and kept in
//! order of first appearance.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A change request named in a commit message, or sent explicitly (a PR number).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reference {
    /// The canonical key (`PR-123`, `#71`, `org/repo#5`).
    pub key: ReferenceKey,
    /// Whether a closing keyword precedes it.
    pub closing: bool,
}

/// The canonical key of a reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReferenceKey(String);

/// A string that is not a reference key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a change-request reference: use PREFIX-N (like PR-123), #N (like #42) or owner/repo#N"
)]
pub struct InvalidReference {
    /// What was sent.
    pub given: String,
}

impl ReferenceKey {
    /// Reads a key as a user would type it in a URL or a form: `PR-123`, `#PR-123`, `#42`,
    /// `42` (a pull-request number) or `owner/repo#42`.
    pub fn parse(value: &str) -> Result<Self, InvalidReference> {
        let trimmed = value.trim();
        let invalid = || InvalidReference {
            given: value.to_owned(),
        };
        if let Some(number) = digits(trimmed) {
            return Ok(Self::pull_request(number));
        }
        let with_hash = if trimmed.starts_with('#') || trimmed.contains('#') {
            trimmed.to_owned()
        } else {
            format!("#{trimmed}")
        };
        match_word(&with_hash).ok_or_else(invalid)
    }

    /// The key of a pull request or issue number in the deployment's own repository (`#71`).
    pub fn pull_request(number: u64) -> Self {
        Self(format!("#{number}"))
    }

    /// The key as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReferenceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ReferenceKey {
    type Error = InvalidReference;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ReferenceKey> for String {
    fn from(key: ReferenceKey) -> Self {
        key.0
    }
}

const CLOSING_KEYWORDS: [&str; 9] = [
    "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved",
];

/// Characters that may wrap a reference without being part of it.
fn is_wrapper(c: char) -> bool {
    matches!(
        c,
        '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | '"' | '\'' | '`' | '*' | '_' | '~'
    )
}

fn is_trailing_punctuation(c: char) -> bool {
    is_wrapper(c) || matches!(c, '.' | ',' | ';' | ':' | '!' | '?')
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Matches one whole word (already stripped of wrappers) against the three spellings.
fn match_word(word: &str) -> Option<ReferenceKey> {
    if let Some(rest) = word.strip_prefix('#') {
        if let Some(number) = digits(rest) {
            return Some(ReferenceKey::pull_request(number));
        }
        let (prefix, number) = rest.split_once('-')?;
        let mut chars = prefix.chars();
        let first_is_letter = chars.next().is_some_and(|c| c.is_ascii_uppercase());
        let prefix_ok = first_is_letter
            && prefix.len() <= 32
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        let number = digits(number)?;
        return prefix_ok.then(|| ReferenceKey(format!("{prefix}-{number}")));
    }
    let (repo_path, number) = word.split_once('#')?;
    let number = digits(number)?;
    let (owner, repo) = repo_path.split_once('/')?;
    let owner_ok = !owner.is_empty()
        && owner.len() <= 64
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let repo_ok = !repo.is_empty()
        && repo.len() <= 100
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (owner_ok && repo_ok).then(|| {
        ReferenceKey(format!(
            "{}/{}#{number}",
            owner.to_ascii_lowercase(),
            repo.to_ascii_lowercase()
        ))
    })
}

fn is_closing_keyword(word: &str) -> bool {
    let word = word.strip_suffix(':').unwrap_or(word);
    CLOSING_KEYWORDS
        .iter()
        .any(|keyword| keyword.eq_ignore_ascii_case(word))
}

/// The most references one deployment links. An event naming more links the first ones and
/// says how many it left out, so one commit message cannot make a deployment megabytes long.
pub const MAX_REFERENCES: usize = 100;

/// Finds every reference in a commit message, de-duplicated (closing wins), in order of first
/// appearance. Never fails: a message without references gives an empty list. Linear in the
/// message's length, however many references it names.
///
/// ```
/// use shiplog_domain::reference::parse_references;
/// let found = parse_references("Fix login; closes #42, see #PR-123 and acme/billing#7");
/// let keys: Vec<(&str, bool)> = found.iter().map(|r| (r.key.as_str(), r.closing)).collect();
/// assert_eq!(keys, [("#42", true), ("PR-123", false), ("acme/billing#7", false)]);
/// ```
pub fn parse_references(message: &str) -> Vec<Reference> {
    let mut found: Vec<Reference> = Vec::new();
    let mut index: std::collections::HashMap<ReferenceKey, usize> =
        std::collections::HashMap::new();
    let mut after_keyword = false;
    for raw in message.split(|c: char| c.is_whitespace() || c == ',') {
        if raw.is_empty() {
            continue;
        }
        if raw.contains("://") || raw.to_ascii_lowercase().starts_with("www.") {
            after_keyword = false;
            continue;
        }
        let word = raw
            .trim_start_matches(is_wrapper)
            .trim_end_matches(is_trailing_punctuation);
        if let Some(key) = match_word(word) {
            match index.get(&key).and_then(|&at| found.get_mut(at)) {
                Some(existing) => existing.closing |= after_keyword,
                None => {
                    index.insert(key.clone(), found.len());
                    found.push(Reference {
                        key,
                        closing: after_keyword,
                    });
                }
            }
            after_keyword = false;
            continue;
        }
        after_keyword = is_closing_keyword(raw.trim_matches(is_wrapper));
    }
    found
}

/// Adds a reference to a deployment's, keeping the first position and letting `closing` win.
/// A new key is not added once the list holds [`MAX_REFERENCES`]; returns whether the key is
/// in the list afterwards.
pub fn add(found: &mut Vec<Reference>, key: ReferenceKey, closing: bool) -> bool {
    if let Some(existing) = found.iter_mut().find(|r| r.key == key) {
        existing.closing |= closing;
        return true;
    }
    if found.len() >= MAX_REFERENCES {
        return false;
    }
    found.push(Reference { key, closing });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(message: &str) -> Vec<(String, bool)> {
        parse_references(message)
            .into_iter()
            .map(|r| (r.key.to_string(), r.closing))
            .collect()
    }

    fn open(k: &str) -> (String, bool) {
        (k.to_owned(), false)
    }

    fn closing(k: &str) -> (String, bool) {
        (k.to_owned(), true)
    }

    #[test]
    fn the_seeds_examples() {
        assert_eq!(
            keys("feat: add user authentication #PR-123 #PR-124"),
            vec![open("PR-123"), open("PR-124")]
        );
        assert_eq!(
            keys("feat: add login feature #PR-123"),
            vec![open("PR-123")]
        );
        assert_eq!(keys("#REQ-456"), vec![open("REQ-456")]);
        assert_eq!(keys("fixes #PR-123"), vec![closing("PR-123")]);
        assert_eq!(keys("closes #PR-123"), vec![closing("PR-123")]);
    }

    #[test]
    fn any_uppercase_prefix_and_github_numbers() {
        assert_eq!(
            keys("#JIRA2-7 and #42 and Org/Repo.rs#9"),
            vec![open("JIRA2-7"), open("#42"), open("org/repo.rs#9")]
        );
    }

    #[test]
    fn numbers_are_canonical() {
        assert_eq!(keys("#PR-007 #0042"), vec![open("PR-7"), open("#42")]);
        assert_eq!(keys("#PR-7 fixes #PR-007"), vec![closing("PR-7")]);
    }

    #[test]
    fn lowercase_or_digit_led_prefixes_are_not_references() {
        assert!(keys("#pr-1 #1A-2 #PR- #-5 # #PR-x").is_empty());
    }

    #[test]
    fn every_closing_keyword_in_any_case_with_optional_colon() {
        for keyword in CLOSING_KEYWORDS {
            for spelled in [
                keyword.to_owned(),
                keyword.to_uppercase(),
                format!("{keyword}:"),
            ] {
                assert_eq!(
                    keys(&format!("{spelled} #PR-9")),
                    vec![closing("PR-9")],
                    "{spelled}"
                );
            }
        }
        assert_eq!(keys("Resolves: org/app#3"), vec![closing("org/app#3")]);
    }

    #[test]
    fn only_the_reference_right_after_the_keyword_closes() {
        assert_eq!(
            keys("fixes #PR-1 #PR-2"),
            vec![closing("PR-1"), open("PR-2")]
        );
        assert_eq!(
            keys("fixes the bug in #PR-1"),
            vec![open("PR-1")],
            "words between keyword and reference"
        );
        assert_eq!(keys("prefix #PR-1 fixed"), vec![open("PR-1")]);
    }

    #[test]
    fn duplicates_collapse_closing_wins_first_position_kept() {
        assert_eq!(
            keys("#PR-1 #PR-2 fixes #PR-1 #PR-2"),
            vec![closing("PR-1"), open("PR-2")]
        );
    }

    #[test]
    fn not_inside_urls_or_words() {
        assert!(keys("see https://x.io/a#PR-1").is_empty());
        assert!(keys("abc#PR-1").is_empty());
        assert!(keys("http://github.com/o/r/pull/1#issuecomment-2").is_empty());
        assert!(keys("www.example.com/#PR-1").is_empty());
        assert!(keys("x#12").is_empty(), "owner/repo form needs a slash");
    }

    #[test]
    fn wrappers_and_trailing_punctuation_are_allowed() {
        assert_eq!(
            keys("Merge (#PR-1), [#PR-2]. **#PR-3**; fix: `#PR-4`!"),
            vec![open("PR-1"), open("PR-2"), open("PR-3"), closing("PR-4")]
        );
        assert_eq!(keys("#PR-1,#PR-2"), vec![open("PR-1"), open("PR-2")]);
    }

    #[test]
    fn keys_parse_as_users_type_them() {
        assert_eq!(ReferenceKey::parse("PR-123").unwrap().as_str(), "PR-123");
        assert_eq!(ReferenceKey::parse("#PR-123").unwrap().as_str(), "PR-123");
        assert_eq!(ReferenceKey::parse("71").unwrap().as_str(), "#71");
        assert_eq!(ReferenceKey::parse("#71").unwrap().as_str(), "#71");
        assert_eq!(
            ReferenceKey::parse("Org/Repo#4").unwrap().as_str(),
            "org/repo#4"
        );
        let err = ReferenceKey::parse("pr 12").unwrap_err();
        assert!(err.to_string().contains("use PREFIX-N"));
    }

    #[test]
    fn serde_round_trip_validates() {
        let key: ReferenceKey = serde_json::from_str("\"PR-5\"").unwrap();
        assert_eq!(serde_json::to_string(&key).unwrap(), "\"PR-5\"");
        assert!(serde_json::from_str::<ReferenceKey>("\"nope nope\"").is_err());
    }
}
