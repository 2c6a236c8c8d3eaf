//! Tessera's tiler: Deep Zoom pyramids identical to what `vips dzsave` writes.
//!
//! The core is plain Rust with no browser or async dependencies; it runs natively
//! (tests, the `tile-store` service and CLI) and as WebAssembly in a Web Worker,
//! where the `wasm` module (compiled for wasm32 only) holds the bindings and nothing else.
//!
//! ```no_run
//! # fn main() -> tiler_wasm::Result<()> {
//! let bytes = std::fs::read("photo.jpg").expect("readable");
//! let mut tiler = tiler_wasm::Tiler::open(&bytes, &tiler_wasm::Options::default())?;
//! println!("{}×{}", tiler.metadata().width, tiler.metadata().height);
//! println!("{}", tiler.dzi().to_xml());
//! let top = tiler.layout().max_level();
//! let jpeg: Vec<u8> = tiler.tile(top, 0, 0)?;
//! # let _ = jpeg; Ok(()) }
//! ```

// jxl-oxide grows the browser's module by about 1.4 MiB (500 KiB gzip): the browser's build leaves
// JPEG XL to the server (`Error::ServerOnly`).
#[cfg(all(feature = "jxl", target_arch = "wasm32"))]
compile_error!(
    "the wasm build leaves JPEG XL to the server: build tiler-wasm with --no-default-features"
);

mod avif;
pub mod band;
pub mod batch;
pub mod bitmap;
pub mod color;
pub mod decode;
pub mod dzi;
pub mod encode;
pub mod error;
pub mod id;
#[cfg(feature = "jxl")]
mod jxl;
pub mod layout;
mod levelwise;
pub mod meta;
pub mod name;
pub mod orient;
pub mod png_stream;
pub mod preview;
pub mod pyramid;
pub mod stream;
pub mod tiff_stream;
mod tiler;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use band::TileBand;
pub use bitmap::Bitmap;
pub use decode::probe;
pub use dzi::{Dzi, Geometry, TileFormat};
pub use error::{Error, ErrorCode, Result};
pub use id::{is_valid_id, pyramid_id, IdHasher};
pub use layout::{Layout, Rect, TileAddr};
pub use meta::{Exif, Metadata, SourceFormat};
pub use name::TileName;
pub use png_stream::PngSource;
pub use preview::preview_jpeg;
pub use stream::{StreamTiler, Streamed, Walk};
pub use tiff_stream::TiffSource;
pub use tiler::Tiler;

use serde::{Deserialize, Serialize};

/// Default JPEG quality, as `vips dzsave`.
pub const DEFAULT_QUALITY: u8 = 75;

/// Limits applied to every image before and while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Largest width × height accepted, checked against the declared size before decoding.
    pub max_pixels: u64,
    /// Largest width or height accepted.
    pub max_dimension: u32,
    /// Largest allocation a decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 600_000_000,
            max_dimension: 1 << 20,
            max_alloc: 3 << 30,
        }
    }
}

/// How to tile an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
// `null` for `None` in TypeScript, as the bindings serialize (and accept) it.
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default)]
pub struct Options {
    /// Tile format; `None` picks PNG for images with alpha and JPEG otherwise.
    pub format: Option<TileFormat>,
    /// JPEG / WebP quality, 1..=100.
    pub quality: u8,
    /// Tile size without overlap.
    pub tile_size: u32,
    /// Overlap on each side of a tile.
    pub overlap: u32,
    /// Decoding limits.
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: None,
            quality: DEFAULT_QUALITY,
            tile_size: layout::DEFAULT_TILE_SIZE,
            overlap: layout::DEFAULT_OVERLAP,
            limits: Limits::default(),
        }
    }
}

impl Options {
    /// The tile encoding these options ask for, checked, for an image with or without alpha:
    /// the format as asked, or PNG with alpha and JPEG without.
    pub(crate) fn encoding(&self, has_alpha: bool) -> Result<levelwise::Encoding> {
        if !(1..=100).contains(&self.quality) {
            return Err(Error::InvalidOption(format!(
                "quality {} is outside 1..=100",
                self.quality
            )));
        }
        let format = self.format.unwrap_or(if has_alpha {
            TileFormat::Png
        } else {
            TileFormat::Jpeg
        });
        Ok(levelwise::Encoding {
            format,
            quality: self.quality,
        })
    }
}
