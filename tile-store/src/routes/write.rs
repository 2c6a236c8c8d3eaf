//! Writes: tile uploads (single and batch), the upload listing used to resume,
//! the commit, and deletion. All need write authorisation.
//!
//! Uploads to a pyramid not committed yet are staged per writer ([`crate::staging`]);
//! an anonymous writer gets its upload session back in [`SESSION_HEADER`] and the
//! JSON body of every upload, listing and commit answer.

use super::{batch, parse_manifest_name, parse_tile_path, segments};
use crate::auth::SCOPE_DELETE;
use crate::commit::{self, check_tile_cap, is_committed_now};
use crate::error::{AppError, Result};
use crate::staging::{Writer, SESSION_HEADER};
use crate::store::{Key, PyramidId, TileName};
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tiler_wasm::{Dzi, Layout, TileFormat};

/// Highest level of any pyramid (a 2³²-pixel side halves 32 times to 1).
pub const MAX_LEVEL: u32 = 32;
/// Tiles written to the store at once while handling one request.
const STORE_CONCURRENCY: usize = 32;

/// Optional geometry of the pyramid being uploaded, given as query parameters
/// (`?width=600&height=400&tileSize=254&overlap=1&format=jpeg`): when present,
/// every tile's level, column, row and extension are checked against it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeometryQuery {
    width: Option<u32>,
    height: Option<u32>,
    tile_size: Option<u32>,
    overlap: Option<u32>,
    format: Option<String>,
}

/// What a write is checked against.
struct WriteTarget {
    id: PyramidId,
    /// Whose staging uncommitted tiles go to.
    writer: Writer,
    geometry: Option<(Layout, TileFormat)>,
    /// The pyramid is committed: only byte-identical re-uploads are accepted.
    committed: bool,
}

impl WriteTarget {
    async fn load(
        state: &AppState,
        id: PyramidId,
        writer: Writer,
        query: std::result::Result<Query<GeometryQuery>, QueryRejection>,
    ) -> Result<Self> {
        let Query(query) =
            query.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
        let mut geometry = geometry_from_query(&query)?;
        if let Some((layout, _)) = &geometry {
            check_tile_cap(layout.tile_count(), state.limits.max_tiles_per_pyramid)?;
        }
        let mut committed = false;
        if let Some(xml) = state.store.get(&Key::Dzi(id.clone())).await? {
            let dzi = Dzi::parse(&xml)
                .map_err(|e| AppError::Internal(format!("stored {id}.dzi: {e}")))?;
            geometry = Some((dzi.layout()?, dzi.format));
            committed = true;
        }
        Ok(WriteTarget {
            id,
            writer,
            geometry,
            committed,
        })
    }

    fn check(&self, tile: &TileName, bytes: &[u8], max_tile_bytes: usize) -> Result<()> {
        let name = tile.relative();
        if bytes.len() > max_tile_bytes {
            return Err(AppError::PayloadTooLarge(format!(
                "tile {name} has {} bytes, over the {max_tile_bytes}-byte limit",
                bytes.len()
            )));
        }
        if tile.level > MAX_LEVEL {
            return Err(AppError::bad_request(
                "invalid_tile",
                format!("tile {name}: level over {MAX_LEVEL}"),
            ));
        }
        if let Some((layout, format)) = &self.geometry {
            if layout.tile_rect(tile.level, tile.col, tile.row).is_err() {
                return Err(AppError::bad_request(
                    "invalid_tile",
                    format!("tile {name} is outside the pyramid's geometry"),
                ));
            }
            if tile.format != *format {
                return Err(AppError::bad_request(
                    "invalid_extension",
                    format!("tile {name}: this pyramid's tiles are .{format}"),
                ));
            }
        }
        if !tile.format.matches_magic(bytes) {
            return Err(AppError::UnsupportedMediaType(format!(
                "tile {name} is not a {} image",
                tile.format.extension().to_uppercase()
            )));
        }
        Ok(())
    }
}

/// Without a geometry, nothing bounds the addresses of uploaded tiles: the tiles the
/// writer already staged for the id plus the new ones must stay within the cap.
async fn check_upload_count(
    state: &AppState,
    target: &WriteTarget,
    tiles: &[(TileName, Bytes)],
) -> Result<()> {
    if target.geometry.is_some() {
        // Every tile is inside a layout already checked against the cap.
        return Ok(());
    }
    let max = state.limits.max_tiles_per_pyramid;
    let stored: HashSet<TileName> = state
        .store
        .list_staged(&target.writer.id, &target.id)
        .await?
        .into_iter()
        .collect();
    let new: HashSet<&TileName> = tiles
        .iter()
        .map(|(t, _)| t)
        .filter(|t| !stored.contains(t))
        .collect();
    let total = u64::try_from(stored.len())
        .unwrap_or(u64::MAX)
        .saturating_add(u64::try_from(new.len()).unwrap_or(u64::MAX));
    check_tile_cap(total, max)
}

