//! `dora_days`: the finished deployments a DORA query reads, packed per environment and UTC
//! day, so that a query over a year reads 365 rows of an environment instead of one index entry
//! per deployment (issue #12).
//!
//! A day's row is kept by triggers on `deployments` (migration 000017) for days before the
//! current one by the database's clock: a deployment of such a day that finishes adds its day's
//! row (state stale) if there is none; a change to anything a query reads of a finished
//! deployment, or its deletion, makes its day stale again and bumps the row's `version`.
//! Deployments of the current day (nearly every ingest) fire nothing: their day cannot be packed
//! before it has been over for an hour ([`PACK_AFTER`]) by the same clock, and [`prepare`] finds
//! their days once it has. [`crate::Store::pack_dora_days`], which the server calls in the
//! background, packs the days over for an hour. A query reads a window's packed days and the
//! deployments of every other part of the window (`deployments::dora`): a stale or unpacked day is
//! read from `deployments`, as before, so packing changes how fast a report comes, never what
//! it says.
//!
//! **Packing never lands stale data.** On SQLite the packer runs as jobs of the one writer,
//! each of which reads days and writes their packed rows in one transaction: no change can come
//! in between. On PostgreSQL ingests run concurrently, so packing is three steps:
//! 1. [`prepare`]: stale days over before the horizon go to state 1 (pending).
//! 2. [`fence`]: each pending day records the next transaction id not yet given out.
//!    From then on every transaction that changes the day sees it pending, so its trigger makes
//!    it stale again and bumps its version (taking its row lock). A transaction whose trigger
//!    ran before the day was pending, or that wrote the day before it was over (no trigger),
//!    holds an older transaction id.
//! 3. [`pack`]: a pending day whose fence is at or below the oldest transaction still running
//!    (every transaction that could have changed it unseen has ended) has its version and then
//!    its deployments read, each statement on a fresh snapshot, and is written packed only if
//!    its version and state are still those read: a change since then bumped the version, or
//!    holds the row's lock, and is waited for, after which the version no longer matches.
//!
//! The one assumption: the database's clock does not step back by more than [`PACK_AFTER`].
//!
//! The packed form ([`Packed`]) is private to this crate and versioned by its first byte; a
//! format this build does not know fails the query as corrupt rather than guessing.

use std::sync::Arc;

use diesel::prelude::*;
use shiplog_domain::dora::{DeploymentRecord as DoraRecord, Outcome, ReworkReason};
use shiplog_domain::sighting::lead_time_start;
use shiplog_domain::status::DeploymentStatus;

use crate::columns::{Shared, ShortText, opt_time, time};
use crate::conn::{DbConn, Native, per_backend};
use crate::deployments::dora::{WindowRow, finished_in, window_rows};
use crate::error::{StoreError, corrupt};
use crate::schema::{deployments, dora_days, instance_settings};

/// A day in microseconds; `day` is `deployed_at / DAY`.
pub(crate) const DAY: i64 = 86_400_000_000;

/// How long a day has been over before it is packed: deployments still come in for the day that
/// just ended, and a day packed too early is packed twice.
pub const PACK_AFTER: i64 = 3_600_000_000;

/// A day's state: its deployments are read from `deployments`.
const STALE: i16 = 0;
/// PostgreSQL: a day marked to be packed, waiting for its fence.
const PENDING: i16 = 1;
/// A day whose `records` hold its deployments.
const PACKED: i16 = 2;

/// The most days one write job packs, so that packing never holds the writer for long.
pub(crate) const DAYS_PER_JOB: usize = 8;

/// The first day packing leaves alone at `now` (microseconds): the days before it are over for
/// at least [`PACK_AFTER`].
const fn horizon(now: i64) -> i64 {
    now.saturating_sub(PACK_AFTER).div_euclid(DAY)
}

/// The `instance_settings` row holding the first day the packer has not looked through for
/// days written without a row (see [`prepare`]).
const SCANNED: &str = "dora_days_scanned";

