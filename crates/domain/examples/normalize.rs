//! Normalizes status words as providers send them.
//!
//! `cargo run -p shiplog-domain --example normalize -- gitlab canceled` prints what shiplog
//! makes of one word; without arguments it prints a few providers' words.
#![allow(clippy::print_stdout, missing_docs)]

use shiplog_domain::status::{Provider, finished, normalize};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pairs: Vec<(String, String)> = match args.as_slice() {
        [provider, words @ ..] if !words.is_empty() => words
            .iter()
            .map(|word| (provider.clone(), word.clone()))
            .collect(),
        _ => [
            ("github", "in_progress"),
            ("github", "failure"),
            ("gitlab", "canceled"),
            ("gitlab", "skipped"),
            ("jenkins", "UNSTABLE"),
            ("circleci", "success"),
            ("an-unknown-ci", "Succeeded"),
        ]
        .iter()
        .map(|(p, w)| ((*p).to_owned(), (*w).to_owned()))
        .collect(),
    };
    for (provider, word) in pairs {
        let parsed = Provider::parse(&provider);
        let status = normalize(parsed, &word);
        let end = if finished(parsed, &word) {
            "a finish"
        } else {
            "not a finish"
        };
        println!(
            "{provider:>14} {word:<12} → {:<10} ({end})",
            status.as_str()
        );
    }
}
