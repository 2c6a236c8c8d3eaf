//! Reads: manifests and tiles, with strong ETags computed here (S3-compatible
//! servers such as s3s-fs ignore conditional GETs, so tile-store answers 304 itself).

use super::{parse_manifest_name, parse_tile_path, segments};
use crate::commit::is_committed;
use crate::error::{AppError, Result};
use crate::store::{Key, PyramidId, SourceDigest};
use crate::tiling::Settings;
use crate::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// `Cache-Control` of objects of committed pyramids, which never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of tiles of pyramids not committed yet.
pub const REVALIDATE: &str = "no-cache";
/// [`IMMUTABLE`] under `--require-read-token`: only the reader's own cache may keep it.
pub const PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// [`REVALIDATE`] under `--require-read-token`.
pub const PRIVATE_REVALIDATE: &str = "private, no-cache";

/// The `Cache-Control` for an object of a committed (or not yet committed) pyramid.
/// Behind read tokens, shared caches must not keep it: a proxy or CDN would serve it
/// to anyone, token or not.
pub(super) fn cache_control(state: &AppState, committed: bool) -> &'static str {
    match (state.auth.reads_need_token(), committed) {
        (false, true) => IMMUTABLE,
        (false, false) => REVALIDATE,
        (true, true) => PRIVATE_IMMUTABLE,
        (true, false) => PRIVATE_REVALIDATE,
    }
}

/// The strong ETag of `bytes`: the first 128 bits of their SHA-256, quoted.
pub fn etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, as RFC 9110 asks).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
}

/// `GET`/`HEAD /pyramids/{id}.dzi`: only committed pyramids have a manifest. Also
/// `/pyramids/{id}.json`: the geometry that manifest describes, as tiler-wasm's `Geometry` in JSON
/// (what `parseDzi` returns in the browser), so a page can open a stored pyramid without parsing XML.
pub async fn get_manifest(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    state.auth.authorize_read(&headers).await?;
    let name = segments(path)?;
    if let Some(id) = name.strip_suffix(".szi") {
        let id = crate::store::PyramidId::parse(id)?;
        return super::szi::stream(&state, id, cache_control(&state, true)).await;
    }
    let json = name.strip_suffix(".json");
    let id = match json {
        Some(id) => crate::store::PyramidId::parse(id)?,
        None => parse_manifest_name(&name)?,
    };
    let bytes = committed_manifest(&state, &id).await?;
    let cache = cache_control(&state, true);
    if json.is_none() {
        return Ok(respond(&state, &headers, bytes, "application/xml", cache));
    }
    let body = serde_json::to_vec(&geometry(&id, &bytes)?)
        .map_err(|e| AppError::Internal(format!("the geometry of {id}: {e}")))?;
    Ok(respond(
        &state,
        &headers,
        Bytes::from(body),
        "application/json",
        cache,
    ))
}

/// The stored `.dzi` of pyramid `id`, which exists once it is committed (`404` before); the id is
/// then remembered as committed.
pub(super) async fn committed_manifest(state: &AppState, id: &PyramidId) -> Result<Bytes> {
    let bytes = state
        .store
        .get(&Key::Dzi(id.clone()))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("pyramid {id} is not committed")))?;
    state.committed.insert(id);
    Ok(bytes)
}

/// The geometry a committed manifest describes. Manifests were checked at the commit, so one
/// that no longer parses is the store's fault.
fn geometry(id: &PyramidId, dzi: &[u8]) -> Result<tiler_wasm::Geometry> {
    tiler_wasm::Geometry::from_dzi(dzi)
        .map_err(|e| AppError::Internal(format!("the stored manifest of {id}: {e}")))
}

/// The query of `GET /pyramids?source=…`: the image's SHA-256 and the tiling settings
/// (as `POST /pyramids` takes them; omitted ones are the defaults).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceQuery {
    source: String,
    format: Option<String>,
    quality: Option<u8>,
    tile_size: Option<u32>,
    overlap: Option<u32>,
}

/// `GET /pyramids?source={sha256}&…settings`: the committed pyramid of the image with that
/// SHA-256, tiled with those settings, as `{ "id", "geometry" }`; `404` if there is none. The id is
/// made here by tiler-wasm's recipe, so a page that has hashed the image (natively, in the browser)
/// asks without loading the tiler. `no-cache`: the answer changes when the pyramid is committed or
/// deleted.
pub async fn find_by_source(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: std::result::Result<Query<SourceQuery>, QueryRejection>,
) -> Result<Response> {
    state.auth.authorize_read(&headers).await?;
    let Query(query) = query.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let digest = SourceDigest::parse_hex(&query.source).ok_or_else(|| {
        AppError::bad_request(
            "invalid_source",
            "source is the image's SHA-256: 64 lowercase hex characters",
        )
    })?;
    let options = Settings {
        format: query.format,
        quality: query.quality,
        tile_size: query.tile_size,
        overlap: query.overlap,
    }
    .options()?;
    let id = PyramidId::parse(&tiler_wasm::id::id_from_source_digest(
        &digest.to_string(),
        &options,
    ))?;
    let bytes = state
        .store
        .get(&Key::Dzi(id.clone()))
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no pyramid of source {digest} with these settings is committed"
            ))
        })?;
    state.committed.insert(&id);
    let body = serde_json::json!({ "id": id.as_str(), "geometry": geometry(&id, &bytes)? });
    Ok(respond(
        &state,
        &headers,
        Bytes::from(body.to_string()),
        "application/json",
        cache_control(&state, false),
    ))
}

/// `GET`/`HEAD /pyramids/{id}_files/{level}/{col}_{row}.{ext}`.
pub async fn get_tile(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Response> {
    state.auth.authorize_read(&headers).await?;
    let (files, level, tile) = segments(path)?;
    let (id, tile) = parse_tile_path(&files, &level, &tile)?;
    let bytes = state
        .store
        .get(&Key::Tile(id.clone(), tile))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no tile {}", tile.relative())))?;
    let cache = cache_control(&state, is_committed(&state, &id).await?);
    Ok(respond(&state, &headers, bytes, tile.format.mime(), cache))
}

fn respond(
    state: &AppState,
    headers: &HeaderMap,
    bytes: Bytes,
    content_type: &'static str,
    cache: &'static str,
) -> Response {
    respond_with(
        state,
        headers,
        bytes,
        HeaderValue::from_static(content_type),
        cache,
    )
}

/// `bytes` with `content_type`, `cache`, a strong ETag, and `304` for a matching `If-None-Match`.
pub(super) fn respond_with(
    state: &AppState,
    headers: &HeaderMap,
    bytes: Bytes,
    content_type: HeaderValue,
    cache: &'static str,
) -> Response {
    let tag = etag(&bytes);
    let status = if none_match(headers, &tag) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut response = if status == StatusCode::NOT_MODIFIED {
        status.into_response()
    } else {
        (status, bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if state.auth.reads_need_token() {
        h.insert(header::VARY, HeaderValue::from_static("Authorization"));
    }
    if let Ok(value) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, value);
    }
    response
}
