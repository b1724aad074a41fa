//! SQLite helpers every part of the store shares.

use rusqlite::{Connection, Transaction, TransactionBehavior};

/// Begins a transaction that takes SQLite's write lock up front.
///
/// A deferred transaction that reads first and writes later cannot wait for a concurrent writer
/// in WAL mode: when another connection committed after its snapshot began, SQLite fails the
/// upgrade at once with "database is locked" instead of calling the busy handler. Taking the
/// lock at `BEGIN IMMEDIATE` lets `busy_timeout` queue this writer behind a running sync.
pub(crate) fn write_transaction(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}
