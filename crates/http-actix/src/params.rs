//! Query parameters, read the same way by the API and the dashboard: an optional parameter is
//! absent when missing or blank, and otherwise its parser must accept it. Each caller turns a
//! [`Refused`] into its own answer (the API's JSON 400 naming the field, the dashboard's page).

/// A parameter that could not be used: its name, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The parameter's name.
    pub name: String,
    /// What the parser said.
    pub reason: String,
}

/// An optional parameter: `None` when absent or blank, else what `parse` makes of it (the value
/// as given; parsers trim what they allow around it).
pub fn optional<T, E: std::fmt::Display>(
    name: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, Refused> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            parse(v).map_err(|e| Refused {
                name: name.to_owned(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_or_blank_is_none_and_a_refusal_names_the_parameter() {
        let number = |v: &str| v.trim().parse::<u32>();
        assert_eq!(optional("limit", None, number), Ok(None));
        assert_eq!(optional("limit", Some("  "), number), Ok(None));
        assert_eq!(optional("limit", Some(" 7"), number), Ok(Some(7)));
        let refused = optional("limit", Some("x"), number).unwrap_err();
        assert_eq!(refused.name, "limit");
        assert!(refused.reason.contains("invalid digit"), "{refused:?}");
    }
}
