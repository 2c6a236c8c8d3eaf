//! Runs the jobs this instance holds. A job posted here is recorded in the store,
//! held by this instance from that first write when a place is free; otherwise this instance follows its
//! record (another instance may claim it first) until it ends, claiming it whenever
//! it is free again. The scan ([`spawn_scan`]) claims jobs posted to other instances
//! and removes records past their retention.

use super::board::{Claim, Held, Look};
use super::jobs::{Job, JobError, SourceKey};
use super::pipeline;
use super::record::{JobRecord, RecordedSource};
use super::Source;
use crate::error::{AppError, Result};
use crate::store::{JobId, Key, PyramidId, SourceDigest};
use crate::AppState;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// A job's source as the instance it was posted to has it: the request body already
/// in memory (and the budget it holds) spares reading it back from the store.
#[derive(Debug)]
pub struct LocalSource {
    /// The source.
    pub source: Source,
    /// The source budget it holds.
    pub budget: Option<OwnedSemaphorePermit>,
}

/// Records a job posted here, claims it if this instance has a free place, and
/// drives it in the background. On `Ok`, whether this instance claimed it.
pub async fn submit(
    state: &AppState,
    job: Arc<Job>,
    record: JobRecord,
    local: LocalSource,
) -> Result<bool> {
    let board = &state.tiling.board;
    let claim = match board.create_claimed(&*state.store, &record).await {
        Ok(claim) => claim,
        Err(e) => {
            state.tiling.jobs.finish(&job, Err(JobError::from(&e)));
            return Err(e);
        }
    };
    let claimed = claim.is_some();
    if claimed {
        job.set_runner(Some(board.instance()), 1);
        job.set_state(super::jobs::JobState::Fetching);
    }
    tokio::spawn(drive(state.clone(), job, claim, Some(local)));
    Ok(claimed)
}

/// Runs or follows `job` until it ends.
async fn drive(
    state: AppState,
    job: Arc<Job>,
    mut claim: Option<Claim>,
    mut local: Option<LocalSource>,
) {
    let board = &state.tiling.board;
    loop {
        if let Some(held) = claim.take() {
            if run_held(&state, &job, held, local.take()).await == Held::Ended {
                return;
            }
        }
        let freed = board.freed.notified();
        match board.look(&*state.store, job.job_id()).await {
            Ok(Look::Claimed(held)) => {
                claim = Some(held);
                continue;
            }
            Ok(Look::Ended(record)) => {
                job.mirror(&record.snapshot());
                let outcome = match record.error {
                    None => Ok(()),
                    Some(e) => Err(e),
                };
                state.tiling.jobs.finish(&job, outcome);
                return;
            }
            Ok(Look::Waiting(record)) => {
                if record
                    .instance
                    .as_deref()
                    .is_some_and(|i| i != board.instance())
                {
                    // Another instance runs it: the bytes held here are not needed.
                    local = None;
                }
                job.mirror(&record.snapshot());
            }
            Ok(Look::Gone) => {
                let lost = AppError::Internal("the job's record is gone from the store".into());
                state.tiling.jobs.finish(&job, Err(JobError::from(&lost)));
                return;
            }
            Err(e) => tracing::warn!(job = job.id(), error = %e, "job record not read"),
        }
        let _ = tokio::time::timeout(board.poll_interval(), freed).await;
    }
}

/// Runs a job this instance holds, renewing its lease, until it ends or another
/// instance takes it over (then the work here is stopped).
async fn run_held(
    state: &AppState,
    job: &Arc<Job>,
    mut claim: Claim,
    local: Option<LocalSource>,
) -> Held {
    let board = &state.tiling.board;
    job.set_runner(Some(board.instance()), claim.record.attempts);
    let record = claim.record.clone();
    let work = {
        let (state, job) = (state.clone(), Arc::clone(job));
        tokio::spawn(async move {
            let prepared = match local {
                Some(local) => record
                    .settings
                    .options()
                    .map(|options| (local.source, local.budget, options)),
                None => prepare(&state, &record).await,
            };
            match prepared {
                Ok((source, budget, options)) => {
                    pipeline::run(state, job, source, options, budget, record.committer).await;
                }
                Err(e) => state.tiling.jobs.finish(&job, Err(JobError::from(&e))),
            }
        })
    };
    let held = board.hold(&*state.store, job, &mut claim).await;
    match held {
        Held::Ended => {
            let _ = work.await;
            if let Some(digest) = claim.record.source.upload_digest() {
                if let Err(e) = board
                    .remove_source(&*state.store, digest, job.job_id())
                    .await
                {
                    tracing::warn!(job = job.id(), error = %e, "stored source not removed");
                }
            }
        }
        Held::Lost => work.abort(),
    }
    drop(claim);
    board.freed.notify_waiters();
    held
}

