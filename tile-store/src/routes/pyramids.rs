//! Server-side tiling over HTTP: `POST /pyramids` (by URL, S3 key or the image as the
//! body), `GET /jobs/{job}` and the Server-Sent Events of `GET /jobs/{job}/events`.

use super::segments;
use crate::commit::is_committed;
use crate::error::{AppError, Result};
use crate::store::PyramidId;
use crate::tiling::jobs::{Admission, Job, JobError, JobState, SourceKey};
use crate::tiling::{pipeline, Source};
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
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tiler_wasm::{Layout, Options, TileFormat};

/// How long `POST /pyramids` waits for a URL or S3 source to be fetched and hashed, so
/// that a refused, missing or over-size source is answered as such, and a pyramid
/// already committed as `ready`. Past it, the answer is `202` with the id still `null`.
const WAIT_FOR_SOURCE: Duration = Duration::from_secs(10);
/// Largest JSON request body.
const MAX_JSON_BYTES: usize = 64 << 10;
/// How often the event stream looks at progress between state changes.
const EVENT_INTERVAL: Duration = Duration::from_millis(250);

/// Tiling settings, in the JSON body or (for an image sent as the body) the query.
/// Every field is optional; the defaults are `vips dzsave`'s.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// `auto` (PNG for images with alpha, JPEG otherwise), `jpeg`, `png` or `webp`.
    pub format: Option<String>,
    /// JPEG / WebP quality, 1..=100.
    pub quality: Option<u8>,
    /// Tile size without overlap.
    pub tile_size: Option<u32>,
    /// Overlap on each side.
    pub overlap: Option<u32>,
}

impl Settings {
    fn options(&self) -> Result<Options> {
        let defaults = Options::default();
        let format = match self.format.as_deref() {
            None | Some("auto") => None,
            Some(name) => Some(name.parse::<TileFormat>()?),
        };
        let options = Options {
            format,
            quality: self.quality.unwrap_or(defaults.quality),
            tile_size: self.tile_size.unwrap_or(defaults.tile_size),
            overlap: self.overlap.unwrap_or(defaults.overlap),
            ..defaults
        };
        if !(1..=100).contains(&options.quality) {
            return Err(AppError::bad_request(
                "invalid_option",
                "quality must be 1..=100",
            ));
        }
        Layout::new(1, 1, options.tile_size, options.overlap)?;
        Ok(options)
    }
}

/// The settings as they enter the pyramid id, to tell jobs apart.
fn recipe(options: &Options) -> String {
    format!(
        "{}/{}/{}/{}",
        options.format.map_or("auto", |f| f.extension()),
        options.quality,
        options.tile_size,
        options.overlap
    )
}

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

/// A job's progress.
#[derive(Debug, Serialize, Deserialize)]
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
        }
    }

    fn of(job: &Job) -> Self {
        let status = job.status();
        let known = |n: u64| (n > 0).then_some(n);
        JobView {
            id: status.pyramid.as_ref().map(ToString::to_string),
            dzi: status.pyramid.as_ref().map(dzi_path),
            status: status.state,
            job: Some(job.id().to_owned()),
            progress: Some(Progress {
                bytes: job.bytes.load(Ordering::Relaxed),
                bytes_total: known(job.bytes_total.load(Ordering::Relaxed)),
                tiles: job.tiles.load(Ordering::Relaxed),
                tiles_total: known(job.tiles_total.load(Ordering::Relaxed)),
            }),
            error: status.error,
        }
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
    let (key, source) = match (request.src, request.s3_key) {
        (Some(src), None) => {
            let url = state.tiling.fetcher()?.check(&src)?;
            (SourceKey::Url(url.to_string(), recipe), Source::Url(url))
        }
        (None, Some(key)) => {
            state.tiling.check_s3_key(&key)?;
            (SourceKey::S3(key.clone(), recipe), Source::S3Key(key))
        }
        _ => {
            return Err(AppError::bad_request(
                "invalid_request",
                "give exactly one of src and s3Key (or send the image itself as the body)",
            ))
        }
    };
    let job = match state.tiling.jobs.admit(key, JobState::Fetching)? {
        Admission::New(job) => {
            tokio::spawn(pipeline::run(
                state.clone(),
                Arc::clone(&job),
                source,
                options,
                None,
                committer,
            ));
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
    if is_committed(&state, &id).await? {
        return Ok((StatusCode::OK, Json(JobView::ready(&id))).into_response());
    }
    let job = match state
        .tiling
        .jobs
        .admit(SourceKey::Pyramid(id), JobState::Queued)?
    {
        Admission::New(job) => {
            tokio::spawn(pipeline::run(
                state.clone(),
                Arc::clone(&job),
                Source::Bytes(bytes),
                options,
                Some(budget),
                committer,
            ));
            job
        }
        Admission::Joined(job) => job,
    };
    Ok(answer(&job))
}

/// `200` when ready, the job's error status when failed, `202` otherwise.
fn answer(job: &Job) -> Response {
    let view = JobView::of(job);
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

fn find_job(
    state: &AppState,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Arc<Job>> {
    let id = segments(path)?;
    state.tiling.jobs.get(&id).ok_or_else(|| {
        AppError::NotFound(format!(
            "no job {id} (finished jobs are kept for a while, then forgotten)"
        ))
    })
}

/// `GET /jobs/{job}`: the job's state, progress, pyramid id and error.
pub async fn get_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<JobView>> {
    state.auth.authorize_read(&headers).await?;
    let job = find_job(&state, path)?;
    Ok(Json(JobView::of(&job)))
}

/// `GET /jobs/{job}/events`: Server-Sent Events, one `status` event (the
/// [`JobView`] as JSON) whenever the state or progress changes, at most every 250 ms;
/// the stream ends after the event saying `ready` or `failed`.
pub async fn job_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse> {
    state.auth.authorize_read(&headers).await?;
    let job = find_job(&state, path)?;
    let changes = job.subscribe();
    let events =
        futures::stream::unfold(Some((job, changes, String::new())), |running| async move {
            let (job, mut changes, last) = running?;
            loop {
                let view = JobView::of(&job);
                let finished = view.status.is_finished();
                let json = serde_json::to_string(&view).unwrap_or_default();
                if json != last {
                    let event = Event::default().event("status").data(json.clone());
                    let next = (!finished).then_some((job, changes, json));
                    return Some((Ok::<Event, Infallible>(event), next));
                }
                let _ = tokio::time::timeout(EVENT_INTERVAL, changes.changed()).await;
            }
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
