//! What free text shiplog keeps may hold.
//!
//! A one-line field (a name, a branch, a status word, who deployed) is shown in terminals,
//! logs and the dashboard, so it may hold no control character (a line break, an escape
//! sequence that recolours a terminal, a bell) and no bidirectional formatting character
//! (which can make text read differently from what it is, as in `\u{202E}`).

use std::fmt;

/// Why a one-line field was refused: the first character it may not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineError(pub char);

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.0.is_control() {
            "the control character"
        } else {
            "the bidirectional formatting character"
        };
        write!(
            f,
            "holds {what} U+{:04X}, which a one-line field may not hold: remove it",
            u32::from(self.0)
        )
    }
}

impl std::error::Error for LineError {}

/// Whether `c` is a bidirectional formatting character (marks, embeddings, overrides,
/// isolates).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Checks a one-line field: no control character (C0, DEL, C1; line breaks and tabs
/// included) and no bidirectional formatting character.
///
/// ```
/// use shiplog_domain::text::check_line;
/// assert!(check_line("Deploy to Production EU").is_ok());
/// assert_eq!(
///     check_line("main\u{1b}[31m").unwrap_err().to_string(),
///     "holds the control character U+001B, which a one-line field may not hold: remove it"
/// );
/// assert!(check_line("abc\u{202E}fed").is_err());
/// ```
pub fn check_line(text: &str) -> Result<(), LineError> {
    match text.chars().find(|c| c.is_control() || is_bidi_control(*c)) {
        Some(c) => Err(LineError(c)),
        None => Ok(()),
    }
}

/// Makes text one line, for text shiplog receives but cannot refuse (a provider's incident
/// title): each character [`check_line`] refuses becomes a space, or, for a bidirectional
/// formatting character, is dropped.
///
/// ```
/// assert_eq!(shiplog_domain::text::one_line("down\nagain\u{202E}!"), "down again!");
/// ```
pub fn one_line(text: &str) -> String {
    text.chars()
        .filter(|c| !is_bidi_control(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_control_and_bidi_character_and_nothing_else() {
        for c in [
            '\0', '\u{7}', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
        ] {
            assert_eq!(check_line(&format!("a{c}b")), Err(LineError(c)), "{c:?}");
        }
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}',
        ] {
            assert_eq!(check_line(&format!("a{c}b")), Err(LineError(c)), "{c:?}");
        }
        for ok in [
            "Production EU",
            "feature/ß-ü",
            "日本語",
            "emoji 🚀",
            "a\u{200d}b",
            "",
        ] {
            assert!(check_line(ok).is_ok(), "{ok}");
        }
        assert!(LineError('\u{202e}').to_string().contains("bidirectional"));
    }
}