/// The source, its budget and the options of a job recorded by another instance.
async fn prepare(
    state: &AppState,
    record: &JobRecord,
) -> Result<(Source, Option<OwnedSemaphorePermit>, tiler_wasm::Options)> {
    let options = record.settings.options()?;
    let tiling = &state.tiling;
    let source = match &record.source {
        RecordedSource::Url(url) => (Source::Url(tiling.fetcher()?.check(url)?), None),
        RecordedSource::S3Key(key) => {
            tiling.check_s3_key(key)?;
            (Source::S3Key(key.clone()), None)
        }
        RecordedSource::Upload { sha256, bytes } => {
            let digest = SourceDigest::parse_hex(sha256)
                .ok_or_else(|| AppError::Internal("the job's source digest is bad".into()))?;
            if *bytes > tiling.max_source_bytes() {
                return Err(AppError::PayloadTooLarge(format!(
                    "the job's source is {bytes} bytes, over this instance's --max-source-bytes"
                )));
            }
            let budget = tiling.wait_for_source(*bytes).await?;
            let data = state
                .store
                .get(&Key::Source(digest))
                .await?
                .ok_or_else(|| {
                    AppError::NotFound("the job's uploaded source is gone from the store".into())
                })?;
            if SourceDigest::of(&data) != digest {
                return Err(AppError::Internal(
                    "the job's stored source does not match its digest".into(),
                ));
            }
            (Source::Bytes(data), Some(budget))
        }
    };
    Ok((source.0, source.1, options))
}

/// What makes a recorded job the same work as another here.
fn source_key(record: &JobRecord) -> Option<SourceKey> {
    let options = record.settings.options().ok()?;
    let recipe = super::recipe(&options);
    Some(match &record.source {
        RecordedSource::Url(url) => SourceKey::Url(url.clone(), recipe),
        RecordedSource::S3Key(key) => SourceKey::S3(key.clone(), recipe),
        RecordedSource::Upload { .. } => {
            SourceKey::Pyramid(PyramidId::parse(record.pyramid.as_deref()?).ok()?)
        }
    })
}

/// One look at every job in the store: claims the free ones posted elsewhere while
/// this instance has places, and removes records past their retention.
pub async fn scan_once(state: &AppState) -> Result<()> {
    let board = &state.tiling.board;
    let store = &*state.store;
    for id in store.list_jobs().await? {
        if state.tiling.jobs.knows(&id) || board.is_known_ended(&id) {
            continue;
        }
        if let Look::Claimed(claim) = board.look(store, &id).await? {
            adopt(state, id, claim);
        }
    }
    board.expire(store).await?;
    Ok(())
}

/// Runs a job claimed by the scan under its own id.
fn adopt(state: &AppState, id: JobId, claim: Claim) {
    let pyramid = match claim.record.source {
        // Uploaded bytes are checked against their digest; a URL or an object may
        // have changed since it was hashed, so those are hashed again.
        RecordedSource::Upload { .. } => claim
            .record
            .pyramid
            .as_deref()
            .and_then(|p| PyramidId::parse(p).ok()),
        _ => None,
    };
    let Some(key) = source_key(&claim.record) else {
        tracing::warn!(job = %id, "claimed job has unusable settings; left to expire");
        return;
    };
    let Some(job) = state.tiling.jobs.adopt(id, key, pyramid) else {
        return;
    };
    tokio::spawn(drive(state.clone(), job, Some(claim), None));
}

/// Gives back every job this instance holds (on shutdown): its record says it waits
/// for an instance again, so another claims it at once. Returns how many.
pub async fn hand_back(state: &AppState) -> usize {
    let board = &state.tiling.board;
    let mut handed = 0;
    for job in state.tiling.jobs.unfinished() {
        let Ok(Some((mut record, version))) = board.read(&*state.store, job.job_id()).await else {
            continue;
        };
        if record.state.is_finished() || record.instance.as_deref() != Some(board.instance()) {
            continue;
        }
        record.instance = None;
        record.state = super::jobs::JobState::Queued;
        record.beat = record.beat.wrapping_add(1);
        let key = Key::Job(job.job_id().clone());
        if let Ok(Some(_)) = state
            .store
            .put_if_version(&key, record.to_bytes(), &version)
            .await
        {
            handed += 1;
        }
    }
    handed
}

/// Scans the board every poll interval until aborted.
pub fn spawn_scan(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let freed = state.tiling.board.freed.notified();
            if let Err(e) = scan_once(&state).await {
                tracing::warn!(error = %e, "job board not scanned");
            }
            let _ = tokio::time::timeout(state.tiling.board.poll_interval(), freed).await;
        }
    })
}
