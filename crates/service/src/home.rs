//! The home directory and the [`Groundwork`] handle on it.
//!
//! Layout: `config.toml`, `groundwork.db` (the store), `models/` (embedding models),
//! `indexes/<kb id>/` (derived, rebuildable), `locks/` (one sync at a time per knowledge base).

use crate::config::Config;
use crate::error::ServiceError;
use crate::loaded::LoadedKb;
use groundwork_core::{EmbedderConfig, ErrorCode, KbId, KnowledgeBase};
use groundwork_embed::{
    Embedder, GatherCounters, GatheringEmbedder, LocalEmbedder, LocalOptions, QueryCache, RemoteConfig,
    RemoteEmbedder,
};
use groundwork_search::LiveIndex;
use groundwork_store::Store;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub(crate) const STORE_FILE: &str = "groundwork.db";
pub(crate) const CONFIG_FILE: &str = "config.toml";

/// Locks `locks/home.lock`: shared by every open handle, exclusively by a restore. A lock
/// held the other way is `busy`, with `busy` as the message.
pub(crate) fn lock_home(home: &Path, exclusive: bool, busy: &str) -> Result<File, ServiceError> {
    let dir = home.join("locks");
    std::fs::create_dir_all(&dir)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("home.lock"))?;
    let locked = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match locked {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServiceError::new(
            ErrorCode::Busy,
            format!("{} {busy}", home.display()),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

#[derive(Debug, Serialize)]
pub struct InitReport {
    pub home: PathBuf,
    pub created: bool,
    pub store_schema_version: i64,
}

/// An open home directory, acting for one [`Actor`](crate::actor::Actor).
///
/// Cloning is cheap: every clone shares the store connection, the loaded model and the
/// knowledge bases loaded for search, and only the actor is per clone. A server clones one
/// handle per request and authenticates the clone.
#[derive(Clone)]
pub struct Groundwork {
    pub(crate) shared: Arc<Shared>,
    pub(crate) actor: crate::actor::Actor,
}

/// What every handle on one home directory shares.
pub(crate) struct Shared {
    pub(crate) home: PathBuf,
    pub(crate) config: Config,
    pub(crate) store: Store,
    embedder: OnceLock<Arc<dyn Embedder>>,
    /// The gatherers queries of local models go through (see [`Groundwork::query_embedder`]),
    /// by the model's fingerprint, made on first use. Syncs use the models directly.
    query_embedders: Mutex<HashMap<String, Arc<GatheringEmbedder>>>,
    /// The counters every query gatherer of this process adds to.
    pub(crate) gather_counters: Arc<GatherCounters>,
    /// Query vectors by model and text (`[search] query_cache_entries`), when configured.
    pub(crate) query_cache: Option<Arc<QueryCache>>,
    /// Knowledge bases loaded for search, by id (a deleted and recreated knowledge base gets
    /// a new id, so it can never be served from a stale entry).
    loaded: Mutex<HashMap<KbId, Arc<LoadedKb>>>,
    /// The table engine, started on first use (see `tables`).
    pub(crate) sql: OnceLock<Arc<groundwork_sql::Embedded>>,
    /// Table catalogues built for discovery, by knowledge base (see `discovery`).
    pub(crate) catalogues: Mutex<HashMap<KbId, Arc<crate::loaded::Catalogue>>>,
    /// Guardrail policies compiled so far, by name (see `guardrails`).
    pub(crate) guards: Mutex<HashMap<String, Arc<crate::policy_guard::PolicyGuard>>>,
    /// Parser worker processes shared by every sync of this home (`[ingest] parse_isolation`);
    /// started as documents arrive.
    pub(crate) parsers: Option<Arc<groundwork_ingest::parse::ParserPool>>,
    /// A shared lock on `locks/home.lock` for as long as the home is open, so that a restore
    /// (which takes it exclusively) never replaces a store under a running process.
    _home_lock: File,
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
        let home_lock = lock_home(home, false, "is being restored from a backup; try again shortly")?;
        let config = Config::load(&home.join(CONFIG_FILE))?;
        let store = Store::open(&store_path)?;
        let parsers = config.ingest.parser_pool().map(Arc::new);
        let query_cache = (config.search.query_cache_entries > 0)
            .then(|| Arc::new(QueryCache::new(config.search.query_cache_entries)));
        Ok(Groundwork {
            shared: Arc::new(Shared {
                parsers,
                home: home.to_path_buf(),
                config,
                store,
                embedder: OnceLock::new(),
                query_embedders: Mutex::new(HashMap::new()),
                gather_counters: Arc::default(),
                query_cache,
                loaded: Mutex::new(HashMap::new()),
                sql: OnceLock::new(),
                catalogues: Mutex::new(HashMap::new()),
                guards: Mutex::new(HashMap::new()),
                _home_lock: home_lock,
            }),
            actor: crate::actor::Actor::local_admin(),
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
        let options = LocalOptions {
            precision: self.shared.config.model.precision,
            ..LocalOptions::default()
        };
        let embedder = LocalEmbedder::load(&dir, options).map_err(|e| {
            ServiceError::new(
                ErrorCode::ModelUnavailable,
                format!("{e}; run `groundwork models fetch`"),
            )
        })?;
        let embedder: Arc<dyn Embedder> = Arc::new(embedder);
        Ok(self.shared.embedder.get_or_init(|| embedder).clone())
    }

    /// The embedder for queries: the local model behind a [`GatheringEmbedder`], so that
    /// concurrent searches share batched forward passes (`[search] query_batch_max`,
    /// `query_batch_window_us`, `query_batch_concurrency`), with the query cache in front of
    /// it when configured. Same fingerprint and vectors as [`Self::embedder`], which syncs use.
    pub fn query_embedder(&self) -> Result<Arc<dyn Embedder>, ServiceError> {
        Ok(self.gathered(self.embedder()?))
    }

    /// The embedder for queries of `kb`: its local model behind the process-wide gatherer for
    /// that model (see [`Self::query_embedder`]), else its remote embedder as is (made afresh
    /// per call here; a loaded knowledge base keeps a gathering one, see [`Self::loaded_kb`]).
    pub fn query_embedder_for(&self, kb: &KnowledgeBase) -> Result<Arc<dyn Embedder>, ServiceError> {
        let embedder = self.embedder_for(kb)?;
        Ok(match &kb.config.embedder {
            EmbedderConfig::Local => self.gathered(embedder),
            EmbedderConfig::Remote { .. } => embedder,
        })
    }

    /// The process-wide gatherer of a local model, by its fingerprint: queries to every
    /// knowledge base on that model batch together.
    fn gathered(&self, model: Arc<dyn Embedder>) -> Arc<dyn Embedder> {
        let mut gatherers = self
            .shared
            .query_embedders
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        gatherers
            .entry(model.fingerprint().to_owned())
            .or_insert_with(|| self.gathering(model))
            .clone()
    }

    /// `inner` behind a new gatherer configured by `[search]`, with the query cache, counting
    /// into the process's counters ([`Self::query_embedding_stats`]).
    fn gathering(&self, inner: Arc<dyn Embedder>) -> Arc<GatheringEmbedder> {
        let mut gatherer = GatheringEmbedder::new(inner, self.shared.config.search.gather_options())
            .with_counters(self.shared.gather_counters.clone());
        if let Some(cache) = &self.shared.query_cache {
            gatherer = gatherer.with_cache(cache.clone());
        }
        Arc::new(gatherer)
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

    /// The process-wide loaded state of `kb`, loading it on first use.
    pub(crate) fn loaded_kb(&self, kb: &KnowledgeBase) -> Result<Arc<LoadedKb>, ServiceError> {
        let mut loaded = self.shared.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = loaded.get(&kb.id) {
            return Ok(existing.clone());
        }
        // Loading holds the map's lock: two requests for a cold knowledge base load it once.
        let embedder = self.embedder_for(kb)?;
        let live = self.open_indexes(kb, embedder.as_ref())?;
        // Searches embed through a gatherer: the process-wide one of the local model (so
        // queries to different knowledge bases batch together), else one for this endpoint.
        let embedder: Arc<dyn Embedder> = match &kb.config.embedder {
            EmbedderConfig::Local => self.gathered(embedder),
            EmbedderConfig::Remote { .. } => self.gathering(embedder),
        };
        let fresh = Arc::new(LoadedKb {
            kb: kb.clone(),
            embedder,
            live,
        });
        loaded.insert(kb.id, fresh.clone());
        Ok(fresh)
    }

    /// Forgets the loaded state of a knowledge base (after it was deleted).
    pub(crate) fn unload_kb(&self, kb_id: KbId) {
        self.shared
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&kb_id);
        self.shared
            .catalogues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&kb_id);
    }

    pub(crate) fn open_indexes(
        &self,
        kb: &KnowledgeBase,
        embedder: &dyn Embedder,
    ) -> Result<LiveIndex, ServiceError> {
        Ok(LiveIndex::open(
            &self.index_dir(kb),
            &self.shared.store,
            kb.id,
            embedder.fingerprint(),
            embedder.dimension(),
            self.shared.config.search.vector_config(),
        )?)
    }

    pub(crate) fn index_dir(&self, kb: &KnowledgeBase) -> PathBuf {
        self.shared.home.join("indexes").join(kb.id.to_string())
    }

    /// An exclusive advisory lock on a knowledge base, released when the file handle drops
    /// (also when the process dies, so a killed sync never leaves a stale lock).
    pub(crate) fn lock_kb(&self, kb: &KnowledgeBase) -> Result<File, ServiceError> {
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
