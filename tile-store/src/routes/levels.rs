//! `GET /pyramids/{id}/levels?from={a}&to={b}`: every tile of levels `a..=b` of a committed
//! pyramid in one response, so that a viewer opening a stored pyramid gets its whole-image view
//! in one round trip instead of dozens of requests queued six at a time behind HTTP/1.1's
//! per-host limit.
//!
//! The body is `multipart/form-data` (RFC 7578), one part per tile, named by its path under
//! `{id}_files/` (`11/3_2.jpeg`, as [`TileName::relative`] writes it) and typed with the tile's
//! MIME type. That is a format the browser parses itself (`Response.formData()` hands out each
//! tile as a `File`), so no parser of ours ships to the page. Its parts are written here rather
//! than with a crate: the layout is five lines of RFC 7578, and the crates that write multipart
//! bodies are request builders for HTTP clients.

use super::read::{cache_control, committed_manifest, respond_with};
use super::segments;
use crate::error::{AppError, Result, RETRY_AFTER_BUSY_QUEUE_SECS};
use crate::store::{Key, PyramidId, Store, TileName};
use crate::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use memchr::memmem;
use std::sync::{Arc, LazyLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most tiles one response carries: the whole-image view of a 2560×1440 viewer of a 96 MP
/// image and the coarser levels beneath it need about 130.
pub const MAX_TILES: u64 = 192;
/// Most tile bytes one response carries (a whole-image view's are a few hundred KB; tiles may be
/// up to `--max-tile-bytes` each).
pub const MAX_BYTES: usize = 16 << 20;
/// Responses assembled at once: each holds its tiles, then its body (at most twice [`MAX_BYTES`]).
pub const RESPONSES_AT_ONCE: usize = 8;
/// Tiles read from the store at once for one response.
const READS_AT_ONCE: usize = 16;

static RESPONSES: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(RESPONSES_AT_ONCE)));

/// A turn to assemble a response, or `503 busy` at once: a viewer then loads the tiles one by one.
fn turn(permits: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit> {
    Arc::clone(permits)
        .try_acquire_owned()
        .map_err(|_| AppError::Busy {
            message: format!(
                "{RESPONSES_AT_ONCE} responses of whole levels are being assembled; retry later"
            ),
            retry_after_secs: RETRY_AFTER_BUSY_QUEUE_SECS,
        })
}

/// The query of `GET /pyramids/{id}/levels`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelsQuery {
    from: u32,
    to: u32,
}

/// `GET /pyramids/{id}/levels?from=&to=`: the tiles of levels `from..=to` of a committed
/// pyramid, as `multipart/form-data`; `404` when the pyramid is not committed, `400
/// invalid_levels` for levels it does not have or more than [`MAX_TILES`] tiles or [`MAX_BYTES`]
/// bytes, `503 busy` while [`RESPONSES_AT_ONCE`] others are being assembled.
pub async fn get_levels(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
    query: std::result::Result<Query<LevelsQuery>, QueryRejection>,
) -> Result<Response> {
    state.auth.authorize_read(&headers).await?;
    let id = PyramidId::parse(&segments(path)?)?;
    let Query(LevelsQuery { from, to }) =
        query.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let _turn = turn(&RESPONSES)?;
    let dzi = committed_manifest(&state, &id).await?;
    let manifest = tiler_wasm::dzi::Dzi::parse(&dzi)
        .map_err(|e| AppError::Internal(format!("the stored manifest of {id}: {e}")))?;
    let layout = manifest
        .layout()
        .map_err(|e| AppError::Internal(format!("the stored manifest of {id}: {e}")))?;
    let names = tiles_of_levels(&layout, manifest.format, from, to)?;
    let tiles = read_tiles(&state.store, &id, &names, MAX_BYTES).await?;
    let (boundary, body) = form_data(&id, names.iter().zip(&tiles));
    let content_type = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
        .map_err(|e| AppError::Internal(format!("a multipart boundary: {e}")))?;
    Ok(respond_with(
        &state,
        &headers,
        Bytes::from(body),
        content_type,
        cache_control(&state, true),
    ))
}

