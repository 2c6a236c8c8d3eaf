//! `GET /pyramids/{id}.szi`: a committed pyramid as one file ([`crate::szi`]), deepest
//! level first, streamed as it is read from the store; only the archive's central
//! directory is held (about 90 bytes a tile, bounded by `--max-tiles-per-pyramid`).

use crate::error::{AppError, Result, RETRY_AFTER_BUSY_QUEUE_SECS};
use crate::store::{Key, PyramidId, TileName};
use crate::szi::{manifest_entry, tile_entry, SziStream};
use crate::AppState;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// Archives streamed at once: each holds a central directory and a read-ahead of tiles.
const ARCHIVES_AT_ONCE: usize = 4;
/// Tiles read from the store ahead of the one being written.
const READ_AHEAD: usize = 16;
/// Bytes buffered between the ZIP writer and the response.
const PIPE_BYTES: usize = 256 << 10;

static ARCHIVES: LazyLock<std::sync::Arc<Semaphore>> =
    LazyLock::new(|| std::sync::Arc::new(Semaphore::new(ARCHIVES_AT_ONCE)));

/// The archive's entries in the order vips writes them: levels from the deepest, then
/// (where vips goes by its threads' finishing order) row by row within a level.
fn ordered(mut tiles: Vec<TileName>) -> Vec<TileName> {
    tiles.sort_by_key(|t| (std::cmp::Reverse(t.level), t.row, t.col));
    tiles
}

/// Streams committed pyramid `id` as an `.szi`.
pub async fn stream(state: &AppState, id: PyramidId, cache: &'static str) -> Result<Response> {
    let permit = std::sync::Arc::clone(&ARCHIVES)
        .try_acquire_owned()
        .map_err(|_| AppError::Busy {
            message: format!("{ARCHIVES_AT_ONCE} archives are being streamed; retry later"),
            retry_after_secs: RETRY_AFTER_BUSY_QUEUE_SECS,
        })?;
    let dzi = super::read::committed_manifest(state, &id).await?;
    let tiles = ordered(state.store.list_tiles(&id).await?);
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let store = std::sync::Arc::clone(&state.store);
    let disposition = format!("attachment; filename=\"{id}.szi\"");
    tokio::spawn(async move {
        let _permit = permit;
        let name = id.to_string();
        let mut archive = SziStream::new(writer);
        let mut reads = futures::stream::iter(tiles)
            .map(|tile| {
                let (store, key) = (std::sync::Arc::clone(&store), Key::Tile(id.clone(), tile));
                async move { (tile, store.get(&key).await) }
            })
            .buffered(READ_AHEAD);
        while let Some((tile, read)) = reads.next().await {
            let bytes = match read {
                Ok(Some(bytes)) => bytes,
                // Deleted meanwhile, or the store failed: the archive is cut short (the
                // client sees a body that ends early), never completed wrongly.
                other => {
                    tracing::warn!(%id, tile = %tile.relative(), outcome = ?other.map(|b| b.map(|b| b.len())), "szi stopped");
                    return;
                }
            };
            if archive
                .add(tile_entry(&name, &tile.relative()), &bytes)
                .await
                .is_err()
            {
                return; // the client went
            }
        }
        if archive.add(manifest_entry(&name), &dzi).await.is_ok() {
            let _ = archive.finish().await;
        }
    });
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiler_wasm::TileFormat;

    #[test]
    fn entries_go_deepest_level_first_then_row_by_row() {
        let t = |level, col, row| TileName {
            level,
            col,
            row,
            format: TileFormat::Jpeg,
        };
        let names: Vec<String> = ordered(vec![
            t(0, 0, 0),
            t(10, 1, 0),
            t(10, 0, 1),
            t(10, 0, 0),
            t(9, 0, 0),
        ])
        .iter()
        .map(TileName::relative)
        .collect();
        assert_eq!(
            names,
            [
                "10/0_0.jpeg",
                "10/1_0.jpeg",
                "10/0_1.jpeg",
                "9/0_0.jpeg",
                "0/0_0.jpeg"
            ]
        );
    }
}
