//! This instance's registry of server-side tiling jobs: one job per source (and per
//! pyramid once its id is known), a bound on unfinished jobs, and finished jobs kept
//! for a while so that their outcome can still be read. It holds the jobs this
//! instance was asked for or runs; every job's shared record is in the store
//! ([`super::board`]), which is what other instances read.

use crate::error::{AppError, Result, RETRY_AFTER_BUSY_QUEUE_SECS};
use crate::store::{JobId, PyramidId};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a finished job stays readable by default (`--job-retention`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(15 * 60);
/// Most finished jobs kept (the oldest go first).
const FINISHED_KEPT_AT_MOST: usize = 1000;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a tiling slot (tiling runs one image at a time, on every core).
    Queued,
    /// Downloading the source (URL or S3 object).
    Fetching,
    /// Decoding and encoding tiles (tiles are stored as they are made).
    Tiling,
    /// Writing the last tiles, then the `.dzi`.
    Storing,
    /// The pyramid is committed.
    Ready,
    /// The job failed; see its error.
    Failed,
}

impl JobState {
    /// Whether the job has ended.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Ready | JobState::Failed)
    }
}

/// Why a job failed, as an error response would say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// The HTTP status the error maps to.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation (internal details are logged, never shown).
    pub message: String,
}

impl From<&AppError> for JobError {
    fn from(e: &AppError) -> Self {
        let status = e.status();
        let message = if status.is_server_error()
            && !matches!(e, AppError::Upstream { .. } | AppError::Busy { .. })
        {
            "internal server error".to_owned()
        } else {
            e.to_string()
        };
        JobError {
            status: status.as_u16(),
            code: e.code().to_owned(),
            message,
        }
    }
}

/// What changes rarely: state, pyramid id, error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Where the job is.
    pub state: JobState,
    /// The pyramid id, once the source bytes are hashed.
    pub pyramid: Option<PyramidId>,
    /// Why it failed.
    pub error: Option<JobError>,
}

/// A job's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Source bytes received.
    pub bytes: u64,
    /// Source bytes expected, when known.
    pub bytes_total: Option<u64>,
    /// Tiles stored.
    pub tiles: u64,
    /// Tiles in the pyramid, once the image is decoded.
    pub tiles_total: Option<u64>,
}

/// Everything a job's answer says, from this instance's memory or from its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// State, pyramid id, error.
    pub status: Status,
    /// Bytes and tiles so far.
    pub progress: Progress,
    /// The instance running the job (none while queued and unclaimed).
    pub instance: Option<String>,
    /// How many times an instance has started it.
    pub attempts: u32,
}

/// One job. Progress counters are atomics, written from the tiling threads.
#[derive(Debug)]
pub struct Job {
    id: JobId,
    source: SourceKey,
    status: watch::Sender<Status>,
    finished_at: Mutex<Option<Instant>>,
    /// Source bytes received.
    pub bytes: AtomicU64,
    /// Source bytes expected (0 while unknown).
    pub bytes_total: AtomicU64,
    /// Tiles stored.
    pub tiles: AtomicU64,
    /// Tiles in the pyramid (0 while unknown).
    pub tiles_total: AtomicU64,
    instance: Mutex<Option<String>>,
    attempts: AtomicU32,
}

impl Job {
    /// The job's id (32 hex characters).
    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The job's id.
    pub fn job_id(&self) -> &JobId {
        &self.id
    }

    /// State, progress and who runs it, now.
    pub fn snapshot(&self) -> Snapshot {
        let known = |n: u64| (n > 0).then_some(n);
        Snapshot {
            status: self.status(),
            progress: Progress {
                bytes: self.bytes.load(Ordering::Relaxed),
                bytes_total: known(self.bytes_total.load(Ordering::Relaxed)),
                tiles: self.tiles.load(Ordering::Relaxed),
                tiles_total: known(self.tiles_total.load(Ordering::Relaxed)),
            },
            instance: self
                .instance
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            attempts: self.attempts.load(Ordering::Relaxed),
        }
    }

    /// Records that `instance` runs the job, for the `attempts`-th time.
    pub fn set_runner(&self, instance: Option<&str>, attempts: u32) {
        *self.instance.lock().unwrap_or_else(PoisonError::into_inner) = instance.map(str::to_owned);
        self.attempts.store(attempts, Ordering::Relaxed);
    }

