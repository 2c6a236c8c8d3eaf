//! The job board: tiling jobs shared through the store, so that every instance on one
//! bucket (or data folder) answers for every job, and a job outlives the instance
//! that started it.
//!
//! A job's record ([`JobRecord`]) is claimed by writing this instance's name into it
//! with a compare-and-swap on its version (S3's `If-Match` on the ETag). The holder
//! renews the claim — its lease — by rewriting the record at least every third of
//! `--job-lease`. Another instance takes a job over when the record has not changed
//! for a whole lease *as that instance observes it*: only durations measured on one
//! machine's clock count, never timestamps compared across machines.

use super::jobs::{Job, JobError, JobState};
use super::record::{now_ms, JobRecord};
use crate::error::{AppError, Result};
use crate::store::{JobId, Key, PutOutcome, SourceDigest, Store, Version};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Default of `--job-lease`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Jobs one instance holds at once: one tiling (which uses every core) and one
/// fetching and hashing its source meanwhile. Fewer than the queue, so that a burst
/// posted to one instance is left for the others to claim.
pub const CLAIMS_AT_ONCE: usize = 2;
/// Claims of one job before it is failed: a source that brings down every instance
/// tiling it must not go round the cluster for ever.
pub const MAX_ATTEMPTS: u32 = 3;

/// The instance's name, the lease and how long ended jobs are kept.
#[derive(Debug, Clone)]
pub struct BoardSettings {
    /// This instance's name in job records (`--instance-id`, default `host:pid`).
    pub instance: String,
    /// How long a record may go unrenewed before another instance takes the job.
    pub lease: Duration,
    /// How long ended jobs stay readable (`--job-retention`).
    pub retention: Duration,
}

impl Default for BoardSettings {
    fn default() -> Self {
        BoardSettings {
            instance: default_instance_id(),
            lease: DEFAULT_LEASE,
            retention: super::jobs::DEFAULT_RETENTION,
        }
    }
}

/// `host:pid`: unique among instances sharing a store, and says where to look.
pub fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// A job this instance holds: its record as last written, that write's version, and
/// one of the instance's [`CLAIMS_AT_ONCE`] places (given back when dropped).
#[derive(Debug)]
pub struct Claim {
    /// The record as this instance last wrote it.
    pub record: JobRecord,
    version: Version,
    _place: OwnedSemaphorePermit,
}

/// What [`Board::look`] found.
#[derive(Debug)]
pub enum Look {
    /// This instance now holds the job.
    Claimed(Claim),
    /// The job has ended.
    Ended(JobRecord),
    /// Another instance holds it, or it waits for a free place (here or elsewhere).
    Waiting(JobRecord),
    /// No such record.
    Gone,
}

/// How holding a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The job ended and its record says so.
    Ended,
    /// Another instance took the job over (this one was too slow to renew).
    Lost,
}

/// The jobs of every instance, in the store.
#[derive(Debug)]
pub struct Board {
    settings: BoardSettings,
    places: Arc<Semaphore>,
    /// Woken when a place is given back, so that a queued job here is claimed at once.
    pub freed: Arc<Notify>,
    /// Each record's version when this instance first saw it unchanged since.
    seen: Mutex<HashMap<JobId, (Version, Instant)>>,
    /// Ended jobs: when they ended (ms since the epoch) and their stored source.
    ended: Mutex<HashMap<JobId, (u64, Option<SourceDigest>)>>,
}

impl Board {
    /// A board with `settings`.
    pub fn new(settings: BoardSettings) -> Self {
        Board {
            settings,
            places: Arc::new(Semaphore::new(CLAIMS_AT_ONCE)),
            freed: Arc::new(Notify::new()),
            seen: Mutex::default(),
            ended: Mutex::default(),
        }
    }

    /// This instance's name.
    pub fn instance(&self) -> &str {
        &self.settings.instance
    }

    /// How often waiting jobs and other instances' jobs are looked at.
    pub fn poll_interval(&self) -> Duration {
        (self.settings.lease / 10).clamp(Duration::from_millis(100), Duration::from_secs(3))
    }

