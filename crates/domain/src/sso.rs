//! Single sign-on rules: which workspaces a person signed in through the company's OpenID
//! provider may open, and with which role, from the groups the provider says they are in.
//!
//! The rules are one line of the server's configuration (`SHIPLOG_OIDC_ROLES`): entries
//! `group=workspace:role`, separated by commas, semicolons or whitespace. The group `*` matches
//! everyone the provider signs in (a default). A person's role in a workspace is the highest
//! role any of their groups gives there (`admin` over `read`); a person matched by no rule may
//! open no workspace. Only `read` and `admin` are roles for people: `ingest` belongs to
//! pipelines.
//!
//! ```
//! use shiplog_domain::sso::RoleRules;
//! use shiplog_domain::key::Role;
//! let rules = RoleRules::parse("platform-admins=acme:admin, engineers=acme:read, *=sandbox:read").unwrap();
//! let grants = rules.grants(&["engineers".to_owned()]);
//! assert_eq!(grants.len(), 2);
//! assert_eq!(grants[0].1, Role::Read);
//! ```

use crate::ids::{InvalidCode, WorkspaceCode};
use crate::key::Role;

/// The group that matches everyone.
pub const EVERYONE: &str = "*";

/// One rule: members of `group` get `role` in `workspace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRule {
    /// The group's name as the provider spells it (compared exactly), or [`EVERYONE`].
    pub group: String,
    /// The workspace it opens.
    pub workspace: WorkspaceCode,
    /// The role it gives there.
    pub role: Role,
}

/// The rules of a server, in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleRules {
    rules: Vec<RoleRule>,
}

/// A rule that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRoleRule {
    /// No rule at all.
    #[error("no rule: write at least one group=workspace:role, e.g. engineers=acme:read")]
    Empty,
    /// An entry not shaped `group=workspace:role`.
    #[error("{entry:?} is not group=workspace:role, e.g. engineers=acme:read")]
    Shape {
        /// The entry as written.
        entry: String,
    },
    /// A workspace code that is not one.
    #[error("in {entry:?}: {source}")]
    Workspace {
        /// The entry as written.
        entry: String,
        /// Why the code is refused.
        source: InvalidCode,
    },
    /// A role a person cannot hold.
    #[error("in {entry:?}: a person's role is read or admin, not {given:?}")]
    Role {
        /// The entry as written.
        entry: String,
        /// The role as written.
        given: String,
    },
}

impl RoleRules {
    /// Reads the rules (see the module's documentation).
    pub fn parse(text: &str) -> Result<Self, InvalidRoleRule> {
        let mut rules = Vec::new();
        for entry in text
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let shape = || InvalidRoleRule::Shape {
                entry: entry.chars().take(120).collect(),
            };
            let (group, grant) = entry.rsplit_once('=').ok_or_else(shape)?;
            let (workspace, role) = grant.rsplit_once(':').ok_or_else(shape)?;
            if group.is_empty() {
                return Err(shape());
            }
            let workspace =
                WorkspaceCode::parse(workspace).map_err(|source| InvalidRoleRule::Workspace {
                    entry: entry.to_owned(),
                    source,
                })?;
            let role = match Role::parse(role) {
                Ok(role @ (Role::Admin | Role::Read)) => role,
                _ => {
                    return Err(InvalidRoleRule::Role {
                        entry: entry.to_owned(),
                        given: role.to_owned(),
                    });
                }
            };
            rules.push(RoleRule {
                group: group.to_owned(),
                workspace,
                role,
            });
        }
        if rules.is_empty() {
            return Err(InvalidRoleRule::Empty);
        }
        Ok(Self { rules })
    }

    /// The rules, in the order written.
    pub fn rules(&self) -> &[RoleRule] {
        &self.rules
    }

    /// The workspaces a member of `groups` may open, each with the highest role a matching
    /// rule gives, in the order the workspaces first appear in the rules.
    pub fn grants(&self, groups: &[String]) -> Vec<(WorkspaceCode, Role)> {
        let mut out: Vec<(WorkspaceCode, Role)> = Vec::new();
        for rule in &self.rules {
            if rule.group != EVERYONE && !groups.contains(&rule.group) {
                continue;
            }
            match out.iter_mut().find(|(w, _)| *w == rule.workspace) {
                Some((_, role)) => {
                    if rule.role == Role::Admin {
                        *role = Role::Admin;
                    }
                }
                None => out.push((rule.workspace.clone(), rule.role)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn acme() -> WorkspaceCode {
        WorkspaceCode::parse("acme").unwrap()
    }

    /// The role `rules` give a member of `groups` in `workspace`, if any.
    fn role_in(rules: &RoleRules, groups: &[String], workspace: &WorkspaceCode) -> Option<Role> {
        rules
            .grants(groups)
            .into_iter()
            .find(|(w, _)| w == workspace)
            .map(|(_, role)| role)
    }

    #[test]
    fn the_highest_role_of_any_matching_group_wins() {
        let rules = RoleRules::parse("engineers=acme:read platform=acme:admin;engineers=beta:read")
            .unwrap();
        assert_eq!(
            role_in(&rules, &groups(&["engineers"]), &acme()),
            Some(Role::Read)
        );
        assert_eq!(
            role_in(&rules, &groups(&["platform", "engineers"]), &acme()),
            Some(Role::Admin)
        );
        // Order of the rules does not matter for the role.
        let reversed = RoleRules::parse("platform=acme:admin,engineers=acme:read").unwrap();
        assert_eq!(
            role_in(&reversed, &groups(&["engineers", "platform"]), &acme()),
            Some(Role::Admin)
        );
        let grants = rules.grants(&groups(&["engineers"]));
        assert_eq!(
            grants,
            vec![
                (acme(), Role::Read),
                (WorkspaceCode::parse("beta").unwrap(), Role::Read)
            ]
        );
    }

    #[test]
    fn no_matching_group_opens_nothing_and_the_star_matches_everyone() {
        let rules = RoleRules::parse("platform=acme:admin").unwrap();
        assert!(
            rules.grants(&groups(&["Platform"])).is_empty(),
            "exact names"
        );
        assert!(rules.grants(&[]).is_empty());
        let rules = RoleRules::parse("*=acme:read, platform=acme:admin").unwrap();
        assert_eq!(role_in(&rules, &[], &acme()), Some(Role::Read));
        assert_eq!(
            role_in(&rules, &groups(&["platform"]), &acme()),
            Some(Role::Admin)
        );
    }

    #[test]
    fn a_group_may_contain_equals_signs_and_colons() {
        // LDAP-style group names (Keycloak can send full paths or DNs).
        let rules = RoleRules::parse("cn=ops,ou=groups=acme:admin").unwrap_err();
        assert!(matches!(rules, InvalidRoleRule::Shape { .. }), "{rules}");
        let rules = RoleRules::parse("/org/team:ops=acme:admin").unwrap();
        assert_eq!(rules.rules()[0].group, "/org/team:ops");
    }

    #[test]
    fn bad_rules_say_what_to_write() {
        for (text, expected) in [
            ("", "no rule"),
            ("  ,; ", "no rule"),
            ("engineers", "not group=workspace:role"),
            ("engineers=acme", "not group=workspace:role"),
            ("=acme:read", "not group=workspace:role"),
            ("engineers=acme!:read", "workspace code"),
            ("engineers=acme:ingest", "read or admin"),
            ("engineers=acme:owner", "read or admin"),
        ] {
            let error = RoleRules::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