/// Adds the row of each day in `[$1, $2)` (days of `$3` microseconds) for each environment
/// with a finished deployment (`$4`, `$5`) that day; rows that exist stay as they are. Both
/// backends run it: `WITH RECURSIVE` lists the days.
pub(crate) const ROWS_FOR_DAYS_SQL: &str = "\
    WITH RECURSIVE days (day) AS ( \
      SELECT CAST($1 AS BIGINT) WHERE $1 < $2 \
      UNION ALL SELECT day + 1 FROM days WHERE day + 1 < $2) \
    INSERT INTO dora_days (environment_id, day) \
    SELECT e.id, days.day FROM days, environments e \
    WHERE EXISTS (SELECT 1 FROM deployments d \
      WHERE d.environment_id = e.id AND d.deployed_at >= days.day * $3 \
        AND d.deployed_at < (days.day + 1) * $3 AND d.status IN ($4, $5)) \
    ON CONFLICT DO NOTHING";

/// The most days one call looks through for days without a row.
const SCAN_DAYS: i64 = 366;

#[derive(QueryableByName)]
struct Clock {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    now: i64,
}

/// Decides which days a packing call may pack and readies them; returns the horizon: days
/// before it may be packed. The horizon comes from `now` or the database's clock, whichever is
/// earlier: the triggers leave alone a deployment written before the end of its day by the
/// database's clock, so a day must be over for [`PACK_AFTER`] by that clock before it is
/// packed. Such deployments add no row to `dora_days`, so this then looks through the days
/// that became packable since the last call for deployments without their day's row, and, on
/// PostgreSQL, marks the stale days before the horizon pending (step 1).
pub(crate) fn prepare(conn: &mut DbConn, now: i64) -> Result<i64, StoreError> {
    use diesel::sql_types::{BigInt, Text};

    let clock: Clock = per_backend!(conn, {
        sqlite(c) => {
            diesel::sql_query("SELECT CAST(unixepoch() AS BIGINT) * 1000000 AS now").get_result(c)
        },
        postgres(c) => diesel::sql_query(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now",
        )
        .get_result(c),
    })?;
    let horizon = horizon(now.min(clock.now));
    let scanned: Option<String> = instance_settings::table
        .filter(instance_settings::name.eq(SCANNED))
        .select(instance_settings::value)
        .first_on(conn)
        .optional()?;
    let scanned = match scanned {
        Some(day) => day.parse::<i64>().map_err(|_| corrupt(SCANNED, &day))?,
        None => horizon,
    };
    let until = horizon.min(scanned.saturating_add(SCAN_DAYS));
    if until > scanned {
        // One statement for the whole range: each day of it, each environment with a finished
        // deployment that day (one seek of `deployments_by_environment_time` each).
        diesel::sql_query(ROWS_FOR_DAYS_SQL)
            .bind::<BigInt, _>(scanned)
            .bind::<BigInt, _>(until)
            .bind::<BigInt, _>(DAY)
            .bind::<Text, _>(DeploymentStatus::Success.as_str())
            .bind::<Text, _>(DeploymentStatus::Failed.as_str())
            .execute_on(conn)?;
        diesel::update(instance_settings::table.filter(instance_settings::name.eq(SCANNED)))
            .set(instance_settings::value.eq(until.to_string()))
            .execute_on(conn)?;
    }
    per_backend!(conn, {
        sqlite(_) => {},
        postgres(_) => {
            diesel::update(
                dora_days::table
                    .filter(dora_days::state.eq(STALE))
                    .filter(dora_days::day.lt(horizon)),
            )
            .set((
                dora_days::state.eq(PENDING),
                dora_days::fence.eq(None::<i64>),
            ))
            .execute_on(conn)?;
        },
    });
    Ok(horizon)
}