/// The bytes of `names` of committed pyramid `id`, in order; `400 invalid_levels` past `max_bytes`.
async fn read_tiles(
    store: &Arc<dyn Store>,
    id: &PyramidId,
    names: &[TileName],
    max_bytes: usize,
) -> Result<Vec<Bytes>> {
    let (store, id) = (Arc::clone(store), id.clone());
    let mut reads = futures::stream::iter(names.iter().copied().map(move |name| {
        let (store, key) = (Arc::clone(&store), Key::Tile(id.clone(), name));
        async move {
            let bytes = store.get(&key).await?;
            // Every tile of a committed pyramid was checked at its commit.
            bytes.ok_or_else(|| {
                AppError::Internal(format!("committed pyramid has no {}", key.path()))
            })
        }
    }))
    .buffered(READS_AT_ONCE);
    let mut tiles = Vec::with_capacity(names.len());
    let mut total = 0usize;
    while let Some(bytes) = reads.next().await {
        let bytes = bytes?;
        total = total
            .checked_add(bytes.len())
            .filter(|&t| t <= max_bytes)
            .ok_or_else(|| {
                AppError::bad_request(
                    "invalid_levels",
                    format!("these levels hold more than {max_bytes} bytes of tiles: ask for fewer levels"),
                )
            })?;
        tiles.push(bytes);
    }
    Ok(tiles)
}

/// The tiles of levels `from..=to` of `layout`, level by level, row by row; bounded by [`MAX_TILES`].
fn tiles_of_levels(
    layout: &tiler_wasm::Layout,
    format: tiler_wasm::TileFormat,
    from: u32,
    to: u32,
) -> Result<Vec<TileName>> {
    let invalid = |message: String| AppError::bad_request("invalid_levels", message);
    if from > to || to > layout.max_level() {
        return Err(invalid(format!(
            "levels {from} to {to}: this pyramid has levels 0 to {}, and from is at most to",
            layout.max_level()
        )));
    }
    let mut count = 0u64;
    let mut grids = Vec::new();
    for level in from..=to {
        let (cols, rows) = layout
            .grid(level)
            .ok_or_else(|| invalid(format!("no level {level}")))?;
        count = count
            .checked_add(u64::from(cols) * u64::from(rows))
            .filter(|&n| n <= MAX_TILES)
            .ok_or_else(|| {
                invalid(format!(
                    "levels {from} to {to} hold more than {MAX_TILES} tiles: ask for fewer levels"
                ))
            })?;
        grids.push((level, cols, rows));
    }
    let mut names = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for (level, cols, rows) in grids {
        for row in 0..rows {
            for col in 0..cols {
                names.push(TileName {
                    level,
                    col,
                    row,
                    format,
                });
            }
        }
    }
    Ok(names)
}