    /// Takes state, pyramid id and progress from a snapshot of the job's record, while
    /// another instance runs it (an ended record is taken by [`Jobs::finish`]).
    pub fn mirror(&self, record: &Snapshot) {
        self.set_runner(record.instance.as_deref(), record.attempts);
        let p = &record.progress;
        self.bytes.store(p.bytes, Ordering::Relaxed);
        self.bytes_total
            .store(p.bytes_total.unwrap_or(0), Ordering::Relaxed);
        self.tiles.store(p.tiles, Ordering::Relaxed);
        self.tiles_total
            .store(p.tiles_total.unwrap_or(0), Ordering::Relaxed);
        self.status.send_if_modified(|s| {
            let change = !s.state.is_finished()
                && !record.status.state.is_finished()
                && (s.state != record.status.state || s.pyramid != record.status.pyramid);
            if change {
                s.state = record.status.state;
                s.pyramid.clone_from(&record.status.pyramid);
            }
            change
        });
    }

    /// The current state, id and error.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Moves to `state` (unless finished).
    pub fn set_state(&self, state: JobState) {
        self.status.send_if_modified(|s| {
            let change = !s.state.is_finished() && s.state != state;
            if change {
                s.state = state;
            }
            change
        });
    }

    /// Waits until the job has ended.
    pub async fn finished(&self) -> Status {
        let mut rx = self.subscribe();
        let ended = rx
            .wait_for(|s| s.state.is_finished())
            .await
            .map(|s| s.clone());
        ended.unwrap_or_else(|_| self.status())
    }
}

/// What makes two requests the same work: the source and the settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceKey {
    /// A URL, with the settings recipe.
    Url(String, String),
    /// An S3 key, with the settings recipe.
    S3(String, String),
    /// Bytes sent in the request: known by their pyramid id.
    Pyramid(PyramidId),
}

/// A job found or made by [`Jobs::admit`].
#[derive(Debug)]
pub enum Admission {
    /// A new job: the caller starts its work.
    New(Arc<Job>),
    /// A job already doing this work.
    Joined(Arc<Job>),
}

/// All jobs.
#[derive(Debug)]
pub struct Jobs {
    capacity: usize,
    retention: Duration,
    ids: RandomState,
    counter: AtomicU64,
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    jobs: HashMap<String, Arc<Job>>,
    /// Unfinished jobs by source.
    by_source: HashMap<SourceKey, Arc<Job>>,
    /// Unfinished jobs by pyramid id.
    by_pyramid: HashMap<PyramidId, Arc<Job>>,
}

