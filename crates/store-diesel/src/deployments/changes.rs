//! The live feeds' shared change source: which workspaces recorded pipeline events since a
//! position in `pipeline_events.seq` (its primary key, so both reads are index range scans).

use diesel::prelude::*;
use shiplog_app::ids::WorkspaceId;
use shiplog_app::ports::EventChanges;

use crate::columns::uuid;
use crate::conn::{DbConn, Native};
use crate::error::StoreError;
use crate::schema::pipeline_events;

pub(crate) fn after(
    conn: &mut DbConn,
    after: Option<i64>,
    limit: u32,
) -> Result<EventChanges, StoreError> {
    let Some(after) = after else {
        return Ok(EventChanges {
            position: newest(conn)?,
            workspaces: Vec::new(),
            complete: true,
        });
    };
    let rows: Vec<(i64, String)> = pipeline_events::table
        .filter(pipeline_events::seq.gt(after))
        .order(pipeline_events::seq.asc())
        .limit(i64::from(limit))
        .select((pipeline_events::seq, pipeline_events::workspace_id))
        .load_on(conn)?;
    if rows.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
        return Ok(EventChanges {
            position: newest(conn)?,
            workspaces: Vec::new(),
            complete: false,
        });
    }
    let mut workspaces = Vec::new();
    for (_, workspace) in &rows {
        let workspace = WorkspaceId::from_uuid(uuid(workspace)?);
        if !workspaces.contains(&workspace) {
            workspaces.push(workspace);
        }
    }
    Ok(EventChanges {
        position: rows.last().map_or(after, |(seq, _)| *seq),
        workspaces,
        complete: true,
    })
}

/// The newest event's position (0 with none).
fn newest(conn: &mut DbConn) -> Result<i64, StoreError> {
    Ok(pipeline_events::table
        .select(diesel::dsl::max(pipeline_events::seq))
        .first_on::<Option<i64>>(conn)?
        .unwrap_or(0))
}
