//! Environments: where deployments go, and what kind of place that is.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What an environment is for. DORA metrics read `production` environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EnvironmentKind {
    /// Serves real users.
    Production,
    /// The last stop before production.
    Staging,
    /// QA, UAT, integration tests.
    Testing,
    /// Developers' and preview environments.
    Development,
    /// Anything that is none of the above.
    Other,
}

/// An environment kind that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown environment type {given:?}: use one of PRODUCTION, STAGING, TESTING, DEVELOPMENT (or OTHER)"
)]
pub struct InvalidEnvironmentKind {
    /// What was sent.
    pub given: String,
}

impl EnvironmentKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Production,
        Self::Staging,
        Self::Testing,
        Self::Development,
        Self::Other,
    ];

    /// The kind as shiplog writes it (`production`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Staging => "staging",
            Self::Testing => "testing",
            Self::Development => "development",
            Self::Other => "other",
        }
    }

    /// An explicit type, any case: Envtracker's `DEVELOPMENT|STAGING|PRODUCTION|TESTING`, or `OTHER`.
    pub fn parse(value: &str) -> Result<Self, InvalidEnvironmentKind> {
        let wanted = value.trim();
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| InvalidEnvironmentKind {
                given: value.to_owned(),
            })
    }

    /// Guesses the kind from a free name such as `prod-eu`, `Staging 2` or `preview-1234`.
    /// Never fails: a name with no recognisable word is `other`.
    pub fn guess(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        let squashed: String = lower.chars().filter(char::is_ascii_alphanumeric).collect();
        if squashed.contains("preprod") {
            return Self::Staging;
        }
        let words = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(|word| word.trim_end_matches(|c: char| c.is_ascii_digit()))
            .filter(|word| !word.is_empty());
        let mut guess = Self::Other;
        for word in words {
            let kind = match word {
                "prod" | "production" | "prd" | "live" => Self::Production,
                "stage" | "staging" | "stg" | "preprod" | "preproduction" => Self::Staging,
                "qa" | "uat" | "test" | "testing" | "tst" | "sit" => Self::Testing,
                "dev" | "development" | "local" | "preview" | "review" | "sandbox" => {
                    Self::Development
                }
                _ => continue,
            };
            // The least production-like word wins: `prod-preview` is a preview.
            if guess == Self::Other || kind.rank() > guess.rank() {
                guess = kind;
            }
        }
        guess
    }

    const fn rank(self) -> u8 {
        match self {
            Self::Other => 0,
            Self::Production => 1,
            Self::Staging => 2,
            Self::Testing => 3,
            Self::Development => 4,
        }
    }
}

impl fmt::Display for EnvironmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EnvironmentKind::*;

    #[test]
    fn envtracker_types_parse_in_any_case() {
        assert_eq!(EnvironmentKind::parse("DEVELOPMENT"), Ok(Development));
        assert_eq!(EnvironmentKind::parse("staging"), Ok(Staging));
        assert_eq!(EnvironmentKind::parse(" Production "), Ok(Production));
        assert_eq!(EnvironmentKind::parse("TESTING"), Ok(Testing));
        let err = EnvironmentKind::parse("PROD").unwrap_err();
        assert!(err.to_string().contains("use one of PRODUCTION"));
    }

    #[test]
    fn kinds_are_guessed_from_free_names() {
        let cases = [
            ("production", Production),
            ("prod", Production),
            ("prd", Production),
            ("live", Production),
            ("eu-west-prod", Production),
            ("Production 2", Production),
            ("staging", Staging),
            ("stage", Staging),
            ("stg", Staging),
            ("preprod", Staging),
            ("pre-prod", Staging),
            ("pre_production", Staging),
            ("qa", Testing),
            ("uat", Testing),
            ("test", Testing),
            ("qa2", Testing),
            ("dev", Development),
            ("local", Development),
            ("preview", Development),
            ("feature-preview", Development),
            ("prod-preview", Development),
            ("blue", Other),
            ("", Other),
            ("productive", Other),
        ];
        for (name, expected) in cases {
            assert_eq!(EnvironmentKind::guess(name), expected, "{name:?}");
        }
    }
}
