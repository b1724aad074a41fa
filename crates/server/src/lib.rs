//! `groundwork serve`: the HTTP API.
//!
//! Only this crate knows HTTP. Every handler authenticates the request's bearer credential
//! into its own [`Groundwork`] handle and calls the same service façade the CLI calls, so
//! access decisions and audit records are identical on both faces. Service calls are
//! blocking (SQLite, the embedding model), so handlers run them on tokio's blocking pool,
//! bounded by the request timeout; a semaphore bounds how many requests run at once.
//!
//! Layout: [`routes`] maps paths to handlers (one file per area), `extract` turns requests into
//! checked inputs and an authenticated handle, [`api`] holds the request/response shapes,
//! [`error`] the error table, [`jobs`] the background syncs, [`metrics`] the Prometheus
//! counters, [`openapi`] the OpenAPI document generated from the handlers' annotations, and
//! [`tls`] the optional TLS listener.

pub mod api;
pub mod error;
mod extract;
pub mod jobs;
pub mod mcp;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod tls;

use error::ApiError;
use groundwork_service::{Groundwork, ServerConfig, ServiceError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// What every handler shares.
pub struct AppState {
    /// The server's handle; requests work on anonymous clones of it that they authenticate.
    groundwork: Groundwork,
    config: ServerConfig,
    permits: Arc<Semaphore>,
    pub jobs: jobs::Jobs,
    pub metrics: metrics::Metrics,
    draining: AtomicBool,
    /// Cancelled at shutdown, ending the MCP sessions (whose SSE streams would hold it open).
    mcp_shutdown: tokio_util::sync::CancellationToken,
}

impl AppState {
    pub fn new(groundwork: Groundwork, config: ServerConfig) -> Arc<AppState> {
        let permits = Arc::new(Semaphore::new(config.max_concurrent_requests.max(1)));
        Arc::new(AppState {
            groundwork,
            config,
            permits,
            jobs: jobs::Jobs::default(),
            metrics: metrics::Metrics::default(),
            draining: AtomicBool::new(false),
            mcp_shutdown: tokio_util::sync::CancellationToken::new(),
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.request_timeout_secs.max(1))
    }

    /// Runs a blocking service call for an authenticated request, within the request timeout.
    ///
    /// A call that outlives the timeout is answered with `timeout` and left to finish on its
    /// thread: every service operation is a transaction or a read, so abandoning its response
    /// never leaves a half-made change.
    pub async fn run<T, F>(&self, call: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ServiceError> + Send + 'static,
    {
        let task = tokio::task::spawn_blocking(call);
        match tokio::time::timeout(self.timeout(), task).await {
            Err(_) => Err(ApiError::timeout(self.config.request_timeout_secs)),
            Ok(Err(join)) => Err(ApiError::internal("a request worker", join)),
            Ok(Ok(result)) => result.map_err(ApiError::from),
        }
    }

    /// A fresh handle that acts for no one until [`Self::authenticate`] succeeds.
    fn anonymous(&self) -> Groundwork {
        self.groundwork.anonymous()
    }

    /// Authenticates `Authorization: Bearer …` (an API token or an OIDC JWT) into a handle
    /// acting for its principal; `Err` carries why no credential could be read. Every failure
    /// is audited by the service.
    pub async fn authenticate(&self, bearer: Result<String, &'static str>) -> Result<Groundwork, ApiError> {
        let mut handle = self.anonymous();
        let credential = match bearer {
            Ok(credential) => credential,
            Err(reason) => {
                // Audited like a bad token; the answer says what to send.
                let _ = self
                    .run(move || Err::<(), _>(handle.refuse_missing_credentials("http", reason)))
                    .await;
                return Err(ApiError::unauthenticated(
                    "missing credentials: send `Authorization: Bearer <token>` (an API token or an OIDC JWT)",
                ));
            }
        };
        self.run(move || {
            handle.authenticate_bearer(&credential)?;
            Ok(handle)
        })
        .await
    }

    /// Resident memory is over `[server] memory_limit_mb` (never, without a limit).
    fn over_memory_limit(&self) -> bool {
        match self.config.memory_limit_mb {
            Some(limit) => metrics::resident_memory_bytes().is_some_and(|rss| rss > limit * 1024 * 1024),
            None => false,
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// Sets up the allocator for a long-running server; call it before the runtime starts. glibc
/// gives every thread that allocates its own arena (up to 8 per core), and the blocking threads
/// that run searches and syncs come and go, so freed memory ended up spread over many arenas
/// that are rarely reused: the server's resident memory climbed with every sync job in a soak.
/// Two arenas per core bound that spread (soak: 12.3 against 12.4 requests/s without it).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets a parameter of the allocator (under its own lock); arenas
        // made from now on obey it.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, (2 * cores).min(64) as libc::c_int);
        }
    }
}

/// Serves the API on `listener` (plain TCP, or [`tls::TlsListener`]) until `shutdown`
/// resolves, then stops accepting connections and lets in-flight requests finish. Running
/// syncs are left to the store's crash safety: the next sync resumes where they stopped.
pub async fn serve<L>(
    state: Arc<AppState>,
    listener: L,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let app = routes::router(state.clone());
    let scheduler = jobs::spawn_scheduler(state.clone());
    let draining = state.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            draining.draining.store(true, Ordering::Relaxed);
            draining.mcp_shutdown.cancel();
        })
        .await;
    scheduler.abort();
    result
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
