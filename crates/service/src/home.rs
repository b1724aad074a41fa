//! The home directory and the [`Groundwork`] handle on it.
//!
//! Layout: `config.toml`, `groundwork.db` (the store), `models/` (embedding models),
//! `indexes/<kb id>/` (derived, rebuildable), `locks/` (one sync at a time per knowledge base).

use crate::config::Config;
use crate::error::ServiceError;
use crate::search::{LoadedKb, Searcher};
use groundwork_core::{
    EmbedderConfig, ErrorCode, KbId, KnowledgeBase, KnowledgeBaseConfig, Source, SourceConfig,
};
use groundwork_embed::{Embedder, LocalEmbedder, LocalOptions, RemoteConfig, RemoteEmbedder};
use groundwork_ingest::indexes::KbIndexes;
use groundwork_ingest::parse::ParseLimits;
use groundwork_ingest::source::{Location, SourceReader};
use groundwork_ingest::sync::{SyncEngine, SyncError, SyncObserver, SyncOptions, SyncReport};
use groundwork_store::Store;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const STORE_FILE: &str = "groundwork.db";
const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, Serialize)]
pub struct InitReport {
    pub home: PathBuf,
    pub created: bool,
    pub store_schema_version: i64,
}

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
    pub store_chunks: u64,
    pub store_seq: u64,
}

/// An open home directory, acting for one [`Actor`](crate::governance::Actor).
///
/// Cloning is cheap: every clone shares the store connection, the loaded model and the
/// knowledge bases loaded for search, and only the actor is per clone. A server clones one
/// handle per request and authenticates the clone.
#[derive(Clone)]
pub struct Groundwork {
    pub(crate) shared: Arc<Shared>,
    pub(crate) actor: crate::governance::Actor,
}

/// What every handle on one home directory shares.
pub(crate) struct Shared {
    home: PathBuf,
    config: Config,
    store: Store,
    embedder: OnceLock<Arc<dyn Embedder>>,
    /// Knowledge bases loaded for search, by id (a deleted and recreated knowledge base gets
    /// a new id, so it can never be served from a stale entry).
    loaded: Mutex<HashMap<KbId, Arc<LoadedKb>>>,
    /// Guardrail policies compiled so far, by name (see `guardrails`).
    pub(crate) guards: Mutex<HashMap<String, Arc<crate::guardrails::PolicyGuard>>>,
}

impl Groundwork {
    /// Creates the home directory, its config file and store. Idempotent.
    pub fn init(home: &Path) -> Result<InitReport, ServiceError> {
        let created = !home.join(STORE_FILE).exists();
        for dir in ["models", "indexes", "locks"] {
            std::fs::create_dir_all(home.join(dir))?;
        }
        let config_path = home.join(CONFIG_FILE);
        if !config_path.exists() {
            std::fs::write(&config_path, Config::default_file())?;
        }
        let store = Store::open(&home.join(STORE_FILE))?;
        Ok(InitReport {
            home: home.to_path_buf(),
            created,
            store_schema_version: store.schema_version()?,
        })
    }

    /// Opens an initialised home directory.
    pub fn open(home: &Path) -> Result<Groundwork, ServiceError> {
        let store_path = home.join(STORE_FILE);
        if !store_path.exists() {
            return Err(ServiceError::new(
                ErrorCode::NotInitialised,
                format!("{} is not initialised; run `groundwork init`", home.display()),
            ));
        }
        let config = Config::load(&home.join(CONFIG_FILE))?;
        let store = Store::open(&store_path)?;
        Ok(Groundwork {
            shared: Arc::new(Shared {
                home: home.to_path_buf(),
                config,
                store,
                embedder: OnceLock::new(),
                loaded: Mutex::new(HashMap::new()),
                guards: Mutex::new(HashMap::new()),
            }),
            actor: crate::governance::Actor::local_admin(),
        })
    }

