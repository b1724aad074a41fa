//! Appending to the audit chain: each record is chained after the current head (its hash
//! covers the previous hash and the canonical record) inside the caller's transaction.
//!
//! Invariant: records are masked before they are chained, and chained only here.

use crate::error::Result;
use groundwork_govern::audit::{AuditEntry, AuditRow, GENESIS};
use rusqlite::{OptionalExtension, Row, Transaction, params};

pub(crate) const AUDIT_COLUMNS: &str = "seq, at, actor, auth, action, target, request, outcome, code, chunks, models, latency_ms, prev_hash, hash";

pub(crate) fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: row.get(0)?,
        at: row.get(1)?,
        actor: row.get(2)?,
        auth: row.get(3)?,
        action: row.get(4)?,
        target: row.get(5)?,
        request: row.get(6)?,
        outcome: row.get(7)?,
        code: row.get(8)?,
        chunks: row.get(9)?,
        models: row.get(10)?,
        latency_ms: row.get(11)?,
        prev_hash: row.get(12)?,
        hash: row.get(13)?,
    })
}

/// Appends `entry` after the current head, inside `tx`.
pub(crate) fn append_audit(tx: &Transaction<'_>, entry: AuditEntry) -> Result<AuditRow> {
    append_masked(tx, entry.mask())
}

/// Chains journalled rows (masked, unchained) after the current head, in order.
pub(crate) fn chain_rows(tx: &Transaction<'_>, rows: Vec<AuditRow>) -> Result<()> {
    for row in rows {
        append_masked(tx, row)?;
    }
    Ok(())
}

fn append_masked(tx: &Transaction<'_>, masked: AuditRow) -> Result<AuditRow> {
    let head: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, hash) = head.unwrap_or((0, GENESIS.to_owned()));
    let row = masked.chain(seq, &hash);
    tx.prepare_cached(&format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?
    .execute(params![
        row.seq,
        row.at,
        row.actor,
        row.auth,
        row.action,
        row.target,
        row.request,
        row.outcome,
        row.code,
        row.chunks,
        row.models,
        row.latency_ms,
        row.prev_hash,
        row.hash
    ])?;
    Ok(row)
}