/// The packed days of one environment among `[first, last)`, in day order.
pub(crate) fn packed_days(
    conn: &mut DbConn,
    environment: &str,
    (first, last): (i64, i64),
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    if first >= last {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, Option<Vec<u8>>)> = dora_days::table
        .filter(dora_days::environment_id.eq(environment))
        .filter(dora_days::day.ge(first))
        .filter(dora_days::day.lt(last))
        .filter(dora_days::state.eq(PACKED))
        .select((dora_days::day, dora_days::records))
        .order(dora_days::day.asc())
        .load_on(conn)?;
    rows.into_iter()
        .map(|(day, records)| {
            records
                .map(|r| (day, r))
                .ok_or_else(|| corrupt("packed day without records", &day.to_string()))
        })
        .collect()
}

/// PostgreSQL, step 2: gives the pending days without a fence the next transaction id not yet
/// given out. Run in a transaction after [`prepare`]'s has committed.
pub(crate) fn fence(conn: &mut DbConn) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "UPDATE dora_days SET fence = pg_snapshot_xmax(pg_current_snapshot())::text::bigint \
         WHERE state = $1 AND fence IS NULL",
    )
    .bind::<diesel::sql_types::SmallInt, _>(PENDING)
    .execute_on(conn)?)
}

#[derive(QueryableByName)]
struct Oldest {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    xmin: i64,
}

/// Packs up to `max` days (step 3 on PostgreSQL; on SQLite, any day before `horizon` not yet
/// packed). Returns how many days it took up, and how many of them it packed (the others
/// changed meanwhile and are stale again).
pub(crate) fn pack(
    conn: &mut DbConn,
    horizon: i64,
    max: usize,
) -> Result<(usize, usize), StoreError> {
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let due = dora_days::table
        .filter(dora_days::day.lt(horizon))
        .select((
            dora_days::environment_id,
            dora_days::day,
            dora_days::version,
        ))
        .order(dora_days::day.asc())
        .limit(max);
    let due: Vec<(String, i64, i64)> = per_backend!(conn, {
        sqlite(c) => due.filter(dora_days::state.ne(PACKED)).load(c)?,
        postgres(c) => {
            let oldest: Oldest = diesel::sql_query(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin",
            )
            .get_result(c)?;
            due.filter(dora_days::state.eq(PENDING))
                .filter(dora_days::fence.le(oldest.xmin))
                .load(c)?
        },
    });
    let mut packed = 0;
    for (environment, day, version) in &due {
        let records = Packed::read(conn, environment, *day)?;
        packed += diesel::update(
            dora_days::table
                .filter(dora_days::environment_id.eq(environment))
                .filter(dora_days::day.eq(day))
                .filter(dora_days::version.eq(version))
                .filter(dora_days::state.ne(PACKED)),
        )
        .set((
            dora_days::state.eq(PACKED),
            dora_days::records.eq(records.0),
        ))
        .execute_on(conn)?;
    }
    Ok((due.len(), packed))
}