/// `tiles` as a `multipart/form-data` body, and its boundary: one that occurs in no tile
/// (RFC 2046 §5.1.1), derived from the pyramid's id so that the same levels give the same bytes
/// (and ETag) every time.
fn form_data<'a>(
    id: &PyramidId,
    tiles: impl Iterator<Item = (&'a TileName, &'a Bytes)> + Clone,
) -> (String, Vec<u8>) {
    let boundary = (0u32..)
        .map(|n| format!("tessera-{}-{n}", &id.as_str()[..id.as_str().len().min(32)]))
        .find(|b| {
            let finder = memmem::Finder::new(b.as_bytes());
            tiles.clone().all(|(_, bytes)| finder.find(bytes).is_none())
        })
        .unwrap_or_default();
    let mut body =
        Vec::with_capacity(tiles.clone().map(|(_, b)| b.len() + 160).sum::<usize>() + 64);
    for (name, bytes) in tiles {
        let path = name.relative();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{path}\"; filename=\"{path}\"\r\nContent-Type: {}\r\n\r\n",
                name.format.mime()
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> tiler_wasm::Layout {
        // 5472×3648 in 254-pixel tiles: levels 0..=13; level 11 is 1368×912, 6×4 tiles.
        tiler_wasm::Layout::new(5472, 3648, 254, 1).expect("a layout")
    }

    #[test]
    fn whole_levels_are_listed_level_by_level_and_row_by_row() {
        let names =
            tiles_of_levels(&layout(), tiler_wasm::TileFormat::Jpeg, 8, 11).expect("levels it has");
        let paths: Vec<String> = names.iter().map(TileName::relative).collect();
        // Level 8 is 171×114 (1 tile), 9 is 342×228 (2×1), 10 is 684×456 (3×2), 11 is 6×4.
        assert_eq!(paths.len(), 1 + 2 + 6 + 24);
        assert_eq!(
            &paths[..4],
            ["8/0_0.jpeg", "9/0_0.jpeg", "9/1_0.jpeg", "10/0_0.jpeg"]
        );
        assert_eq!(paths[9], "11/0_0.jpeg");
        assert_eq!(paths[15], "11/0_1.jpeg");
        assert_eq!(paths.last().expect("tiles"), "11/5_3.jpeg");
    }

    #[test]
    fn levels_it_does_not_have_or_too_many_tiles_are_refused() {
        for (from, to) in [(12, 11), (0, 14), (14, 14), (0, 13), (13, 13)] {
            let e = tiles_of_levels(&layout(), tiler_wasm::TileFormat::Jpeg, from, to)
                .expect_err("refused");
            assert!(
                matches!(
                    e,
                    AppError::BadRequest {
                        code: "invalid_levels",
                        ..
                    }
                ),
                "{from}..={to}: {e:?}"
            );
        }
        // Level 13 alone is 22×15 = 330 tiles; level 12 is 11×8 = 88, and with 11 and 10 it is 118.
        assert_eq!(
            tiles_of_levels(&layout(), tiler_wasm::TileFormat::Png, 10, 12)
                .expect("levels it has")
                .len(),
            118
        );
    }

    #[tokio::test]
    async fn tiles_are_read_in_order_within_the_byte_budget() {
        let dir = tempfile::tempdir().expect("a folder");
        let store: Arc<dyn Store> =
            Arc::new(crate::store::disk::DiskStore::open(dir.path()).expect("a store"));
        let id = PyramidId::parse(&"cd".repeat(32)).expect("an id");
        let names: Vec<TileName> = (0..3)
            .map(|col| TileName {
                level: 1,
                col,
                row: 0,
                format: tiler_wasm::TileFormat::Png,
            })
            .collect();
        for (i, name) in names.iter().enumerate() {
            let bytes = Bytes::from(vec![b'a' + i as u8; 10 + i]);
            store
                .put(&Key::Tile(id.clone(), *name), bytes)
                .await
                .expect("put");
        }
        let tiles = read_tiles(&store, &id, &names, 33)
            .await
            .expect("33 bytes fit");
        let lens: Vec<(usize, u8)> = tiles.iter().map(|t| (t.len(), t[0])).collect();
        assert_eq!(lens, [(10, b'a'), (11, b'b'), (12, b'c')]);
        let e = read_tiles(&store, &id, &names, 32)
            .await
            .expect_err("33 bytes > 32");
        assert!(
            matches!(
                e,
                AppError::BadRequest {
                    code: "invalid_levels",
                    ..
                }
            ),
            "{e:?}"
        );
        // A tile missing from a committed pyramid is the store's fault, not the client's.
        let missing = [TileName { col: 3, ..names[0] }];
        let e = read_tiles(&store, &id, &missing, 32)
            .await
            .expect_err("missing");
        assert!(matches!(e, AppError::Internal(_)), "{e:?}");
    }

    #[test]
    fn past_the_responses_at_once_the_answer_is_busy() {
        let permits = Arc::new(Semaphore::new(1));
        let first = turn(&permits).expect("a turn");
        let e = turn(&permits).expect_err("no turn left");
        assert!(matches!(e, AppError::Busy { .. }), "{e:?}");
        drop(first);
        let _again = turn(&permits).expect("a turn again");
    }

    #[test]
    fn the_boundary_is_one_no_tile_contains() {
        let id = PyramidId::parse(&"ab".repeat(32)).expect("an id");
        let name = TileName {
            level: 0,
            col: 0,
            row: 0,
            format: tiler_wasm::TileFormat::Png,
        };
        let first = format!("tessera-{}-0", &"ab".repeat(16));
        let tile = Bytes::from(format!("\r\n--{first}\r\nx"));
        let (boundary, body) = form_data(&id, [(&name, &tile)].into_iter());
        assert_eq!(boundary, format!("tessera-{}-1", &"ab".repeat(16)));
        let expected = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"0/0_0.png\"; filename=\"0/0_0.png\"\r\nContent-Type: image/png\r\n\r\n\r\n--{first}\r\nx\r\n--{boundary}--\r\n"
        );
        assert_eq!(String::from_utf8(body).expect("text"), expected);
    }
}