    /// How often a held job's record is rewritten (with its progress).
    fn renew_interval(&self) -> Duration {
        (self.settings.lease / 3).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// Writes a new job's record.
    pub async fn create(&self, store: &dyn Store, record: &JobRecord) -> Result<()> {
        let id = record_id(record)?;
        match store
            .put_if_absent(&Key::Job(id), record.to_bytes())
            .await?
        {
            PutOutcome::Created => Ok(()),
            PutOutcome::Exists => Err(AppError::Internal(format!(
                "job record {} exists already",
                record.job
            ))),
        }
    }

    /// Writes the record of a job posted here, already held by this instance when it
    /// has a free place, so that no other instance claims it between the write and a
    /// claim (the instance that has the upload in memory runs it). Returns the claim;
    /// `None` when the record was left for any instance (no free place here).
    pub async fn create_claimed(
        &self,
        store: &dyn Store,
        record: &JobRecord,
    ) -> Result<Option<Claim>> {
        let Ok(place) = Arc::clone(&self.places).try_acquire_owned() else {
            self.create(store, record).await?;
            return Ok(None);
        };
        let id = record_id(record)?;
        let mut held = record.clone();
        held.instance = Some(self.settings.instance.clone());
        held.attempts = held.attempts.saturating_add(1);
        held.beat = held.beat.wrapping_add(1);
        self.create(store, &held).await?;
        // The version is the store's to give (an ETag); a read after the write gets it.
        // Other instances leave the record alone for a whole lease, so it is ours.
        match self.read(store, &id).await {
            Ok(Some((stored, version))) if stored == held => Ok(Some(Claim {
                record: held,
                version,
                _place: place,
            })),
            // Not readable now: the record still names this instance, which claims it
            // again once its lease lapses, like any other.
            Ok(_) | Err(_) => {
                tracing::warn!(job = %id, "new job record not read back; claimed later");
                Ok(None)
            }
        }
    }

    /// The job's record and its version.
    pub async fn read(
        &self,
        store: &dyn Store,
        id: &JobId,
    ) -> Result<Option<(JobRecord, Version)>> {
        let Some((bytes, version)) = store.get_versioned(&Key::Job(id.clone())).await? else {
            return Ok(None);
        };
        let record = JobRecord::parse(&bytes)
            .filter(|r| r.job == id.as_str())
            .ok_or_else(|| AppError::Store(format!("job record {id} cannot be read")))?;
        Ok(Some((record, version)))
    }

    /// Whether the record at `version` has been seen unchanged for a whole lease.
    fn lapsed(&self, id: &JobId, version: &Version) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        match seen.get(id) {
            Some((v, since)) if v == version => since.elapsed() >= self.settings.lease,
            _ => {
                seen.insert(id.clone(), (version.clone(), Instant::now()));
                false
            }
        }
    }

    /// Reads the job's record and claims the job when it is free (never claimed, or
    /// its lease lapsed) and this instance has a free place.
    pub async fn look(&self, store: &dyn Store, id: &JobId) -> Result<Look> {
        let Some((record, version)) = self.read(store, id).await? else {
            self.forget(id);
            return Ok(Look::Gone);
        };
        if record.state.is_finished() {
            self.note_ended(id, &record);
            return Ok(Look::Ended(record));
        }
        let free = record.instance.is_none() || self.lapsed(id, &version);
        if !free {
            return Ok(Look::Waiting(record));
        }
        let Ok(place) = Arc::clone(&self.places).try_acquire_owned() else {
            return Ok(Look::Waiting(record));
        };
        let mut next = record.clone();
        next.beat = next.beat.wrapping_add(1);
        if record.attempts >= MAX_ATTEMPTS {
            next.state = JobState::Failed;
            next.error = Some(JobError {
                status: 500,
                code: "job_abandoned".into(),
                message: format!(
                    "the job was started {} times and no instance finished it",
                    record.attempts
                ),
            });
            next.finished_at_ms = Some(now_ms());
            return match store
                .put_if_version(&Key::Job(id.clone()), next.to_bytes(), &version)
                .await?
            {
                Some(_) => {
                    self.note_ended(id, &next);
                    Ok(Look::Ended(next))
                }
                None => Ok(Look::Waiting(record)),
            };
        }
        next.instance = Some(self.settings.instance.clone());
        next.attempts = next.attempts.saturating_add(1);
        match store
            .put_if_version(&Key::Job(id.clone()), next.to_bytes(), &version)
            .await?
        {
            Some(version) => {
                self.forget(id);
                tracing::info!(job = %id, attempt = next.attempts, "job claimed");
                Ok(Look::Claimed(Claim {
                    record: next,
                    version,
                    _place: place,
                }))
            }
            // Another instance claimed it first.
            None => Ok(Look::Waiting(record)),
        }
    }

