//! Background syncs: started by `POST …/sync` or by the scheduler, followed by
//! `GET /v1/jobs/{id}`.
//!
//! A job is a sync on a blocking thread with an observer that records its progress here. The
//! service's per-knowledge-base lock keeps one sync per knowledge base at a time (a second
//! fails with `busy`), across this server and any CLI running beside it. Jobs live in memory:
//! after a restart the sync runs table in the store (`kb versions`) is the record.

use crate::AppState;
use crate::error::ErrorBody;
use groundwork_service::{Groundwork, SyncEvent, SyncObserver};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utoipa::ToSchema;

/// Finished jobs kept for `GET /v1/jobs/{id}`; older ones are forgotten first.
const FINISHED_JOBS_KEPT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// A sync job as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStatus {
    pub id: u64,
    pub knowledge_base: String,
    /// `api` (a request) or `schedule`.
    pub trigger: String,
    /// Who started it.
    pub actor: String,
    pub state: JobState,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// Objects listed across sources so far.
    pub listed: usize,
    /// Objects to parse and embed (new or changed).
    pub to_process: usize,
    pub processed: usize,
    /// The sync report (counts, failures with reasons) once it succeeded.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    pub error: Option<ErrorBody>,
}

#[derive(Default)]
pub struct Jobs {
    next_id: AtomicU64,
    jobs: Mutex<HashMap<u64, Arc<Mutex<JobStatus>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Job records are plain data updated field by field; a panic mid-update leaves at worst
    // a stale count, so a poisoned lock is safe to keep using.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Jobs {
    pub fn get(&self, id: u64) -> Option<JobStatus> {
        lock(&self.jobs).get(&id).map(|job| lock(job).clone())
    }

    pub fn running(&self) -> usize {
        lock(&self.jobs)
            .values()
            .filter(|job| lock(job).state == JobState::Running)
            .count()
    }

    fn insert(&self, knowledge_base: &str, trigger: &str, actor: &str) -> Arc<Mutex<JobStatus>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Mutex::new(JobStatus {
            id,
            knowledge_base: knowledge_base.to_owned(),
            trigger: trigger.to_owned(),
            actor: actor.to_owned(),
            state: JobState::Running,
            started_at: groundwork_core::now_millis(),
            finished_at: None,
            listed: 0,
            to_process: 0,
            processed: 0,
            report: None,
            error: None,
        }));
        let mut jobs = lock(&self.jobs);
        jobs.insert(id, job.clone());
        if jobs.len() > FINISHED_JOBS_KEPT {
            let mut finished: Vec<(i64, u64)> = jobs
                .iter()
                .filter_map(|(id, job)| lock(job).finished_at.map(|at| (at, *id)))
                .collect();
            finished.sort();
            let excess = jobs.len() - FINISHED_JOBS_KEPT;
            for (_, old) in finished.into_iter().take(excess) {
                jobs.remove(&old);
            }
        }
        job
    }
}

/// Copies sync progress into the job record.
struct JobObserver {
    job: Arc<Mutex<JobStatus>>,
}

impl SyncObserver for JobObserver {
    fn event(&mut self, event: SyncEvent<'_>) {
        let mut job = lock(&self.job);
        match event {
            SyncEvent::Listed { objects, .. } => job.listed += objects,
            SyncEvent::Planned { to_process } => job.to_process = to_process,
            SyncEvent::Processed { .. } => job.processed += 1,
            SyncEvent::Committed { .. } => {}
        }
    }
}

/// Starts a sync of `kb` as `groundwork`'s actor on a blocking thread; returns the job id.
/// Access (administrators only) is decided, and the outcome audited, by the service when the
/// sync runs; a refused sync is a failed job.
pub fn start_sync(state: &Arc<AppState>, groundwork: Groundwork, kb: &str, trigger: &str) -> u64 {
    let job = state.jobs.insert(kb, trigger, &groundwork.actor().subject.user);
    let id = lock(&job).id;
    let kb = kb.to_owned();
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut observer = JobObserver { job: job.clone() };
        let result = groundwork.sync(&kb, &mut observer);
        let mut status = lock(&job);
        status.finished_at = Some(groundwork_core::now_millis());
        match result {
            Ok(report) => {
                state
                    .metrics
                    .sync_finished(true, report.tokens_embedded, report.duration_ms);
                status.state = JobState::Succeeded;
                status.report = serde_json::to_value(&report).ok();
            }
            Err(error) => {
                state.metrics.sync_finished(false, 0, 0);
                let api = crate::error::ApiError::from(error);
                status.state = JobState::Failed;
                status.error = Some(api.body());
            }
        }
        drop(status);
        release_free_memory();
    });
    id
}

/// Hands the heap a sync freed back to the OS. A sync allocates hundreds of MiB for a while
/// (embedding batches, the index writer's arena, commit batches) on whichever blocking thread
/// ran it; glibc keeps what is freed in that thread's arena, so without this the server's
/// resident memory climbed with every sync job in a soak (`scripts/soak.py`).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Parses the `[server] sync_schedule` intervals; a bad entry is reported and skipped.
fn schedule(state: &AppState) -> BTreeMap<String, Duration> {
    let mut out = BTreeMap::new();
    for (kb, interval) in &state.config().sync_schedule {
        match humantime_interval(interval) {
            Some(every) => {
                out.insert(kb.clone(), every);
            }
            None => eprintln!(
                "groundwork serve: ignoring sync_schedule.{kb} = {interval:?}: not a duration such as 30m or 6h"
            ),
        }
    }
    out
}

/// A duration as everywhere else in groundwork (`30s`, `15m`, `6h`, `1d`), with a minimum of
/// 10 s so that a typo cannot make a busy loop.
fn humantime_interval(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim())
        .ok()
        .filter(|every| *every >= Duration::from_secs(10))
}

/// Syncs each scheduled knowledge base at its interval, as the server's own (administrator)
/// handle. A tick that finds the previous sync still running is skipped by the service's
/// lock (`busy`).
pub fn spawn_scheduler(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    let plan = schedule(&state);
    tokio::spawn(async move {
        if plan.is_empty() {
            return;
        }
        let mut due: BTreeMap<String, tokio::time::Instant> = plan
            .keys()
            .map(|kb| (kb.clone(), tokio::time::Instant::now()))
            .collect();
        loop {
            let now = tokio::time::Instant::now();
            for (kb, at) in due.iter_mut() {
                if *at <= now && !state.is_draining() {
                    start_sync(&state, state.groundwork.clone(), kb, "schedule");
                    *at = now + plan[kb];
                }
            }
            let next = due
                .values()
                .min()
                .copied()
                .unwrap_or(now + Duration::from_secs(60));
            tokio::time::sleep_until(next).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_a_floor() {
        assert_eq!(humantime_interval("15m"), Some(Duration::from_secs(900)));
        assert_eq!(humantime_interval("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(humantime_interval("5s"), None);
        assert_eq!(humantime_interval("soon"), None);
        assert_eq!(humantime_interval("99999999999999999999h"), None);
    }
}