fn geometry_from_query(q: &GeometryQuery) -> Result<Option<(Layout, TileFormat)>> {
    match (q.width, q.height, q.tile_size, q.overlap, &q.format) {
        (None, None, None, None, None) => Ok(None),
        (Some(w), Some(h), Some(t), Some(o), Some(f)) => {
            let format = super::canonical_format(f).ok_or_else(|| {
                AppError::bad_request("invalid_query", "format must be jpeg, png or webp")
            })?;
            Ok(Some((Layout::new(w, h, t, o)?, format)))
        }
        _ => Err(AppError::bad_request(
            "invalid_query",
            "give all of width, height, tileSize, overlap and format, or none",
        )),
    }
}

/// Reads a request body of at most `limit` bytes (413 past it).
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes> {
    let too_large =
        || AppError::PayloadTooLarge(format!("request body is over the {limit}-byte limit"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if over {
            too_large()
        } else {
            AppError::bad_request("invalid_body", format!("cannot read request body: {e}"))
        }
    })
}

/// Stages checked tiles for the writer; on a committed pyramid only identical bytes
/// are accepted (and nothing is written).
async fn store_tiles(
    state: &AppState,
    target: &WriteTarget,
    tiles: Vec<(TileName, Bytes)>,
) -> Result<usize> {
    let count = tiles.len();
    futures::stream::iter(tiles)
        .map(|(tile, bytes)| async move {
            if target.committed {
                let key = Key::Tile(target.id.clone(), tile);
                return match state.store.get(&key).await? {
                    Some(existing) if existing == bytes => Ok(()),
                    _ => Err(AppError::Conflict {
                        code: "committed",
                        message: format!(
                            "pyramid {} is committed; tile {} cannot change",
                            target.id,
                            tile.relative()
                        ),
                        missing: None,
                    }),
                };
            }
            let key = Key::Staged(target.writer.id, target.id.clone(), tile);
            state.store.put(&key, bytes).await
        })
        .buffer_unordered(STORE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(count)
}

/// Answer to uploads.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stored {
    /// Tiles written (or found identical) by this request.
    pub stored: usize,
    /// The anonymous writer's upload session, to send back on every later request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// The writer of a request: its credentials, or the session it sent (validated).
fn writer(caller: &crate::auth::Caller, headers: &HeaderMap) -> Result<Writer> {
    let session = match headers.get(SESSION_HEADER) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            AppError::bad_request("invalid_session", format!("{SESSION_HEADER} is not text"))
        })?),
    };
    Writer::of(caller, session)
}

/// `body` as JSON with `status`, and the writer's session header when anonymous.
fn answer(status: StatusCode, body: impl Serialize, writer: &Writer) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Some(session) = &writer.session {
        if let Ok(value) = HeaderValue::from_str(session.as_str()) {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
    }
    response
}

/// `PUT /pyramids/{id}_files/{level}/{col}_{row}.{ext}`: one tile.
pub async fn put_tile(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<(String, String, String)>, PathRejection>,
    query: std::result::Result<Query<GeometryQuery>, QueryRejection>,
    body: Body,
) -> Result<Response> {
    let caller = state.auth.authorize_write(&headers).await?;
    let writer = writer(&caller, &headers)?;
    let (files, level, tile) = segments(path)?;
    let (id, tile) = parse_tile_path(&files, &level, &tile)?;
    let _turn = state.uploads.enter().await?;
    let bytes = read_body(&headers, body, state.limits.max_tile_bytes).await?;
    let target = WriteTarget::load(&state, id, writer, query).await?;
    target.check(&tile, &bytes, state.limits.max_tile_bytes)?;
    let tiles = vec![(tile, bytes)];
    check_upload_count(&state, &target, &tiles).await?;
    let stored = store_tiles(&state, &target, tiles).await?;
    Ok(stored_answer(&target, stored))
}

/// The answer to an upload of `stored` tiles, with the writer's session (if anonymous).
fn stored_answer(target: &WriteTarget, stored: usize) -> Response {
    let session = target
        .writer
        .session
        .as_ref()
        .map(|s| s.as_str().to_owned());
    answer(StatusCode::OK, Stored { stored, session }, &target.writer)
}

/// `POST /pyramids/{id}/tiles`: many tiles in the [`batch`] wire format.
pub async fn upload_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
    query: std::result::Result<Query<GeometryQuery>, QueryRejection>,
    body: Body,
) -> Result<Response> {
    let caller = state.auth.authorize_write(&headers).await?;
    let writer = writer(&caller, &headers)?;
    let id = PyramidId::parse(&segments(path)?)?;
    let _turn = state.uploads.enter().await?;
    let body = read_body(&headers, body, state.limits.max_request_bytes).await?;
    let tiles = batch::parse(body, state.limits.max_tile_bytes)?;
    let target = WriteTarget::load(&state, id, writer, query).await?;
    for (tile, bytes) in &tiles {
        target.check(tile, bytes, state.limits.max_tile_bytes)?;
    }
    check_upload_count(&state, &target, &tiles).await?;
    let stored = store_tiles(&state, &target, tiles).await?;
    Ok(stored_answer(&target, stored))
}