    /// Holds `job` until it ends: rewrites its record whenever its state changes and
    /// at least every renewal interval, with its progress; the last write says how
    /// it ended. Returns [`Held::Lost`] as soon as another instance has taken it.
    pub async fn hold(&self, store: &dyn Store, job: &Job, claim: &mut Claim) -> Held {
        let id = job.job_id().clone();
        let mut changes = job.subscribe();
        loop {
            let snapshot = job.snapshot();
            let ended = snapshot.status.state.is_finished();
            let mut next = claim.record.clone();
            next.update_from(&snapshot);
            next.instance = Some(self.settings.instance.clone());
            next.beat = next.beat.wrapping_add(1);
            match store
                .put_if_version(&Key::Job(id.clone()), next.to_bytes(), &claim.version)
                .await
            {
                Ok(Some(version)) => {
                    claim.record = next;
                    claim.version = version;
                    if ended {
                        self.note_ended(&id, &claim.record);
                        return Held::Ended;
                    }
                }
                Ok(None) => {
                    tracing::warn!(job = %id, "job taken over by another instance");
                    return Held::Lost;
                }
                // Tried again at the next renewal; if the store stays away for a whole
                // lease, another instance takes the job (and the commit stays single).
                Err(e) => tracing::warn!(job = %id, error = %e, "job record not renewed"),
            }
            let wait = self.renew_interval();
            if !ended {
                let _ = tokio::time::timeout(wait, changes.changed()).await;
            } else {
                tokio::time::sleep(wait).await;
            }
        }
    }

    fn note_ended(&self, id: &JobId, record: &JobRecord) {
        self.forget(id);
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id.clone(),
                (
                    record.finished_at_ms.unwrap_or_else(now_ms),
                    record.source.upload_digest(),
                ),
            );
    }

    fn forget(&self, id: &JobId) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Whether this instance has seen the job end (its record changes no more).
    pub fn is_known_ended(&self, id: &JobId) -> bool {
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(id)
    }

    /// Whether a place is free to claim a job.
    pub fn has_free_place(&self) -> bool {
        self.places.available_permits() > 0
    }

    /// Removes the stored copy of an uploaded source once job `done` has ended, unless
    /// another unended job needs the same bytes (the same image posted again, to any
    /// instance, with other settings or while this job ran).
    pub async fn remove_source(
        &self,
        store: &dyn Store,
        digest: SourceDigest,
        done: &JobId,
    ) -> Result<bool> {
        for id in store.list_jobs().await? {
            if id == *done || self.is_known_ended(&id) {
                continue;
            }
            if let Some((record, _)) = self.read(store, &id).await? {
                if !record.state.is_finished() && record.source.upload_digest() == Some(digest) {
                    return Ok(false);
                }
            }
        }
        store.delete(&Key::Source(digest)).await?;
        Ok(true)
    }

    /// Removes the records (and stored sources) of jobs that ended more than the
    /// retention ago; returns how many.
    pub async fn expire(&self, store: &dyn Store) -> Result<u64> {
        let retention = u64::try_from(self.settings.retention.as_millis()).unwrap_or(u64::MAX);
        let now = now_ms();
        let due: Vec<(JobId, Option<SourceDigest>)> = self
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, (at, _))| now.saturating_sub(*at) > retention)
            .map(|(id, (_, source))| (id.clone(), *source))
            .collect();
        let mut removed = 0u64;
        for (id, source) in due {
            if let Some(digest) = source {
                self.remove_source(store, digest, &id).await?;
            }
            store.delete(&Key::Job(id.clone())).await?;
            self.ended
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            removed = removed.saturating_add(1);
        }
        Ok(removed)
    }
}

fn record_id(record: &JobRecord) -> Result<JobId> {
    JobId::parse(&record.job)
        .ok_or_else(|| AppError::Internal(format!("bad job id {:?}", record.job)))
}
