//! The audit plumbing every area uses: an [`AuditEntry`] per operation, completed with its
//! outcome and appended (reads through the journal, changes in their own transaction), and the
//! administrator checks that refuse — and record — what an actor may not do.
//!
//! Invariant: every operation, allowed, denied or failed, appends exactly one record.

use groundwork_core::{ErrorCode, now_millis};
use groundwork_govern::audit::{AuditEntry, ChunkRef, Outcome};
use groundwork_store::StoreError;
use serde_json::Value;
use std::time::Instant;

use crate::error::ServiceError;
use crate::home::Groundwork;

impl Groundwork {
    /// An audit entry for this actor, to be completed by the caller.
    pub(crate) fn entry(&self, action: &str, target: Option<&str>, request: Value) -> AuditEntry {
        AuditEntry {
            at: now_millis(),
            actor: self.actor.subject.user.clone(),
            auth: self.actor.auth.clone(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            request,
            outcome: Outcome::Ok,
            code: None,
            chunks: Vec::new(),
            models: Vec::new(),
            latency_ms: None,
        }
    }

    /// Appends a record for an operation that changed nothing in the store (a read), or whose
    /// changes are committed by their engine (a sync); `result` decides the outcome.
    pub(crate) fn record<T>(
        &self,
        entry: AuditEntry,
        started: Instant,
        result: &Result<T, ServiceError>,
        chunks: Vec<ChunkRef>,
    ) -> Result<(), ServiceError> {
        let entry = Self::complete(entry, started, result, chunks);
        self.store().append_audit(entry)?;
        Ok(())
    }

    /// [`Self::record`] for a read (search, ask): see `Store::append_read_audit` for why it
    /// does not wait for the disk.
    pub(crate) fn record_read<T>(
        &self,
        entry: AuditEntry,
        started: Instant,
        result: &Result<T, ServiceError>,
        chunks: Vec<ChunkRef>,
    ) -> Result<(), ServiceError> {
        let entry = Self::complete(entry, started, result, chunks);
        self.store().append_read_audit(entry)?;
        Ok(())
    }

    pub(crate) fn complete<T>(
        mut entry: AuditEntry,
        started: Instant,
        result: &Result<T, ServiceError>,
        chunks: Vec<ChunkRef>,
    ) -> AuditEntry {
        entry.latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
        entry.chunks = chunks;
        if let Err(error) = result {
            entry.outcome = if error.code() == ErrorCode::Forbidden {
                Outcome::Denied
            } else {
                Outcome::Error
            };
            entry.code = Some(error.code().as_str().to_owned());
        }
        entry
    }

    /// Refuses (and audits) an administrative operation by anyone but the administrator.
    pub(crate) fn require_admin(&self, action: &str, target: Option<&str>) -> Result<(), ServiceError> {
        if self.actor.subject.admin {
            return Ok(());
        }
        let error = ServiceError::new(
            ErrorCode::Forbidden,
            format!(
                "`{}` may not {action}: administrators only",
                self.actor.subject.user
            ),
        );
        let result: Result<(), _> = Err(error);
        self.record(
            self.entry(action, target, Value::Null),
            Instant::now(),
            &result,
            Vec::new(),
        )?;
        result
    }

    /// Runs an administrative operation whose engine commits its own changes (knowledge bases,
    /// sources, sync, index rebuilds) and appends its record after it.
    pub(crate) fn administer<T>(
        &self,
        action: &str,
        target: &str,
        request: Value,
        operation: impl FnOnce() -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        self.require_admin(action, Some(target))?;
        let started = Instant::now();
        let entry = self.entry(action, Some(target), request);
        let result = operation();
        self.record(entry, started, &result, Vec::new())?;
        result
    }

    /// Runs a governance change and its audit record in one transaction.
    pub(crate) fn governed<T>(
        &self,
        action: &str,
        target: &str,
        request: Value,
        change: impl FnOnce(&groundwork_store::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, ServiceError> {
        self.require_admin(action, Some(target))?;
        let started = Instant::now();
        let entry = self.entry(action, Some(target), request);
        Ok(self.store().audited(change, |result| {
            let mut entry = entry;
            entry.latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
            if let Err(error) = result {
                entry.outcome = Outcome::Error;
                entry.code = Some(crate::error::store_error_code(error).as_str().to_owned());
            }
            entry
        })?)
    }
}
