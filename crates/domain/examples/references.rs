//! Finds the change requests a commit message names.
//!
//! `cargo run -p shiplog-domain --example references -- "Fix login (closes #42, #PR-7)"`;
//! without an argument it reads a sample message.
#![allow(clippy::print_stdout, missing_docs)]

use shiplog_domain::reference::parse_references;

fn main() {
    let message = std::env::args().nth(1).unwrap_or_else(|| {
        "Fix the login redirect\n\nFixes #42, see #PR-123 and acme/billing#7.".to_owned()
    });
    let found = parse_references(&message);
    if found.is_empty() {
        println!("no reference");
    }
    for reference in found {
        let closing = if reference.closing {
            "closes it"
        } else {
            "mentions it"
        };
        println!("{:<16} {closing}", reference.key.as_str());
    }
}
