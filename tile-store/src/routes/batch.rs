//! The batch upload wire format (`POST /pyramids/{id}/tiles`,
//! `Content-Type: application/x-tessera-tiles`).
//!
//! The body is a sequence of frames, back to back, up to the end of the body:
//!
//! ```text
//! u32, big-endian   H: length of the header, 1..=1024
//! H bytes           header, UTF-8 JSON: {"level":10,"col":2,"row":0,"ext":"jpeg","len":18734}
//! len bytes         the tile's bytes
//! ```
//!
//! `ext` is `jpeg`, `png` or `webp`; unknown header fields are ignored. A client
//! should aim for about 4 MiB per request. Every frame is checked before any tile
//! is stored, so a malformed batch stores nothing.

use crate::error::{AppError, Result};
use crate::store::{canonical_format, TileName};
use bytes::Bytes;
use serde::Deserialize;

/// The media type of a batch body.
pub const CONTENT_TYPE: &str = "application/x-tessera-tiles";
/// Largest frame header accepted.
pub const MAX_HEADER_BYTES: u32 = 1024;

#[derive(Debug, Deserialize)]
struct FrameHeader {
    level: u32,
    col: u32,
    row: u32,
    ext: String,
    len: u32,
}

/// Splits a batch body into tiles (sharing the body's memory).
pub fn parse(mut body: Bytes, max_tile_bytes: usize) -> Result<Vec<(TileName, Bytes)>> {
    let bad = |message: String| AppError::bad_request("invalid_batch", message);
    let mut tiles = Vec::new();
    while !body.is_empty() {
        let index = tiles.len();
        if body.len() < 4 {
            return Err(bad(format!("frame {index}: truncated header length")));
        }
        let header_len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        if header_len == 0 || header_len > MAX_HEADER_BYTES {
            return Err(bad(format!(
                "frame {index}: header length {header_len} is outside 1..={MAX_HEADER_BYTES}"
            )));
        }
        let header_len = header_len as usize;
        if body.len() < 4 + header_len {
            return Err(bad(format!("frame {index}: truncated header")));
        }
        let header: FrameHeader = serde_json::from_slice(&body[4..4 + header_len])
            .map_err(|e| bad(format!("frame {index}: bad header: {e}")))?;
        let format = canonical_format(&header.ext).ok_or_else(|| {
            AppError::bad_request(
                "invalid_extension",
                format!("frame {index}: extension must be jpeg, png or webp"),
            )
        })?;
        let len = header.len as usize;
        if len > max_tile_bytes {
            return Err(AppError::PayloadTooLarge(format!(
                "frame {index}: tile of {len} bytes is over the {max_tile_bytes}-byte limit"
            )));
        }
        let _ = body.split_to(4 + header_len);
        if body.len() < len {
            return Err(bad(format!(
                "frame {index}: tile needs {len} bytes, {} left",
                body.len()
            )));
        }
        let bytes = body.split_to(len);
        let name = TileName {
            level: header.level,
            col: header.col,
            row: header.row,
            format,
        };
        tiles.push((name, bytes));
    }
    Ok(tiles)
}

/// Encodes tiles in the batch format (for clients and tests).
pub fn encode<'a>(tiles: impl IntoIterator<Item = (TileName, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, bytes) in tiles {
        let header = serde_json::json!({
            "level": name.level,
            "col": name.col,
            "row": name.row,
            "ext": name.format.extension(),
            "len": bytes.len(),
        })
        .to_string();
        out.extend_from_slice(&(header.len() as u32).to_be_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiler_wasm::TileFormat;

    fn name(level: u32, col: u32, row: u32) -> TileName {
        TileName {
            level,
            col,
            row,
            format: TileFormat::Png,
        }
    }

    #[test]
    fn round_trip() {
        let body = encode([(name(0, 0, 0), &b"abc"[..]), (name(3, 1, 2), &b""[..])]);
        let tiles = parse(Bytes::from(body), 10).expect("parses");
        assert_eq!(tiles.len(), 2);
        assert_eq!(tiles[0], (name(0, 0, 0), Bytes::from_static(b"abc")));
        assert_eq!(tiles[1], (name(3, 1, 2), Bytes::new()));
        assert!(parse(Bytes::new(), 10).expect("empty batch").is_empty());
    }

    #[test]
    fn refuses_malformed_frames() {
        let good = encode([(name(0, 0, 0), &b"abcdef"[..])]);
        for cut in 1..good.len() {
            let err = parse(Bytes::copy_from_slice(&good[..cut]), 100).expect_err("truncated");
            assert_eq!(err.code(), "invalid_batch", "cut at {cut}");
        }
        let huge_header = [0xFF, 0xFF, 0xFF, 0xFF, b'{'];
        assert!(parse(Bytes::copy_from_slice(&huge_header), 100).is_err());
        let too_big = parse(Bytes::from(good), 5).expect_err("over limit");
        assert_eq!(too_big.code(), "too_large");
        let gif = br#"{"level":0,"col":0,"row":0,"ext":"gif","len":0}"#;
        let mut body = (gif.len() as u32).to_be_bytes().to_vec();
        body.extend_from_slice(gif);
        assert_eq!(
            parse(Bytes::from(body), 5).expect_err("gif").code(),
            "invalid_extension"
        );
    }
}
