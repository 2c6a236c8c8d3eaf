//! The tile-upload batch format: many tiles in one request body
//! (`POST /pyramids/{id}/tiles`, `Content-Type: application/x-tessera-tiles`).
//!
//! The body is a sequence of frames, back to back, up to its end:
//!
//! ```text
//! u32, big-endian   H: length of the header, 1..=1024
//! H bytes           header, UTF-8 JSON: {"level":10,"col":2,"row":0,"ext":"jpeg","len":18734}
//! len bytes         the tile's bytes
//! ```
//!
//! `ext` is exactly `jpeg`, `png` or `webp`; unknown header fields are ignored. This module is the
//! one definition: tile-store parses with it, the browser encodes with it (through wasm), and the
//! fuzzer drives it.

use crate::error::{BatchFault, Error, Result};
use crate::{TileAddr, TileFormat};
use serde::Deserialize;

/// The media type of a batch body.
pub const CONTENT_TYPE: &str = "application/x-tessera-tiles";
/// Largest frame header accepted.
pub const MAX_HEADER_BYTES: u32 = 1024;

/// One tile of a batch, borrowing its bytes from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Where the tile lies in the pyramid.
    pub addr: TileAddr,
    /// The tile's format, from the frame's `ext`.
    pub format: TileFormat,
    /// The tile's bytes.
    pub bytes: &'a [u8],
}

#[derive(Deserialize)]
struct Header<'a> {
    level: u32,
    col: u32,
    row: u32,
    #[serde(borrow)]
    ext: &'a str,
    len: u32,
}

fn fault(fault: BatchFault, message: String) -> Error {
    Error::Batch { fault, message }
}

/// Appends `frame` to `out` in the batch format.
pub fn encode_frame(out: &mut Vec<u8>, frame: &Frame<'_>) -> Result<()> {
    let len = u32::try_from(frame.bytes.len()).map_err(|_| {
        fault(
            BatchFault::TooLarge,
            format!("a tile of {} bytes cannot be framed", frame.bytes.len()),
        )
    })?;
    let header = format!(
        r#"{{"level":{},"col":{},"row":{},"ext":"{}","len":{len}}}"#,
        frame.addr.level,
        frame.addr.col,
        frame.addr.row,
        frame.format.extension()
    );
    // Numbers and a fixed extension: the header is always far below MAX_HEADER_BYTES.
    let header_len = u32::try_from(header.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&header_len.to_be_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(frame.bytes);
    Ok(())
}

/// Encodes `frames` as one batch body.
pub fn encode<'a>(frames: impl IntoIterator<Item = Frame<'a>>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for frame in frames {
        encode_frame(&mut out, &frame)?;
    }
    Ok(out)
}

