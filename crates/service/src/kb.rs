//! Knowledge bases and their sources: create, list, delete, status and sync runs; sources
//! added and removed; sync and index rebuilds.
//!
//! Invariant: all of it is administration — only the administrator may, every call is
//! audited, and one sync (or rebuild) per knowledge base runs at a time across processes.

use crate::error::ServiceError;
use crate::home::Groundwork;
use groundwork_core::{KbKind, KnowledgeBase, KnowledgeBaseConfig, Source, SourceConfig};
use groundwork_ingest::sync::{SyncEngine, SyncObserver, SyncReport};
use groundwork_objects::{Connection, Location};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct KbStatus {
    pub knowledge_base: KnowledgeBase,
    pub sources: Vec<Source>,
    pub documents: u64,
    pub failed_documents: u64,
    pub chunks: u64,
    /// Newest change-log sequence in the store.
    pub store_seq: u64,
    pub failures: Vec<DocumentFailure>,
    /// Indexed documents the parser warned about (at most 1,000).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<DocumentWarning>,
}

/// An indexed document with what the parser noticed (an encoding guessed with low confidence,
/// bytes replaced, text truncated).
#[derive(Debug, Serialize)]
pub struct DocumentWarning {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DocumentFailure {
    pub uri: String,
    pub code: String,
    pub message: String,
}

/// What the derived indexes hold, to compare with the store.
#[derive(Debug, Serialize)]
pub struct IndexStatus {
    pub lexical_chunks: u64,
    pub lexical_seq: u64,
    pub vectors: usize,
    /// Whether semantic search walks an HNSW graph (at least `[search] ann_min_chunks`
    /// vectors) rather than scanning exactly.
    pub ann: bool,
    pub store_chunks: u64,
    pub store_seq: u64,
}

impl Groundwork {
    pub fn create_kb(&self, name: &str, config: KnowledgeBaseConfig) -> Result<KnowledgeBase, ServiceError> {
        self.administer("kb.create", name, serde_json::json!({ "config": config }), || {
            validate_name(name)?;
            if let Some(policy) = &config.guardrail {
                self.require_guardrail_defined(policy)?;
            }
            Ok(self.shared.store.create_kb(name, &config)?)
        })
    }

    /// What a knowledge base holds (documents or tables), so a face can route a question.
    pub fn kb_kind(&self, name: &str) -> Result<groundwork_core::KbKind, ServiceError> {
        Ok(self.store().kb(name)?.config.kind)
    }

    pub fn list_kbs(&self) -> Result<Vec<KnowledgeBase>, ServiceError> {
        Ok(self.shared.store.list_kbs()?)
    }

    pub fn delete_kb(&self, name: &str) -> Result<(), ServiceError> {
        self.administer("kb.delete", name, serde_json::Value::Null, || {
            let kb = self.shared.store.kb(name)?;
            let _lock = self.lock_kb(&kb)?;
            self.shared.store.delete_kb(name)?;
            self.unload_kb(kb.id);
            let dir = self.index_dir(&kb);
            if dir.exists() {
                std::fs::remove_dir_all(dir)?;
            }
            Ok(())
        })
    }

