//! Lineage: from an audited answer or a chunk back to the object versions, parser, chunker
//! and models behind it.

use groundwork_core::ErrorCode;
use groundwork_govern::audit::{AuditRow, ChunkRef};
use serde::Serialize;

use crate::error::ServiceError;
use crate::home::Groundwork;

/// `lineage answer SEQ`: an audited search or answer, back to every chunk, object version and
/// model it used.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerLineage {
    pub record: AuditRow,
    pub models: Vec<String>,
    pub chunks: Vec<UsedChunk>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UsedChunk {
    /// As recorded at the time of the answer.
    pub used: ChunkRef,
    /// The chunk now, when it still exists; `None` once its document was re-chunked or deleted.
    pub current: Option<groundwork_store::ChunkLineage>,
    /// Whether the document is still at the object version the answer used.
    pub unchanged_since: bool,
}

impl Groundwork {
    pub fn chunk_lineage(&self, chunk_id: i64) -> Result<groundwork_store::ChunkLineage, ServiceError> {
        self.require_admin("lineage.chunk", Some(&chunk_id.to_string()))?;
        self.store()
            .chunk_lineage(chunk_id)?
            .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, format!("chunk {chunk_id} not found")))
    }

    pub fn answer_lineage(&self, seq: i64) -> Result<AnswerLineage, ServiceError> {
        self.require_admin("lineage.answer", Some(&seq.to_string()))?;
        let record = self
            .store()
            .audit_record(seq)?
            .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, format!("audit record {seq} not found")))?;
        let models: Vec<String> = serde_json::from_str(&record.models).unwrap_or_default();
        let mut chunks = Vec::new();
        for used in record.chunk_refs() {
            let current = self.store().chunk_lineage(used.chunk_id)?;
            let unchanged_since = current.as_ref().is_some_and(|c| {
                c.object_version == used.object_version && c.document_uri == used.document_uri
            });
            chunks.push(UsedChunk {
                used,
                current,
                unchanged_since,
            });
        }
        Ok(AnswerLineage {
            record,
            models,
            chunks,
        })
    }
}
