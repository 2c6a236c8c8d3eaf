//! Server-side tiling over HTTP: `POST /pyramids` (by URL, S3 key or the image as the
//! body), `GET /jobs/{job}` and the Server-Sent Events of `GET /jobs/{job}/events`.

use super::segments;
use crate::commit::is_committed_now;
use crate::error::{AppError, Result};
use crate::store::PyramidId;
use crate::store::{JobId, Key, PutOutcome, SourceDigest};
use crate::tiling::jobs::{Admission, Job, JobError, JobState, Progress, Snapshot, SourceKey};
use crate::tiling::record::{JobRecord, RecordedSource};
use crate::tiling::runner::{self, LocalSource};
use crate::tiling::{recipe, Settings, Source};
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How long `POST /pyramids` waits for a URL or S3 source to be fetched and hashed, so
/// that a refused, missing or over-size source is answered as such, and a pyramid
/// already committed as `ready`. Past it, the answer is `202` with the id still `null`.
const WAIT_FOR_SOURCE: Duration = Duration::from_secs(10);
/// Largest JSON request body.
const MAX_JSON_BYTES: usize = 64 << 10;
/// How often the event stream looks at progress between state changes.
const EVENT_INTERVAL: Duration = Duration::from_millis(250);
/// How often the event stream reads the record of a job run by another instance.
const REMOTE_EVENT_INTERVAL: Duration = Duration::from_millis(500);

/// The JSON form of `POST /pyramids`: exactly one of `src` and `s3Key`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TileRequest {
    /// An `http` or `https` URL.
    pub src: Option<String>,
    /// An object key in the S3 store's bucket.
    pub s3_key: Option<String>,
    /// Tiling settings.
    #[serde(flatten)]
    pub settings: Settings,
}

/// The answer of `POST /pyramids` and `GET /jobs/{job}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// The pyramid id, once the source is hashed.
    pub id: Option<String>,
    /// The manifest's path on this server, `/pyramids/{id}.dzi`, once the id is known.
    pub dzi: Option<String>,
    /// `queued`, `fetching`, `tiling`, `storing`, `ready` or `failed`.
    pub status: JobState,
    /// The job's id (absent when the pyramid was committed before the request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Progress, while there is a job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Why the job failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// The instance running (or that ran) the job; `null` while it waits for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<Option<String>>,
    /// How many times an instance has started the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl JobView {
    fn ready(id: &PyramidId) -> Self {
        JobView {
            id: Some(id.to_string()),
            dzi: Some(dzi_path(id)),
            status: JobState::Ready,
            job: None,
            progress: None,
            error: None,
            instance: None,
            attempts: None,
        }
    }

    fn of(job: &str, snapshot: Snapshot) -> Self {
        let status = snapshot.status;
        JobView {
            id: status.pyramid.as_ref().map(ToString::to_string),
            dzi: status.pyramid.as_ref().map(dzi_path),
            status: status.state,
            job: Some(job.to_owned()),
            progress: Some(snapshot.progress),
            error: status.error,
            instance: Some(snapshot.instance),
            attempts: Some(snapshot.attempts),
        }
    }

    fn of_job(job: &Job) -> Self {
        JobView::of(job.id(), job.snapshot())
    }
}

fn dzi_path(id: &PyramidId) -> String {
    format!("/pyramids/{id}.dzi")
}

/// `POST /pyramids`: tile an image given by URL (`{"src": …}`), by S3 key
/// (`{"s3Key": …}`) or as the request body (any non-JSON `Content-Type`).
///
/// `200` with `status: "ready"` when the pyramid is committed (nothing is tiled),
/// `202` with the job otherwise (`Location: /jobs/{job}`), the source's error when it
/// cannot be fetched (`403` refused address, `404`, `413`, `502`), `503` with
/// `Retry-After` when the queue is full.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: std::result::Result<Query<Settings>, QueryRejection>,
    body: Body,
) -> Result<Response> {
    let caller = state.auth.authorize_write(&headers).await?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if is_json {
        let body = super::write::read_body(&headers, body, MAX_JSON_BYTES).await?;
        let request: TileRequest = serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request("invalid_json", e.to_string()))?;
        by_reference(state, request, caller.subject).await
    } else {
        let Query(settings) =
            query.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
        by_body(state, &headers, body, &settings, caller.subject).await
    }
}