impl Jobs {
    /// A registry allowing at most `capacity` unfinished jobs, keeping finished ones
    /// for `retention`.
    pub fn new(capacity: usize, retention: Duration) -> Self {
        Jobs {
            capacity: capacity.max(1),
            retention,
            ids: RandomState::new(),
            counter: AtomicU64::new(0),
            inner: Mutex::new(Registry::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The unfinished job for `key` (or, for a pyramid key, for that pyramid), or a
    /// new one in `state`; `503` when `capacity` jobs are unfinished already.
    pub fn admit(&self, key: SourceKey, state: JobState) -> Result<Admission> {
        let mut registry = self.lock();
        registry.prune(self.retention);
        if let Some(job) = registry.by_source.get(&key) {
            return Ok(Admission::Joined(Arc::clone(job)));
        }
        if let SourceKey::Pyramid(id) = &key {
            if let Some(job) = registry.by_pyramid.get(id) {
                return Ok(Admission::Joined(Arc::clone(job)));
            }
        }
        let unfinished = registry
            .jobs
            .values()
            .filter(|j| !j.status.borrow().state.is_finished())
            .count();
        if unfinished >= self.capacity {
            return Err(AppError::Busy {
                message: format!(
                    "{unfinished} tiling jobs are running or queued, the most this server takes; retry later"
                ),
                retry_after_secs: RETRY_AFTER_BUSY_QUEUE_SECS,
            });
        }
        let pyramid = match &key {
            SourceKey::Pyramid(id) => Some(id.clone()),
            _ => None,
        };
        let job = Arc::new(Job::new(self.new_id(), key.clone(), state, pyramid.clone()));
        registry.jobs.insert(job.id().to_owned(), Arc::clone(&job));
        registry.by_source.insert(key, Arc::clone(&job));
        if let Some(id) = pyramid {
            registry.by_pyramid.insert(id, Arc::clone(&job));
        }
        Ok(Admission::New(job))
    }

    /// Takes in a job claimed from the store ([`super::board`]), posted to another
    /// instance: it runs here under its own id. `None` when the id is known here
    /// already (this instance follows or runs it).
    pub fn adopt(&self, id: JobId, key: SourceKey, pyramid: Option<PyramidId>) -> Option<Arc<Job>> {
        let mut registry = self.lock();
        registry.prune(self.retention);
        if registry.jobs.contains_key(id.as_str()) {
            return None;
        }
        let job = Arc::new(Job::new(id, key, JobState::Queued, pyramid.clone()));
        registry.jobs.insert(job.id().to_owned(), Arc::clone(&job));
        if let Some(pyramid) = pyramid {
            registry
                .by_pyramid
                .entry(pyramid)
                .or_insert_with(|| Arc::clone(&job));
        }
        Some(job)
    }

    /// Whether this instance knows the job (asked for it, runs it or follows it).
    pub fn knows(&self, id: &JobId) -> bool {
        self.lock().jobs.contains_key(id.as_str())
    }

    /// Records `job`'s pyramid id. If another unfinished job already makes that
    /// pyramid, returns it (the caller waits for it instead of tiling twice).
    pub fn set_pyramid(&self, job: &Arc<Job>, id: &PyramidId) -> Option<Arc<Job>> {
        let mut registry = self.lock();
        job.status.send_modify(|s| s.pyramid = Some(id.clone()));
        match registry.by_pyramid.get(id) {
            Some(other) if !Arc::ptr_eq(other, job) => Some(Arc::clone(other)),
            _ => {
                registry.by_pyramid.insert(id.clone(), Arc::clone(job));
                None
            }
        }
    }

    /// Ends `job`: ready, or failed with `error`.
    pub fn finish(&self, job: &Arc<Job>, outcome: std::result::Result<(), JobError>) {
        let mut registry = self.lock();
        if registry
            .by_source
            .get(&job.source)
            .is_some_and(|j| Arc::ptr_eq(j, job))
        {
            registry.by_source.remove(&job.source);
        }
        if let Some(id) = job.status.borrow().pyramid.clone() {
            if registry
                .by_pyramid
                .get(&id)
                .is_some_and(|j| Arc::ptr_eq(j, job))
            {
                registry.by_pyramid.remove(&id);
            }
        }
        *job.finished_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        job.status.send_modify(|s| match outcome {
            Ok(()) => s.state = JobState::Ready,
            Err(e) => {
                s.state = JobState::Failed;
                s.error = Some(e);
            }
        });
    }

    /// The jobs not ended yet.
    pub fn unfinished(&self) -> Vec<Arc<Job>> {
        self.lock()
            .jobs
            .values()
            .filter(|j| !j.status().state.is_finished())
            .cloned()
            .collect()
    }

    /// The job with this id, if it is known.
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.lock().jobs.get(id).cloned()
    }

    /// 128 bits, unguessable enough that one caller cannot read another's jobs by
    /// counting, and unique across instances (each has its own random keys).
    fn new_id(&self) -> JobId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let hi = self.ids.hash_one((n, 0u8));
        let lo = self.ids.hash_one((n, 1u8));
        JobId::parse(&format!("{hi:016x}{lo:016x}")).expect("32 hex digits")
    }
}

impl Job {
    fn new(id: JobId, source: SourceKey, state: JobState, pyramid: Option<PyramidId>) -> Self {
        Job {
            id,
            source,
            status: watch::Sender::new(Status {
                state,
                pyramid,
                error: None,
            }),
            finished_at: Mutex::new(None),
            bytes: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            tiles: AtomicU64::new(0),
            tiles_total: AtomicU64::new(0),
            instance: Mutex::new(None),
            attempts: AtomicU32::new(0),
        }
    }
}

impl Registry {
    /// Forgets finished jobs past `retention`, and the oldest past the count.
    fn prune(&mut self, retention: Duration) {
        let now = Instant::now();
        let mut finished: Vec<(Instant, String)> = self
            .jobs
            .values()
            .filter_map(|j| {
                let at = (*j.finished_at.lock().unwrap_or_else(PoisonError::into_inner))?;
                Some((at, j.id().to_owned()))
            })
            .collect();
        finished.sort();
        let excess = finished.len().saturating_sub(FINISHED_KEPT_AT_MOST);
        for (i, (at, id)) in finished.into_iter().enumerate() {
            if i < excess || now.duration_since(at) > retention {
                self.jobs.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pyramid(seed: &str) -> PyramidId {
        PyramidId::parse(&tiler_wasm::pyramid_id(
            seed.as_bytes(),
            &Default::default(),
        ))
        .expect("valid")
    }

    fn new_job(admission: Admission) -> Arc<Job> {
        match admission {
            Admission::New(job) => job,
            Admission::Joined(job) => panic!("expected a new job, joined {}", job.id()),
        }
    }

    #[test]
    fn same_source_joins_until_finished_then_starts_again() {
        let jobs = Jobs::new(4, DEFAULT_RETENTION);
        let key = SourceKey::Url("https://a.example/x.jpg".into(), "q75".into());
        let first = new_job(jobs.admit(key.clone(), JobState::Fetching).expect("room"));
        match jobs.admit(key.clone(), JobState::Fetching).expect("room") {
            Admission::Joined(j) => assert_eq!(j.id(), first.id()),
            Admission::New(_) => panic!("a second job for the same source"),
        }
        let other = SourceKey::Url("https://a.example/x.jpg".into(), "q90".into());
        assert!(matches!(
            jobs.admit(other, JobState::Fetching),
            Ok(Admission::New(_))
        ));
        jobs.finish(&first, Ok(()));
        assert_eq!(first.status().state, JobState::Ready);
        let again = new_job(jobs.admit(key, JobState::Fetching).expect("room"));
        assert_ne!(again.id(), first.id());
        assert_eq!(
            jobs.get(first.id()).map(|j| j.status().state),
            Some(JobState::Ready)
        );
    }

    #[test]
    fn jobs_meet_by_pyramid_id() {
        let jobs = Jobs::new(4, DEFAULT_RETENTION);
        let id = pyramid("a");
        let by_url = new_job(
            jobs.admit(SourceKey::Url("u".into(), "r".into()), JobState::Fetching)
                .expect("room"),
        );
        assert!(jobs.set_pyramid(&by_url, &id).is_none());
        match jobs.admit(SourceKey::Pyramid(id.clone()), JobState::Queued) {
            Ok(Admission::Joined(j)) => assert_eq!(j.id(), by_url.id()),
            other => panic!("expected to join, got {other:?}"),
        }
        let by_s3 = new_job(
            jobs.admit(SourceKey::S3("k".into(), "r".into()), JobState::Fetching)
                .expect("room"),
        );
        let leader = jobs.set_pyramid(&by_s3, &id).expect("the URL job leads");
        assert_eq!(leader.id(), by_url.id());
    }

    #[test]
    fn a_full_queue_answers_503_with_retry_after() {
        let jobs = Jobs::new(1, DEFAULT_RETENTION);
        let first = new_job(
            jobs.admit(SourceKey::Pyramid(pyramid("a")), JobState::Queued)
                .expect("room"),
        );
        let err = jobs
            .admit(SourceKey::Pyramid(pyramid("b")), JobState::Queued)
            .expect_err("full");
        assert_eq!(err.status().as_u16(), 503);
        jobs.finish(
            &first,
            Err(JobError {
                status: 400,
                code: "decode".into(),
                message: "cannot decode image: bad".into(),
            }),
        );
        assert!(jobs
            .admit(SourceKey::Pyramid(pyramid("b")), JobState::Queued)
            .is_ok());
        let failed = jobs.get(first.id()).expect("kept").status();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.error.map(|e| e.code).as_deref(), Some("decode"));
    }

    #[test]
    fn job_ids_differ_and_are_hex() {
        let jobs = Jobs::new(8, DEFAULT_RETENTION);
        let a = jobs.new_id().to_string();
        let b = jobs.new_id().to_string();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
