//! The batch upload body (`POST /pyramids/{id}/tiles`), in the format `tiler_wasm::batch` defines:
//! its frames as stored tile names, sharing the body's memory.

use crate::error::{AppError, Result};
use crate::store::TileName;
use bytes::Bytes;
use tiler_wasm::batch::{self, Frame};
use tiler_wasm::error::BatchFault;

/// Splits a batch body into tiles (sharing the body's memory); a malformed batch yields none.
pub fn parse(body: Bytes, max_tile_bytes: usize) -> Result<Vec<(TileName, Bytes)>> {
    let frames = batch::parse(&body, max_tile_bytes).map_err(|e| match &e {
        tiler_wasm::Error::Batch {
            fault: BatchFault::TooLarge,
            message,
        } => AppError::PayloadTooLarge(message.clone()),
        _ => AppError::Tiler(e),
    })?;
    Ok(frames
        .into_iter()
        .map(|f| {
            let name = TileName {
                level: f.addr.level,
                col: f.addr.col,
                row: f.addr.row,
                format: f.format,
            };
            (name, body.slice_ref(f.bytes))
        })
        .collect())
}

/// Encodes tiles as a batch body (for clients, tests and benchmarks).
pub fn encode<'a>(tiles: impl IntoIterator<Item = (TileName, &'a [u8])>) -> Vec<u8> {
    let frames = tiles.into_iter().map(|(name, bytes)| Frame {
        addr: tiler_wasm::TileAddr {
            level: name.level,
            col: name.col,
            row: name.row,
        },
        format: name.format,
        bytes,
    });
    // Only a tile of 4 GiB or more cannot be framed, and no tile of a pyramid is that large.
    batch::encode(frames).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiler_wasm::TileFormat;

    #[test]
    fn tiles_share_the_body_and_errors_keep_their_status() {
        let name = TileName {
            level: 3,
            col: 1,
            row: 2,
            format: TileFormat::Png,
        };
        let body = Bytes::from(encode([(name, &b"abc"[..])]));
        let tiles = parse(body.clone(), 10).expect("parses");
        assert_eq!(tiles, [(name, Bytes::from_static(b"abc"))]);
        assert_eq!(tiles[0].1.as_ptr(), body[body.len() - 3..].as_ptr());
        let too_big = parse(body.clone(), 2).expect_err("over limit");
        assert_eq!(
            (too_big.status().as_u16(), too_big.code()),
            (413, "too_large")
        );
        let cut = parse(body.slice(..body.len() - 1), 10).expect_err("truncated");
        assert_eq!((cut.status().as_u16(), cut.code()), (400, "invalid_batch"));
    }
}