async fn by_reference(
    state: AppState,
    request: TileRequest,
    committer: String,
) -> Result<Response> {
    let options = request.settings.options()?;
    let recipe = recipe(&options);
    let (key, recorded, source) = match (request.src, request.s3_key) {
        (Some(src), None) => {
            let url = state.tiling.fetcher()?.check(&src)?;
            (
                SourceKey::Url(url.to_string(), recipe),
                RecordedSource::Url(url.to_string()),
                Source::Url(url),
            )
        }
        (None, Some(key)) => {
            state.tiling.check_s3_key(&key)?;
            (
                SourceKey::S3(key.clone(), recipe),
                RecordedSource::S3Key(key.clone()),
                Source::S3Key(key),
            )
        }
        _ => {
            return Err(AppError::bad_request(
                "invalid_request",
                "give exactly one of src and s3Key (or send the image itself as the body)",
            ))
        }
    };
    let job = match state.tiling.jobs.admit(key, JobState::Queued)? {
        Admission::New(job) => {
            let record = JobRecord::queued(job.id(), recorded, request.settings, &committer, None);
            let local = LocalSource {
                source,
                budget: None,
            };
            if !runner::submit(&state, Arc::clone(&job), record, local).await? {
                // Queued for the next free place, here or on another instance.
                return Ok(answer(&job));
            }
            job
        }
        Admission::Joined(job) => job,
    };
    let mut status = job.subscribe();
    let fetched = status.wait_for(|s| {
        s.state.is_finished() || (s.pyramid.is_some() && s.state != JobState::Fetching)
    });
    // Past the wait the job goes on; the answer says where it is.
    let _ = tokio::time::timeout(WAIT_FOR_SOURCE, fetched).await;
    Ok(answer(&job))
}

async fn by_body(
    state: AppState,
    headers: &HeaderMap,
    body: Body,
    settings: &Settings,
    committer: String,
) -> Result<Response> {
    let options = settings.options()?;
    let max = state.tiling.max_source_bytes();
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    // Held like any upload (a cap on bodies read at once), and the bytes count
    // against the queued-source budget until the job ends.
    let turn = state.uploads.enter().await?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n <= max);
    let mut budget = state.tiling.reserve_source(declared.unwrap_or(max))?;
    let bytes = super::write::read_body(headers, body, limit).await?;
    drop(turn);
    let excess = budget.num_permits().saturating_sub(bytes.len().max(1));
    drop(budget.split(excess));
    if bytes.is_empty() {
        return Err(AppError::bad_request(
            "invalid_request",
            "send the image as the body, or JSON {\"src\": …} or {\"s3Key\": …} with Content-Type: application/json",
        ));
    }
    crate::tiling::pipeline::check_tile_count(
        &bytes,
        &options,
        state.limits.max_tiles_per_pyramid,
    )?;
    let hashed = bytes.clone();
    let id = tokio::task::spawn_blocking(move || tiler_wasm::pyramid_id(&hashed, &options))
        .await
        .map_err(|e| AppError::Internal(format!("hashing task: {e}")))?;
    let id = PyramidId::parse(&id)?;
    if is_committed_now(&state, &id).await? {
        return Ok((StatusCode::OK, Json(JobView::ready(&id))).into_response());
    }
    let job = match state
        .tiling
        .jobs
        .admit(SourceKey::Pyramid(id.clone()), JobState::Queued)?
    {
        Admission::New(job) => {
            // Kept in the store before the answer, so that another instance can
            // finish the job if this one goes.
            let digest = SourceDigest::of(&bytes);
            if let Err(e) = state
                .store
                .put_if_absent(&Key::Source(digest), bytes.clone())
                .await
                .map(|_: PutOutcome| ())
            {
                state.tiling.jobs.finish(&job, Err(JobError::from(&e)));
                return Err(e);
            }
            let recorded = RecordedSource::Upload {
                sha256: digest.to_string(),
                bytes: bytes.len() as u64,
            };
            let record =
                JobRecord::queued(job.id(), recorded, settings.clone(), &committer, Some(&id));
            let local = LocalSource {
                source: Source::Bytes(bytes),
                budget: Some(budget),
            };
            runner::submit(&state, Arc::clone(&job), record, local).await?;
            job
        }
        Admission::Joined(job) => job,
    };
    Ok(answer(&job))
}