/// Splits a batch body into its tiles. Every frame is checked before anything is returned, so a
/// malformed batch yields no tile; a tile over `max_tile_bytes` is refused from its header alone.
pub fn parse(mut body: &[u8], max_tile_bytes: usize) -> Result<Vec<Frame<'_>>> {
    let malformed = |message: String| fault(BatchFault::Malformed, message);
    let mut frames = Vec::new();
    while !body.is_empty() {
        let index = frames.len();
        let Some((len_bytes, rest)) = body.split_first_chunk::<4>() else {
            return Err(malformed(format!("frame {index}: truncated header length")));
        };
        let header_len = u32::from_be_bytes(*len_bytes);
        if header_len == 0 || header_len > MAX_HEADER_BYTES {
            return Err(malformed(format!(
                "frame {index}: header length {header_len} is outside 1..={MAX_HEADER_BYTES}"
            )));
        }
        let Some((header, rest)) = rest.split_at_checked(header_len as usize) else {
            return Err(malformed(format!("frame {index}: truncated header")));
        };
        let header: Header<'_> = serde_json::from_slice(header)
            .map_err(|e| malformed(format!("frame {index}: bad header: {e}")))?;
        let format = [TileFormat::Jpeg, TileFormat::Png, TileFormat::Webp]
            .into_iter()
            .find(|f| f.extension() == header.ext)
            .ok_or_else(|| {
                fault(
                    BatchFault::Extension,
                    format!("frame {index}: extension must be jpeg, png or webp"),
                )
            })?;
        let len = header.len as usize;
        if len > max_tile_bytes {
            return Err(fault(
                BatchFault::TooLarge,
                format!(
                    "frame {index}: tile of {len} bytes is over the {max_tile_bytes}-byte limit"
                ),
            ));
        }
        let Some((bytes, rest)) = rest.split_at_checked(len) else {
            return Err(malformed(format!(
                "frame {index}: tile needs {len} bytes, {} left",
                rest.len()
            )));
        };
        frames.push(Frame {
            addr: TileAddr {
                level: header.level,
                col: header.col,
                row: header.row,
            },
            format,
            bytes,
        });
        body = rest;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(level: u32, col: u32, row: u32, format: TileFormat, bytes: &[u8]) -> Frame<'_> {
        Frame {
            addr: TileAddr { level, col, row },
            format,
            bytes,
        }
    }

    /// Two frames written out by hand from the format above, not by `encode`.
    fn fixed_vector() -> Vec<u8> {
        let mut v = Vec::new();
        let h1 = br#"{"level":10,"col":2,"row":0,"ext":"jpeg","len":3}"#;
        v.extend_from_slice(&(h1.len() as u32).to_be_bytes());
        v.extend_from_slice(h1);
        v.extend_from_slice(b"abc");
        let h2 = br#"{"level":0,"col":0,"row":0,"ext":"png","len":0}"#;
        v.extend_from_slice(&(h2.len() as u32).to_be_bytes());
        v.extend_from_slice(h2);
        v
    }

    #[test]
    fn encodes_the_fixed_vector() {
        assert_eq!(&fixed_vector()[..4], &[0, 0, 0, 49]);
        let body = encode([
            frame(10, 2, 0, TileFormat::Jpeg, b"abc"),
            frame(0, 0, 0, TileFormat::Png, b""),
        ])
        .expect("encodes");
        assert_eq!(body, fixed_vector());
    }

    #[test]
    fn parses_the_fixed_vector_and_ignores_unknown_fields() {
        let body = fixed_vector();
        let frames = parse(&body, 10).expect("parses");
        assert_eq!(
            frames,
            [
                frame(10, 2, 0, TileFormat::Jpeg, b"abc"),
                frame(0, 0, 0, TileFormat::Png, b"")
            ]
        );
        assert!(parse(&[], 10).expect("empty batch").is_empty());
        let h = br#"{"len":1,"ext":"webp","row":7,"col":6,"level":5,"note":"x"}"#;
        let mut body = (h.len() as u32).to_be_bytes().to_vec();
        body.extend_from_slice(h);
        body.push(9);
        let frames = parse(&body, 10).expect("parses");
        assert_eq!(frames, [frame(5, 6, 7, TileFormat::Webp, &[9])]);
    }

    fn fault_of(result: Result<Vec<Frame<'_>>>) -> BatchFault {
        match result {
            Err(Error::Batch { fault, .. }) => fault,
            other => panic!("expected a batch error, got {other:?}"),
        }
    }

    #[test]
    fn refuses_malformed_frames_whole() {
        let good = fixed_vector();
        for cut in 1..good.len() {
            // Cutting exactly between the frames leaves a whole first frame.
            if cut == 4 + 49 + 3 {
                continue;
            }
            assert_eq!(
                fault_of(parse(&good[..cut], 100)),
                BatchFault::Malformed,
                "cut at {cut}"
            );
        }
        assert_eq!(
            fault_of(parse(&[0xFF, 0xFF, 0xFF, 0xFF, b'{'], 100)),
            BatchFault::Malformed
        );
        assert_eq!(fault_of(parse(&[0, 0, 0, 0], 100)), BatchFault::Malformed);
        assert_eq!(fault_of(parse(&good, 2)), BatchFault::TooLarge);
        for ext in ["gif", "jpg", "JPEG"] {
            let h = format!(r#"{{"level":0,"col":0,"row":0,"ext":"{ext}","len":0}}"#);
            let mut body = (h.len() as u32).to_be_bytes().to_vec();
            body.extend_from_slice(h.as_bytes());
            assert_eq!(fault_of(parse(&body, 5)), BatchFault::Extension, "{ext}");
        }
    }

    #[test]
    fn error_codes_are_the_stores() {
        let code = |fault| {
            Error::Batch {
                fault,
                message: String::new(),
            }
            .code()
        };
        assert_eq!(code(BatchFault::Malformed), "invalid_batch");
        assert_eq!(code(BatchFault::Extension), "invalid_extension");
        assert_eq!(code(BatchFault::TooLarge), "too_large");
    }
}