    /// The sync runs of a knowledge base, newest first, each with its report: counts and the
    /// documents it added, updated and deleted. For administrators, like [`Self::kb_status`]:
    /// the lists name documents the actor may not be able to read.
    pub fn kb_versions(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<groundwork_store::SyncRunRecord>, ServiceError> {
        self.require_admin("kb.versions", Some(name))?;
        let kb = self.shared.store.kb(name)?;
        Ok(self.shared.store.sync_runs(kb.id, limit)?)
    }

    /// Counts, sources and failed documents (with their URIs) of a knowledge base: for
    /// administrators, since failures name documents the actor may not be able to read.
    pub fn kb_status(&self, name: &str) -> Result<KbStatus, ServiceError> {
        self.require_admin("kb.status", Some(name))?;
        let kb = self.shared.store.kb(name)?;
        let sources = self.shared.store.sources(kb.id)?;
        let (documents, failed_documents, chunks) = self.shared.store.kb_counts(kb.id)?;
        let failures = self
            .store()
            .failed_documents(kb.id)?
            .into_iter()
            .map(|(uri, code, message)| DocumentFailure { uri, code, message })
            .collect();
        let warnings = self
            .store()
            .document_warnings(kb.id, 1000)?
            .into_iter()
            .map(|(uri, encoding, warnings)| DocumentWarning {
                uri,
                encoding,
                warnings,
            })
            .collect();
        Ok(KbStatus {
            warnings,
            store_seq: self.shared.store.last_change_seq(kb.id)?,
            knowledge_base: kb,
            sources,
            documents,
            failed_documents,
            chunks,
            failures,
        })
    }

    /// Opens the indexes (replaying the change log) and reports what they hold.
    pub fn index_status(&self, name: &str) -> Result<IndexStatus, ServiceError> {
        let kb = self.shared.store.kb(name)?;
        let embedder = self.embedder_for(&kb)?;
        let live = self.open_indexes(&kb, embedder.as_ref())?;
        let indexes = live.read();
        let (_, _, store_chunks) = self.shared.store.kb_counts(kb.id)?;
        Ok(IndexStatus {
            lexical_chunks: indexes.lexical.num_chunks(),
            lexical_seq: indexes.lexical.watermark()?,
            vectors: indexes.vectors.len(),
            ann: indexes.vectors.has_ann()
                && indexes.vectors.len() >= indexes.vectors.config().exact_threshold,
            store_chunks,
            store_seq: self.shared.store.last_change_seq(kb.id)?,
        })
    }

    pub fn add_source(
        &self,
        kb_name: &str,
        location: &str,
        config: SourceConfig,
    ) -> Result<Source, ServiceError> {
        self.administer(
            "source.add",
            kb_name,
            serde_json::json!({ "location": location }),
            || {
                let kb = self.shared.store.kb(kb_name)?;
                if kb.config.kind == KbKind::Tables {
                    // Folders, buckets, SQLite files and PostgreSQL databases; never a password.
                    let parsed = groundwork_sql::discover::TableLocation::parse(location)?;
                    return Ok(self.shared.store.add_source(kb.id, &parsed.uri(), &config)?);
                }
                if config.name.is_some() {
                    return Err(ServiceError::invalid(
                        "--name applies to tables knowledge bases only",
                    ));
                }
                let parsed = Location::parse(location)?;
                if config.follow_links && !matches!(parsed, Location::Folder(_)) {
                    return Err(ServiceError::invalid(
                        "follow_links applies to folder sources only",
                    ));
                }
                Ok(self.shared.store.add_source(kb.id, &parsed.uri(), &config)?)
            },
        )
    }

    pub fn remove_source(&self, kb_name: &str, location: &str) -> Result<bool, ServiceError> {
        self.administer(
            "source.remove",
            kb_name,
            serde_json::json!({ "location": location }),
            || {
                let kb = self.shared.store.kb(kb_name)?;
                // Accept the form the user added it with, or the stored URI itself.
                let uri = Location::parse(location)
                    .map(|l| l.uri())
                    .unwrap_or_else(|_| location.to_string());
                Ok(self.shared.store.remove_source(kb.id, &uri)?)
            },
        )
    }

    pub fn list_sources(&self, kb_name: &str) -> Result<Vec<Source>, ServiceError> {
        self.require_admin("source.list", Some(kb_name))?;
        let kb = self.shared.store.kb(kb_name)?;
        Ok(self.shared.store.sources(kb.id)?)
    }

    /// Refuses (and audits) a sync this handle may not run, before any work starts: for a
    /// caller that runs syncs in the background and must answer at once.
    pub fn check_sync(&self, kb_name: &str) -> Result<(), ServiceError> {
        self.require_admin("sync", Some(kb_name))?;
        self.shared.store.kb(kb_name)?;
        Ok(())
    }

    /// Syncs every source of a knowledge base. One sync per knowledge base at a time: a second
    /// gets [`ErrorCode::Busy`].
    pub fn sync(&self, kb_name: &str, observer: &mut dyn SyncObserver) -> Result<SyncReport, ServiceError> {
        self.administer("sync", kb_name, serde_json::Value::Null, || {
            let kb = self.shared.store.kb(kb_name)?;
            let _lock = self.lock_kb(&kb)?;
            if kb.config.kind == KbKind::Tables {
                return self.sync_tables(&kb, observer);
            }
            let embedder = self.embedder_for(&kb)?;
            let sources = self.shared.store.sources(kb.id)?;
            let mut readers = Vec::with_capacity(sources.len());
            for source in sources {
                let reader = Connection::connect(&source.uri, &source.config)?;
                readers.push((source, reader));
            }
            let loaded = self.loaded_kb(&kb)?;
            let engine = SyncEngine {
                store: &self.shared.store,
                kb: &kb,
                embedder: embedder.as_ref(),
                indexes: &loaded.live,
                options: self
                    .shared
                    .config
                    .ingest
                    .sync_options(self.shared.parsers.clone()),
            };
            Ok(engine.run(&readers, observer)?)
        })
    }

    /// Deletes and rebuilds the derived indexes of a knowledge base from the store.
    pub fn rebuild_index(&self, kb_name: &str) -> Result<KbStatus, ServiceError> {
        self.administer("index.rebuild", kb_name, serde_json::Value::Null, || {
            let kb = self.shared.store.kb(kb_name)?;
            let _lock = self.lock_kb(&kb)?;
            let loaded = self.loaded_kb(&kb)?;
            loaded.live.rebuild(&self.shared.store)?;
            self.kb_status(kb_name)
        })
    }
}

fn validate_name(name: &str) -> Result<(), ServiceError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "`{name}` is not a valid knowledge-base name: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}
