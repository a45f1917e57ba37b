//! Reads, and the writes other than ingest, one module per aggregate.

mod deployments;
mod dora;
mod environments;
mod references;

pub(crate) use deployments::{
    Placed, deployments_by_id, events_for_commit, events_for_deployment, get_deployment,
    list_deployments,
};
#[cfg(test)]
pub(crate) use dora::{FINISHED, window_record};
pub(crate) use dora::{WindowRow, dora, finished_in, window_rows};
pub(crate) use environments::{assign, board, create_environment};
pub(crate) use references::get_reference;

#[cfg(test)]
mod tests {
    /// SQLite reads `$n` as a named parameter and numbers named parameters in order of first
    /// appearance, while diesel binds by position: a raw statement whose `$3` appears before
    /// its `$2` would bind the wrong values on SQLite only.
    #[test]
    fn raw_statements_name_their_parameters_in_order() {
        for (name, sql) in [
            ("BOARD_SQL", super::environments::BOARD_SQL),
            ("DORA_EDGES_SQL", super::dora::DORA_EDGES_SQL),
            ("LOOKUP_SQL", crate::ingest::LOOKUP_SQL),
            ("SIGHTING_SQL", crate::ingest::SIGHTING_SQL),
            ("RESTART_SQL", crate::ingest::RESTART_SQL),
            ("RESTART_OWNER_SQL", crate::ingest::RESTART_OWNER_SQL),
            ("SHARE_SQL", crate::ingest::SHARE_SQL),
            ("claim_sql", crate::hooks::claim_sql!("")),
        ] {
            let mut highest = 0u32;
            let mut rest = sql;
            while let Some(at) = rest.find('$') {
                rest = rest.get(at + 1..).unwrap_or_default();
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let n: u32 = digits.parse().unwrap();
                assert!(
                    n <= highest + 1,
                    "{name}: ${n} appears before ${}",
                    highest + 1
                );
                highest = highest.max(n);
            }
            assert!(highest > 0, "{name} has parameters");
        }
    }
}
