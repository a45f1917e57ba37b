//! Property tests: parsers are total, normalization is total and spelling-blind, lifecycle
//! merging does not depend on arrival order or repetition.

use proptest::prelude::*;
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{CommitSha, EnvironmentCode, IdempotencyKey, ProjectSlug};
use shiplog_domain::lifecycle::{Lifecycle, Observation};
use shiplog_domain::reference::{ReferenceKey, parse_references};
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::{DeploymentStatus, Provider, normalize};
use shiplog_domain::timestamp::Timestamp;

fn any_status() -> impl Strategy<Value = DeploymentStatus> {
    prop::sample::select(DeploymentStatus::ALL.to_vec())
}

fn any_provider() -> impl Strategy<Value = Provider> {
    prop::sample::select(Provider::ALL.to_vec())
}

/// A provider word from any table, or noise.
fn status_word() -> impl Strategy<Value = String> {
    let known: Vec<String> = Provider::ALL
        .iter()
        .flat_map(|p| p.words().iter().map(|(w, _)| (*w).to_owned()))
        .collect();
    prop_oneof![prop::sample::select(known), "\\PC{0,24}"]
}

fn observation() -> impl Strategy<Value = Observation> {
    (
        any_status(),
        0i64..50,
        prop::option::of(0i64..50),
        prop::option::of(0i64..50),
        prop::sample::select(vec!["", "SUCCESS", "x"]),
    )
        .prop_map(|(status, at, started, finished, raw)| {
            let t = |s: i64| Timestamp::from_unix_seconds(1_700_000_000 + s).unwrap();
            Observation {
                status,
                provider_status: if raw.is_empty() {
                    status.as_str().to_owned()
                } else {
                    raw.to_owned()
                },
                at: t(at),
                started_at: started.map(t),
                finished_at: finished.map(t),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_parser_panics_on_any_input(input in "\\PC{0,80}|[\\x00-\\x7f]{0,80}") {
        let _ = parse_references(&input);
        let _ = ReferenceKey::parse(&input);
        let _ = Timestamp::parse(&input);
        let _ = RepoIdentity::parse(&input);
        let _ = EnvironmentKind::parse(&input);
        let _ = EnvironmentKind::guess(&input);
        let _ = PipelineEvent::parse(&input);
        let _ = ProjectSlug::parse(&input);
        let _ = EnvironmentCode::from_name(&input);
        let _ = CommitSha::parse(&input);
        let _ = IdempotencyKey::parse(&input);
        let _ = DeploymentStatus::parse(&input);
        for provider in Provider::ALL {
            let _ = normalize(provider, &input);
        }
        let _ = Provider::parse(&input);
    }

    #[test]
    fn epoch_numbers_never_panic(n in any::<i64>(), f in any::<f64>()) {
        let _ = Timestamp::from_epoch(n);
        let _ = Timestamp::from_epoch_f64(f);
    }

    #[test]
    fn normalization_ignores_case_padding_and_separators(
        provider in any_provider(),
        word in status_word(),
    ) {
        let base = normalize(provider, &word);
        prop_assert_eq!(normalize(provider, &word.to_ascii_uppercase()), base);
        prop_assert_eq!(normalize(provider, &word.to_ascii_lowercase()), base);
        prop_assert_eq!(normalize(provider, &format!("  {word}\t")), base);
        prop_assert_eq!(normalize(provider, &word.replace('_', "-")), base);
    }

    #[test]
    fn normalization_does_not_depend_on_the_provider_for_table_words(
        a in any_provider(),
        b in any_provider(),
        word in status_word(),
    ) {
        prop_assert_eq!(normalize(a, &word), normalize(b, &word));
    }

    #[test]
    fn lifecycle_final_state_is_order_independent(
        observations in prop::collection::vec(observation(), 1..8),
        seed in any::<u64>(),
    ) {
        let forward = Lifecycle::settle(&observations);
        let mut reversed = observations.clone();
        reversed.reverse();
        let mut shuffled = observations.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let j = usize::try_from(state % (i as u64 + 1)).unwrap();
            shuffled.swap(i, j);
        }
        prop_assert_eq!(&Lifecycle::settle(&reversed), &forward);
        prop_assert_eq!(&Lifecycle::settle(&shuffled), &forward);
    }

    #[test]
    fn lifecycle_ignores_duplicates(observations in prop::collection::vec(observation(), 1..6)) {
        let once = Lifecycle::settle(&observations);
        let twice: Vec<Observation> = observations.iter().chain(observations.iter()).cloned().collect();
        prop_assert_eq!(Lifecycle::settle(&twice), once);
    }

    #[test]
    fn a_terminal_status_is_never_replaced_by_a_non_terminal_one(
        first in observation(),
        second in observation(),
    ) {
        let state = Lifecycle::new(&first);
        let next = state.apply(&second).lifecycle;
        if first.status.is_terminal() && !second.status.is_terminal() {
            prop_assert_eq!(next.status, first.status);
        }
        if first.status.is_terminal() && second.status.is_terminal() && second.at < first.at {
            prop_assert_eq!(next.status, first.status);
        }
    }

    #[test]
    fn references_are_unique_and_closing_wins(
        keys in prop::collection::vec("[A-Z]{1,4}-[1-9][0-9]{0,4}", 1..6),
        closing_index in any::<prop::sample::Index>(),
    ) {
        let message = keys.iter().map(|k| format!("#{k}")).collect::<Vec<_>>().join(" ");
        let chosen = closing_index.get(&keys).clone();
        let with_close = format!("{message} fixes #{chosen}");
        let found = parse_references(&with_close);
        let mut distinct: Vec<&String> = Vec::new();
        for key in &keys {
            if !distinct.contains(&key) {
                distinct.push(key);
            }
        }
        prop_assert_eq!(found.len(), distinct.len());
        for (reference, key) in found.iter().zip(distinct) {
            prop_assert_eq!(reference.key.as_str(), key.trim_start_matches('#'));
            prop_assert_eq!(reference.closing, *key == chosen);
        }
    }

    #[test]
    fn timestamps_round_trip_through_rfc3339(micros in 0i64..253_402_300_799_000_000) {
        let t = Timestamp::from_unix_micros(micros).unwrap();
        prop_assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
        prop_assert_eq!(t.unix_micros(), micros);
    }

    #[test]
    fn repository_identities_parse_back_to_themselves(
        host in "[a-z]{1,10}\\.(com|org|io)",
        path in prop::collection::vec("[A-Za-z0-9_-][A-Za-z0-9._-]{0,12}", 2..4),
    ) {
        let url = format!("https://{host}/{}", path.join("/"));
        if let Ok(repo) = RepoIdentity::parse(&url) {
            prop_assert_eq!(RepoIdentity::parse(repo.as_str()).unwrap(), repo);
        }
    }

    #[test]
    fn generated_codes_always_parse(name in "\\PC{0,100}") {
        if let Ok(code) = EnvironmentCode::from_name(&name) {
            prop_assert_eq!(EnvironmentCode::parse(code.as_str()).unwrap(), code);
        }
    }
}