/// Answer to `GET /pyramids/{id}/tiles`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TileList {
    /// The pyramid.
    pub id: String,
    /// Whether its manifest is committed.
    pub committed: bool,
    /// Tiles as `level/col_row.ext`, sorted by level, column, row: the pyramid's own
    /// once committed, else only those the calling writer staged.
    pub tiles: Vec<String>,
    /// The anonymous writer's upload session, to send back on every later request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// `GET /pyramids/{id}/tiles`: which tiles the caller has staged (or, once
/// committed, the pyramid has), so an upload can resume.
pub async fn list_tiles(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let caller = state.auth.authorize_write(&headers).await?;
    let writer = writer(&caller, &headers)?;
    let id = PyramidId::parse(&segments(path)?)?;
    let committed = is_committed_now(&state, &id).await?;
    let tiles = if committed {
        state.store.list_tiles(&id).await?
    } else {
        state.store.list_staged(&writer.id, &id).await?
    };
    let list = TileList {
        id: id.to_string(),
        committed,
        tiles: tiles.iter().map(TileName::relative).collect(),
        session: writer.session.as_ref().map(|s| s.as_str().to_owned()),
    };
    Ok(answer(StatusCode::OK, list, &writer))
}

/// Answer to a commit.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Committed {
    /// The pyramid.
    pub id: String,
    /// Number of tiles in it.
    pub tile_count: u64,
    /// `false` when the same manifest was already committed.
    pub created: bool,
    /// The anonymous writer's upload session, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// `PUT /pyramids/{id}.dzi`: commits a pyramid whose tiles the caller has all
/// staged, promoting them to the pyramid's own (see [`commit::commit`]).
///
/// 201 when committed now, 200 when the same manifest was committed before, 409
/// with the missing tiles, or when a different manifest is committed.
pub async fn commit(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response> {
    let caller = state.auth.authorize_write(&headers).await?;
    let writer = writer(&caller, &headers)?;
    let id = parse_manifest_name(&segments(path)?)?;
    let xml = read_body(&headers, body, tiler_wasm::dzi::MAX_DZI_BYTES).await?;
    let dzi = Dzi::parse(&xml)?;
    let source = commit::TileSource::Staged(&writer.id);
    let outcome = commit::commit(&state, &id, &dzi, &caller.subject, source).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = Committed {
        id: id.to_string(),
        tile_count: outcome.tile_count,
        created: outcome.created,
        session: writer.session.as_ref().map(|s| s.as_str().to_owned()),
    };
    Ok(answer(status, body, &writer))
}

/// Answer to a delete.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// The pyramid.
    pub id: String,
    /// Whether a committed manifest was removed.
    pub was_committed: bool,
    /// Tiles removed.
    pub removed_tiles: u64,
}

/// `DELETE /pyramids/{id}`: removes the manifest first (so the pyramid stops being
/// complete at once), then every tile.
pub async fn delete_pyramid(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<Deleted>> {
    let caller = state.auth.authorize_write(&headers).await?;
    let id = PyramidId::parse(&segments(path)?)?;
    let _turn = state.id_locks.lock(&id).await;
    let key = Key::Dzi(id.clone());
    let was_committed = state.store.head(&key).await?.is_some();
    if !caller.can_delete_any {
        let committer = commit::committer_of(&state, &id).await?;
        if committer.as_deref() != Some(caller.subject.as_str()) {
            return Err(AppError::Forbidden {
                code: "not_committer",
                message: format!(
                    "only the pyramid's committer, or a token with the {SCOPE_DELETE} scope, may delete it"
                ),
            });
        }
    }
    // The manifest first: the pyramid stops being complete at once; then the tiles.
    state.store.delete(&key).await?;
    state.committed.remove(&id);
    let removed_tiles = state.store.delete_tiles(&id).await?;
    // A commit through another instance may have written the manifest after ours was
    // removed and before the tiles went: take it away again (its tiles are gone).
    if state.store.head(&key).await?.is_some() {
        state.store.delete(&key).await?;
        tracing::warn!(%id, "delete raced a commit; manifest removed again");
    }
    state.store.delete(&Key::Committer(id.clone())).await?;
    tracing::info!(%id, was_committed, removed_tiles, deleted_by = %caller.subject, "pyramid deleted");
    Ok(Json(Deleted {
        id: id.to_string(),
        was_committed,
        removed_tiles,
    }))
}