    pub fn home(&self) -> &Path {
        &self.shared.home
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The local model folder: `GROUNDWORK_MODEL_DIR`, else `[model] dir` from the config, else
    /// `<home>/models/all-MiniLM-L6-v2`.
    pub fn model_dir(&self) -> PathBuf {
        std::env::var_os("GROUNDWORK_MODEL_DIR")
            .map(PathBuf::from)
            .or_else(|| self.shared.config.model.dir.clone())
            .unwrap_or_else(|| groundwork_embed::default_model_dir(&self.shared.home))
    }

    /// Installs the local model into [`Self::model_dir`] (see `groundwork_embed::fetch_model`).
    pub fn fetch_model(
        &self,
        from: Option<&Path>,
        progress: &dyn Fn(&str),
    ) -> Result<groundwork_embed::FetchReport, ServiceError> {
        Ok(groundwork_embed::fetch_model(&self.model_dir(), from, progress)?)
    }

    /// The embedder, loaded on first use (loading reads and hashes ~90 MB of weights).
    pub fn embedder(&self) -> Result<Arc<dyn Embedder>, ServiceError> {
        if let Some(embedder) = self.shared.embedder.get() {
            return Ok(embedder.clone());
        }
        let dir = self.model_dir();
        let embedder = LocalEmbedder::load(&dir, LocalOptions::default()).map_err(|e| {
            ServiceError::new(
                ErrorCode::ModelUnavailable,
                format!("{e}; run `groundwork models fetch`"),
            )
        })?;
        let embedder: Arc<dyn Embedder> = Arc::new(embedder);
        Ok(self.shared.embedder.get_or_init(|| embedder).clone())
    }

    // ---- knowledge bases and sources -------------------------------------------------------

    pub fn create_kb(&self, name: &str, config: KnowledgeBaseConfig) -> Result<KnowledgeBase, ServiceError> {
        self.administer("kb.create", name, serde_json::json!({ "config": config }), || {
            validate_name(name)?;
            if let Some(policy) = &config.guardrail {
                self.require_guardrail_defined(policy)?;
            }
            Ok(self.shared.store.create_kb(name, &config)?)
        })
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
        Ok(KbStatus {
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
        let indexes = self.open_indexes(&kb, embedder.as_ref())?;
        let (_, _, store_chunks) = self.shared.store.kb_counts(kb.id)?;
        Ok(IndexStatus {
            lexical_chunks: indexes.lexical.num_chunks(),
            lexical_seq: indexes.lexical.watermark()?,
            vectors: indexes.vectors.len(),
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

    // ---- sync and indexes ------------------------------------------------------------------

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
            let embedder = self.embedder_for(&kb)?;
            let sources = self.shared.store.sources(kb.id)?;
            let mut readers = Vec::with_capacity(sources.len());
            for source in sources {
                let reader = SourceReader::connect(&source.uri, &source.config)?;
                readers.push((source, reader));
            }
            let loaded = self.loaded_kb(&kb)?;
            let engine = SyncEngine {
                store: &self.shared.store,
                kb: &kb,
                embedder: embedder.as_ref(),
                options: SyncOptions {
                    parse_limits: ParseLimits {
                        max_bytes: self.shared.config.ingest.max_file_bytes,
                        timeout: Duration::from_secs(self.shared.config.ingest.parse_timeout_secs),
                        ..ParseLimits::default()
                    },
                    ..SyncOptions::default()
                },
            };
            let mut hooks = IndexingObserver {
                inner: observer,
                loaded: &loaded,
            };
            Ok(engine.run(&readers, &mut hooks)?)
        })
    }

    /// The embedder a knowledge base was created with: the local model, or a remote
    /// OpenAI-compatible endpoint whose API key is read from the environment now.
    pub fn embedder_for(&self, kb: &KnowledgeBase) -> Result<Arc<dyn Embedder>, ServiceError> {
        match &kb.config.embedder {
            EmbedderConfig::Local => self.embedder(),
            EmbedderConfig::Remote {
                base_url,
                model,
                api_key_env,
            } => {
                let mut config = RemoteConfig::new(base_url.clone(), model.clone());
                if let Some(variable) = api_key_env {
                    config.api_key = Some(std::env::var(variable).map_err(|_| {
                        ServiceError::new(
                            ErrorCode::ModelUnavailable,
                            format!("knowledge base `{}` needs the API key in ${variable}", kb.name),
                        )
                    })?);
                }
                let embedder = RemoteEmbedder::new(config)?;
                // The index needs the dimension before the first document; one small request
                // learns it (and checks the endpoint and key early).
                embedder.probe_dimension()?;
                Ok(Arc::new(embedder))
            }
        }
    }

    /// Deletes and rebuilds the derived indexes of a knowledge base from the store.
    pub fn rebuild_index(&self, kb_name: &str) -> Result<KbStatus, ServiceError> {
        self.administer("index.rebuild", kb_name, serde_json::Value::Null, || {
            let kb = self.shared.store.kb(kb_name)?;
            let _lock = self.lock_kb(&kb)?;
            let loaded = self.loaded_kb(&kb)?;
            loaded.write_indexes().rebuild(&self.shared.store)?;
            self.kb_status(kb_name)
        })
    }

    /// A searcher over one knowledge base, acting for this handle's actor.
    ///
    /// The knowledge base is loaded (indexes into memory) on first use in this process and
    /// shared from then on; each search first catches it up with the store.
    pub fn searcher(&self, kb_name: &str) -> Result<Searcher<'_>, ServiceError> {
        let kb = self.shared.store.kb(kb_name)?;
        let loaded = self.loaded_kb(&kb)?;
        Ok(Searcher::new(self, loaded))
    }

    /// The process-wide loaded state of `kb`, loading it on first use.
    pub(crate) fn loaded_kb(&self, kb: &KnowledgeBase) -> Result<Arc<LoadedKb>, ServiceError> {
        let mut loaded = self.shared.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = loaded.get(&kb.id) {
            return Ok(existing.clone());
        }
        // Loading holds the map's lock: two requests for a cold knowledge base load it once.
        let embedder = self.embedder_for(kb)?;
        let indexes = self.open_indexes(kb, embedder.as_ref())?;
        let fresh = Arc::new(LoadedKb::new(kb.clone(), embedder, indexes));
        loaded.insert(kb.id, fresh.clone());
        Ok(fresh)
    }

    /// Forgets the loaded state of a knowledge base (after it was deleted).
    fn unload_kb(&self, kb_id: KbId) {
        self.shared
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&kb_id);
    }

    fn open_indexes(&self, kb: &KnowledgeBase, embedder: &dyn Embedder) -> Result<KbIndexes, ServiceError> {
        Ok(KbIndexes::open(
            &self.index_dir(kb),
            &self.shared.store,
            kb.id,
            embedder.fingerprint(),
            embedder.dimension(),
        )?)
    }

    fn index_dir(&self, kb: &KnowledgeBase) -> PathBuf {
        self.shared.home.join("indexes").join(kb.id.to_string())
    }

    /// An exclusive advisory lock on a knowledge base, released when the file handle drops
    /// (also when the process dies, so a killed sync never leaves a stale lock).
    fn lock_kb(&self, kb: &KnowledgeBase) -> Result<File, ServiceError> {
        let dir = self.shared.home.join("locks");
        std::fs::create_dir_all(&dir)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("kb-{}.lock", kb.id)))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(ServiceError::new(
                ErrorCode::Busy,
                format!("knowledge base `{}` is being synced by another process", kb.name),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }
}

/// Forwards progress to the caller and advances the indexes after commits. The indexes are
/// locked for writing only while they catch up, so searches keep running during a sync.
struct IndexingObserver<'a> {
    inner: &'a mut dyn SyncObserver,
    loaded: &'a LoadedKb,
}

impl SyncObserver for IndexingObserver<'_> {
    fn event(&mut self, event: groundwork_ingest::sync::SyncEvent<'_>) {
        self.inner.event(event);
    }

    fn after_commit(&mut self, store: &Store) -> Result<(), SyncError> {
        self.loaded
            .write_indexes()
            .catch_up(store)
            .map(|_| ())
            .map_err(|e| SyncError::Index(e.to_string()))
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