/// How many days before `horizon` are not packed.
pub(crate) fn unpacked(conn: &mut DbConn, horizon: i64) -> Result<usize, StoreError> {
    let n: i64 = dora_days::table
        .filter(dora_days::state.ne(PACKED))
        .filter(dora_days::day.lt(horizon))
        .count()
        .get_result_on(conn)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// A finished deployment as a day is packed from `deployments`: its project, and what a DORA
/// query reads of it (read per project through `dora::window_rows`, the very function a
/// query's stretches read through; see there why).
type DayRow = (ShortText, WindowRow);

/// The format of [`Packed`] this build writes and reads.
const FORMAT: u8 = 1;

/// Record flags.
const SUCCEEDED: u8 = 1;
const HAS_COMMIT: u8 = 2;
const COMMIT_TIME: u8 = 4;
const STARTED: u8 = 8;

/// One day's finished deployments of an environment, packed: the format byte, then per project
/// (in id order) a section: the project's id, the section's length in bytes after it, its
/// applications' ids, then its deployments in time order, each its id, its application's
/// number in the section, flags, its rework reason's number (0: none), its finish time, and its
/// commit time and start when it has them. Texts are a length byte and UTF-8; numbers are
/// little-endian.
pub(crate) struct Packed(pub(crate) Vec<u8>);

impl Packed {
    /// Reads and packs one day of `environment` from `deployments`.
    fn read(conn: &mut DbConn, environment: &str, day: i64) -> Result<Self, StoreError> {
        let from = day.saturating_mul(DAY);
        let to = from.saturating_add(DAY);
        let mut projects: Vec<String> = finished_in(environment, from, to)
            .select(deployments::project_id)
            .distinct()
            .load_on(conn)?;
        projects.sort_unstable();
        let mut rows: Vec<DayRow> = Vec::new();
        for project in &projects {
            let short = ShortText::new(project).map_err(|_| corrupt("project id", project))?;
            rows.extend(
                window_rows(conn, environment, Some(project), None, (from, to))?
                    .into_iter()
                    .map(|row| (short, row)),
            );
        }
        Self::pack(rows)
    }

    fn pack(mut rows: Vec<DayRow>) -> Result<Self, StoreError> {
        rows.sort_unstable_by(|(a_project, a), (b_project, b)| {
            (a_project.as_str(), a.3, a.0.as_str()).cmp(&(b_project.as_str(), b.3, b.0.as_str()))
        });
        let mut out = vec![FORMAT];
        let mut rest = rows.as_slice();
        while let Some(first) = rest.first() {
            let project = first.0;
            let end = rest
                .iter()
                .position(|r| r.0 != project)
                .unwrap_or(rest.len());
            let (section, after) = rest.split_at(end);
            rest = after;
            put_text(&mut out, project.as_str())?;
            let length_at = out.len();
            out.extend_from_slice(&[0; 4]);
            let mut applications: Vec<ShortText> = section.iter().map(|r| r.1.1).collect();
            applications.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
            applications.dedup();
            put_count(&mut out, applications.len())?;
            for application in &applications {
                put_text(&mut out, application.as_str())?;
            }
            put_count(&mut out, section.len())?;
            for (
                _,
                (id, application, succeeded, at, has_commit, timestamp, seen, started, rework),
            ) in section
            {
                put_text(&mut out, id)?;
                let number = applications
                    .binary_search_by(|a| a.as_str().cmp(application.as_str()))
                    .map_err(|_| corrupt("application", application.as_str()))?;
                put_count(&mut out, number)?;
                let commit_time =
                    lead_time_start(opt_time(*timestamp)?, opt_time(*seen)?, time(*at)?)
                        .map(|t| t.unix_micros());
                let flags = [
                    (*succeeded, SUCCEEDED),
                    (*has_commit, HAS_COMMIT),
                    (commit_time.is_some(), COMMIT_TIME),
                    (started.is_some(), STARTED),
                ]
                .into_iter()
                .filter(|(on, _)| *on)
                .fold(0, |flags, (_, flag)| flags | flag);
                out.push(flags);
                let reason = crate::columns::rework(rework.as_ref().map(ShortText::as_str))?;
                out.push(reason.map_or(0, reason_number));
                out.extend_from_slice(&at.to_le_bytes());
                for time in [commit_time, *started].into_iter().flatten() {
                    out.extend_from_slice(&time.to_le_bytes());
                }
            }
            let length = u32::try_from(out.len() - length_at - 4)
                .map_err(|_| corrupt("packed section length", &out.len().to_string()))?;
            if let Some(slot) = out.get_mut(length_at..length_at + 4) {
                slot.copy_from_slice(&length.to_le_bytes());
            }
        }
        Ok(Self(out))
    }
}

/// Adds the records of a packed day to `out`: those of `project` and `application` when
/// given, of `environment`.
pub(crate) fn unpack(
    bytes: &[u8],
    project: Option<&str>,
    application: Option<&str>,
    environment: &Arc<str>,
    shared: &mut Shared,
    out: &mut Vec<DoraRecord>,
) -> Result<(), StoreError> {
    let mut at = Reader(bytes);
    let format = at.u8()?;
    if format != FORMAT {
        return Err(corrupt("packed DORA day format", &format.to_string()));
    }
    while !at.0.is_empty() {
        let section_project = at.text()?;
        let length = usize::try_from(at.u32()?).map_err(|_| corrupt("packed length", ""))?;
        let section = at.take(length)?;
        if project.is_some_and(|p| p != section_project) {
            continue;
        }
        let mut at = Reader(section);
        let count = at.count()?;
        let mut applications = Vec::with_capacity(count);
        for _ in 0..count {
            let id = at.text()?;
            // Records of another application than the one asked for are skipped.
            let wanted = application.is_none_or(|a| a == id);
            applications.push(wanted.then(|| shared.get_str(id)).transpose()?);
        }
        let count = at.count()?;
        out.reserve(count);
        for _ in 0..count {
            let id = at.text()?;
            let application = applications
                .get(at.count()?)
                .ok_or_else(|| corrupt("packed application number", id))?;
            let flags = at.u8()?;
            let reason = at.u8()?;
            let finished = at.i64()?;
            let commit_time = if flags & COMMIT_TIME == 0 {
                None
            } else {
                Some(at.i64()?)
            };
            let started = if flags & STARTED == 0 {
                None
            } else {
                Some(at.i64()?)
            };
            let Some(application) = application else {
                continue;
            };
            out.push(DoraRecord {
                id: id.to_owned(),
                application: Arc::clone(application),
                environment: Arc::clone(environment),
                outcome: if flags & SUCCEEDED == 0 {
                    Outcome::Failed
                } else {
                    Outcome::Succeeded
                },
                finished_at: time(finished)?,
                has_commit: flags & HAS_COMMIT != 0,
                commit_time: opt_time(commit_time)?,
                started_at: opt_time(started)?,
                rework: match reason {
                    0 => None,
                    n => Some(
                        *ReworkReason::ALL
                            .get(usize::from(n) - 1)
                            .ok_or_else(|| corrupt("packed rework reason", &n.to_string()))?,
                    ),
                },
            });
        }
    }
    Ok(())
}

/// A rework reason's number in the packed form: 1 + its place in [`ReworkReason::ALL`].
fn reason_number(reason: ReworkReason) -> u8 {
    ReworkReason::ALL
        .iter()
        .position(|r| *r == reason)
        .and_then(|n| u8::try_from(n + 1).ok())
        .unwrap_or(0)
}

fn put_text(out: &mut Vec<u8>, text: &str) -> Result<(), StoreError> {
    let len = u8::try_from(text.len()).map_err(|_| corrupt("id too long to pack", text))?;
    out.push(len);
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn put_count(out: &mut Vec<u8>, n: usize) -> Result<(), StoreError> {
    let n = u32::try_from(n).map_err(|_| corrupt("count too large to pack", &n.to_string()))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

/// Reads the packed form front to back; running short is corruption.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt("packed DORA day", "cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut bytes = [0; N];
        bytes.copy_from_slice(self.take(N)?);
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        let [byte] = self.array()?;
        Ok(byte)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn count(&mut self) -> Result<usize, StoreError> {
        usize::try_from(self.u32()?).map_err(|_| corrupt("packed count", ""))
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn text(&mut self) -> Result<&'a str, StoreError> {
        let len = usize::from(self.u8()?);
        std::str::from_utf8(self.take(len)?).map_err(|_| corrupt("packed text", "not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployments::dora::FINISHED;

    fn short(text: &str) -> ShortText {
        ShortText::new(text).unwrap()
    }

    /// Two projects, two applications, every flag and rework reason.
    fn rows() -> Vec<DayRow> {
        let row = |project: &str, id: &str, app: &str, n: i64| -> DayRow {
            let reason = ReworkReason::ALL
                .get(usize::try_from(n).unwrap() % 6)
                .map(|r| short(r.as_str()));
            (
                short(project),
                (
                    id.to_owned(),
                    short(app),
                    n % 2 == 0,
                    1_000 + n,
                    n % 3 == 0,
                    (n % 4 == 0).then_some(10 + n),
                    (n % 5 == 0).then_some(20 + n),
                    (n % 7 == 0).then_some(500 + n),
                    reason,
                ),
            )
        };
        (0..14)
            .map(|n| {
                let project = if n % 2 == 0 { "p-two" } else { "p-one" };
                let app = if n % 3 == 0 { "api" } else { "web" };
                row(project, &format!("d-{n:02}"), app, n)
            })
            .collect()
    }

    fn unpacked(
        packed: &Packed,
        project: Option<&str>,
        application: Option<&str>,
    ) -> Vec<DoraRecord> {
        let environment: Arc<str> = "prod".into();
        let mut out = Vec::new();
        unpack(
            &packed.0,
            project,
            application,
            &environment,
            &mut Shared::default(),
            &mut out,
        )
        .unwrap();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    #[test]
    fn a_packed_day_unpacks_to_the_records_it_was_packed_from() {
        let rows = rows();
        let packed = Packed::pack(rows.clone()).unwrap();
        let environment: Arc<str> = "prod".into();
        let mut shared = Shared::default();
        let expected: Vec<(String, String, DoraRecord)> = rows
            .into_iter()
            .map(|(project, row)| {
                let app = row.1.as_str().to_owned();
                let record =
                    crate::deployments::dora::window_record(row, &environment, &mut shared)
                        .unwrap();
                (project.as_str().to_owned(), app, record)
            })
            .collect();
        let pick = |project: Option<&str>, app: Option<&str>| -> Vec<DoraRecord> {
            let mut records: Vec<DoraRecord> = expected
                .iter()
                .filter(|(p, a, _)| project.is_none_or(|w| w == p) && app.is_none_or(|w| w == a))
                .map(|(_, _, r)| r.clone())
                .collect();
            records.sort_by(|a, b| a.id.cmp(&b.id));
            records
        };
        assert_eq!(unpacked(&packed, None, None), pick(None, None));
        assert_eq!(unpacked(&packed, None, None).len(), 14);
        assert_eq!(
            unpacked(&packed, Some("p-one"), None),
            pick(Some("p-one"), None)
        );
        assert_eq!(
            unpacked(&packed, Some("p-two"), Some("api")),
            pick(Some("p-two"), Some("api"))
        );
        assert!(unpacked(&packed, Some("p-three"), None).is_empty());
        assert!(unpacked(&packed, None, Some("batch")).is_empty());
    }

    #[test]
    fn an_unknown_or_cut_packing_is_corrupt_not_a_guess() {
        let packed = Packed::pack(rows()).unwrap();
        let environment: Arc<str> = "prod".into();
        let mut out = Vec::new();
        let mut read = |bytes: &[u8]| {
            unpack(
                bytes,
                None,
                None,
                &environment,
                &mut Shared::default(),
                &mut out,
            )
        };
        assert!(read(&[9]).is_err(), "unknown format");
        assert!(read(&packed.0[..packed.0.len() - 3]).is_err(), "cut short");
        assert!(read(&[FORMAT]).is_ok(), "a day with nothing to count");
    }

    /// The triggers of migration 000017 spell in SQL the statuses a query counts.
    #[test]
    fn the_triggers_count_the_statuses_a_query_counts() {
        for up in [
            include_str!("../../../../migrations/sqlite/2026-11-29-000017_dora_days/up.sql"),
            include_str!("../../../../migrations/postgres/2026-11-29-000017_dora_days/up.sql"),
        ] {
            let words = format!("IN ('{}', '{}')", FINISHED[0], FINISHED[1]);
            assert!(up.matches(&words).count() >= 4, "{words} in {up}");
            assert!(!up.contains("IN ('success')") && !up.contains("'cancelled'"));
        }
    }
}