/// `200` when ready, the job's error status when failed, `202` otherwise.
fn answer(job: &Job) -> Response {
    let view = JobView::of_job(job);
    match (&view.status, &view.error) {
        (JobState::Failed, Some(error)) => {
            let status =
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({
                "error": { "code": error.code, "message": error.message },
                "job": job.id(),
            });
            (status, Json(body)).into_response()
        }
        (JobState::Ready, _) => (StatusCode::OK, Json(view)).into_response(),
        _ => {
            let mut response = (StatusCode::ACCEPTED, Json(view)).into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/jobs/{}", job.id())) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}

/// A job's answer: from this instance's memory when it knows the job, else from its
/// record in the store (posted to and run by other instances).
async fn find_job(
    state: &AppState,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Found> {
    let id = segments(path)?;
    let missing = || {
        AppError::NotFound(format!(
            "no job {id} (ended jobs are kept for a while, then forgotten)"
        ))
    };
    let job_id = JobId::parse(&id).ok_or_else(missing)?;
    if let Some(job) = state.tiling.jobs.get(job_id.as_str()) {
        return Ok(Found::Here(job));
    }
    match state.tiling.board.read(&*state.store, &job_id).await? {
        Some((record, _)) => {
            let first = JobView::of(job_id.as_str(), record.snapshot());
            Ok(Found::Elsewhere(job_id, Box::new(first)))
        }
        None => Err(missing()),
    }
}

enum Found {
    Here(Arc<Job>),
    /// Known from its record: its id, and its answer as read just now.
    Elsewhere(JobId, Box<JobView>),
}

impl Found {
    /// The job's answer now (`None` when its record went).
    async fn view(&self, state: &AppState) -> Result<Option<JobView>> {
        match self {
            Found::Here(job) => Ok(Some(JobView::of_job(job))),
            Found::Elsewhere(id, _) => Ok(state
                .tiling
                .board
                .read(&*state.store, id)
                .await?
                .map(|(record, _)| JobView::of(id.as_str(), record.snapshot()))),
        }
    }
}

/// `GET /jobs/{job}`: the job's state, progress, pyramid id, error and instance.
/// Any instance on the store answers for any job.
pub async fn get_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<JobView>> {
    state.auth.authorize_read(&headers).await?;
    // A job known only from its record was read once by `find_job`: that answer is used.
    let view = match find_job(&state, path).await? {
        Found::Here(job) => JobView::of_job(&job),
        Found::Elsewhere(_, first) => *first,
    };
    Ok(Json(view))
}

/// `GET /jobs/{job}/events`: Server-Sent Events, one `status` event (the
/// [`JobView`] as JSON) whenever the state or progress changes, at most every 250 ms;
/// the stream ends after the event saying `ready` or `failed`. A job this instance
/// does not know is followed through its record.
pub async fn job_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse> {
    state.auth.authorize_read(&headers).await?;
    let found = find_job(&state, path).await?;
    let changes = match &found {
        Found::Here(job) => Some(job.subscribe()),
        Found::Elsewhere(..) => None,
    };
    let events = futures::stream::unfold(
        Some((state, found, changes, String::new())),
        |running| async move {
            let (state, found, mut changes, last) = running?;
            loop {
                let view = match found.view(&state).await {
                    Ok(Some(view)) => view,
                    // The record went (expired) or cannot be read: the stream ends.
                    Ok(None) | Err(_) => return None,
                };
                let finished = view.status.is_finished();
                let json = serde_json::to_string(&view).unwrap_or_default();
                if json != last {
                    let event = Event::default().event("status").data(json.clone());
                    let next = (!finished).then_some((state, found, changes, json));
                    return Some((Ok::<Event, Infallible>(event), next));
                }
                match changes.as_mut() {
                    Some(changes) => {
                        let _ = tokio::time::timeout(EVENT_INTERVAL, changes.changed()).await;
                    }
                    None => tokio::time::sleep(REMOTE_EVENT_INTERVAL).await,
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
