//! The wasm-bindgen bindings: conversions between JavaScript values and the core API, nothing else.
//!
//! Every failure crosses as a thrown plain object `{ code, message }` ([`to_js_error`]), so a
//! Web Worker can post it on unchanged. Panics are logged to the console with their message.

use crate::name::canonical_format;
use crate::{
    Error, ErrorCode, Geometry, IdHasher, Layout, Limits, Metadata, Options, TileAddr, TileName,
    Tiler,
};
use serde::Serialize;
use wasm_bindgen::prelude::*;

// The TypeScript types of `Metadata`, `Options`, `Limits`, `Exif`, `TileFormat`, `SourceFormat`,
// `TileName` and `ErrorCode` are generated from the Rust types by their `tsify::Tsify` derives (on
// wasm32 only).

/// The code the bindings add to the core's [`ErrorCode`]: a JavaScript value that does not
/// deserialize. (A trap is reported by its caller as the core's `panic`.)
#[derive(Serialize, tsify::Tsify)]
#[serde(rename_all = "snake_case")]
pub enum BindingErrorCode {
    /// A JavaScript argument of the wrong shape.
    InvalidArgument,
}

/// Every `code` a [`TilerError`] can carry.
#[derive(Serialize, tsify::Tsify)]
#[serde(untagged)]
pub enum TilerErrorCode {
    /// From the tiler core.
    Core(ErrorCode),
    /// From the bindings.
    Binding(BindingErrorCode),
}

/// What every function here throws.
#[derive(Serialize, tsify::Tsify)]
pub struct TilerError {
    /// Stable, for programs.
    pub code: TilerErrorCode,
    /// For people.
    pub message: String,
}

/// Installs the panic hook so a panic's message reaches the console, not just `unreachable`.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The one place errors become JavaScript values: `{ code, message }`.
fn to_js_error(code: TilerErrorCode, message: String) -> JsValue {
    let error = TilerError { code, message };
    serde_wasm_bindgen::to_value(&error).unwrap_or_else(|_| JsValue::from_str(&error.message))
}

fn core_error(e: Error) -> JsValue {
    to_js_error(TilerErrorCode::Core(e.kind()), e.to_string())
}

fn argument_error(e: serde_wasm_bindgen::Error) -> JsValue {
    to_js_error(
        TilerErrorCode::Binding(BindingErrorCode::InvalidArgument),
        e.to_string(),
    )
}

/// Serializes as JSON would: plain objects, `null` for `None`.
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(argument_error)
}

/// `undefined`/`null` mean the default; anything else must deserialize.
fn from_js_or_default<T: Default + serde::de::DeserializeOwned>(
    value: JsValue,
) -> Result<T, JsValue> {
    if value.is_undefined() || value.is_null() {
        Ok(T::default())
    } else {
        serde_wasm_bindgen::from_value(value).map_err(argument_error)
    }
}

/// Reads an image's header and EXIF without decoding its pixels.
#[wasm_bindgen(unchecked_return_type = "Metadata")]
pub fn probe(
    bytes: &[u8],
    #[wasm_bindgen(unchecked_param_type = "Limits | undefined")] limits: JsValue,
) -> Result<JsValue, JsValue> {
    let limits: Limits = from_js_or_default(limits)?;
    let metadata = crate::probe(bytes, &limits).map_err(core_error)?;
    to_js(&metadata)
}

/// Whether tile-store can tile `bytes` (the native build decodes its format), so that an image
/// too large for the browser is offered to it only when it can: not an AVIF, nor an unknown file.
#[wasm_bindgen(js_name = serverCanTile)]
pub fn server_can_tile(bytes: &[u8]) -> bool {
    crate::SourceFormat::sniff(bytes).is_some_and(crate::SourceFormat::decoded_natively)
}

/// For a large JPEG, a small upright JPEG of it decoded at 1/2–1/8 scale (longer side at least
/// `minSide`), much quicker than `Tiler.open`, to show until the tiles arrive; `undefined` for
/// other images. It never feeds the pyramid.
#[wasm_bindgen(js_name = previewJpeg)]
pub fn preview_jpeg(
    bytes: &[u8],
    min_side: u32,
    #[wasm_bindgen(unchecked_param_type = "Limits | undefined")] limits: JsValue,
) -> Result<Option<Vec<u8>>, JsValue> {
    let limits: Limits = from_js_or_default(limits)?;
    crate::preview_jpeg(bytes, min_side, &limits).map_err(core_error)
}

/// The geometry a `.dzi` manifest describes (as vips, tile-store or other tools write it); throws
/// `dzi` for a document that is not one or describes no valid pyramid.
#[wasm_bindgen(js_name = parseDzi, unchecked_return_type = "Geometry")]
pub fn parse_dzi(xml: &str) -> Result<JsValue, JsValue> {
    to_js(&Geometry::from_dzi(xml.as_bytes()).map_err(core_error)?)
}

/// The tile a name inside `{id}_files/` (`level/col_row.ext`) stands for; `undefined` for any
/// other name.
#[wasm_bindgen(js_name = parseTileName, unchecked_return_type = "TileName | undefined")]
pub fn parse_tile_name(name: &str) -> Result<JsValue, JsValue> {
    match TileName::parse_relative(name) {
        Some(tile) => to_js(&tile),
        None => Ok(JsValue::UNDEFINED),
    }
}

/// An opened image whose Deep Zoom tiles are made on demand.
#[wasm_bindgen(js_name = Tiler)]
pub struct WasmTiler(Tiler);

#[wasm_bindgen(js_class = Tiler)]
impl WasmTiler {
    /// Decodes `bytes` (JPEG, PNG, WebP or TIFF), applies EXIF orientation and converts to sRGB;
    /// an AVIF (which `probe` reads) is refused here: its pixels come through `fromPixels`.
    pub fn open(
        bytes: &[u8],
        #[wasm_bindgen(unchecked_param_type = "Options | undefined")] options: JsValue,
    ) -> Result<WasmTiler, JsValue> {
        let options: Options = from_js_or_default(options)?;
        Tiler::open(bytes, &options)
            .map(WasmTiler)
            .map_err(core_error)
    }

    /// Tiles upright sRGB RGBA `pixels` (a canvas's `getImageData`) that the browser decoded from
    /// the image `metadata` describes (`probe` of its source, an AVIF): checked against its size
    /// and `options.limits`; the alpha channel is kept only if `metadata.hasAlpha`.
    #[wasm_bindgen(js_name = fromPixels)]
    pub fn from_pixels(
        #[wasm_bindgen(unchecked_param_type = "Metadata")] metadata: JsValue,
        pixels: Vec<u8>,
        #[wasm_bindgen(unchecked_param_type = "Options | undefined")] options: JsValue,
    ) -> Result<WasmTiler, JsValue> {
        let metadata: Metadata =
            serde_wasm_bindgen::from_value(metadata).map_err(argument_error)?;
        let options: Options = from_js_or_default(options)?;
        Tiler::from_pixels(metadata, pixels, &options)
            .map(WasmTiler)
            .map_err(core_error)
    }

    /// The image's metadata.
    #[wasm_bindgen(unchecked_return_type = "Metadata")]
    pub fn metadata(&self) -> Result<JsValue, JsValue> {
        to_js(self.0.metadata())
    }

    /// The pyramid's geometry.
    #[wasm_bindgen(unchecked_return_type = "Geometry")]
    pub fn geometry(&self) -> Result<JsValue, JsValue> {
        to_js(&Geometry::new(self.0.layout(), self.0.format()))
    }

    /// The name of tile `level`, `col`, `row` inside `{id}_files/`: `level/col_row.ext`, as the
    /// store lists it.
    #[wasm_bindgen(js_name = tileName)]
    pub fn tile_name(&self, level: u32, col: u32, row: u32) -> String {
        TileName::new(TileAddr { level, col, row }, self.0.format()).relative()
    }

    /// The `.dzi` manifest, byte for byte as `vips dzsave` writes it.
    #[wasm_bindgen(js_name = dziXml)]
    pub fn dzi_xml(&self) -> String {
        self.0.dzi().to_xml()
    }

    /// The tile format: `"jpeg"`, `"png"` or `"webp"`.
    #[wasm_bindgen(getter, unchecked_return_type = "TileFormat")]
    pub fn format(&self) -> String {
        self.0.format().extension().to_owned()
    }

    /// The full-resolution level; level 0 is 1×1.
    #[wasm_bindgen(getter, js_name = maxLevel)]
    pub fn max_level(&self) -> u32 {
        self.0.layout().max_level()
    }

    /// `[columns, rows]` of tiles at `level`, or `undefined` past the top level.
    #[wasm_bindgen(unchecked_return_type = "[number, number] | undefined")]
    pub fn grid(&self, level: u32) -> Option<Vec<u32>> {
        self.0.layout().grid(level).map(|(c, r)| vec![c, r])
    }

    /// The encoded tile at `level`, `col`, `row` (levels are made lazily and cached).
    pub fn tile(&mut self, level: u32, col: u32, row: u32) -> Result<Vec<u8>, JsValue> {
        self.0.tile(level, col, row).map_err(core_error)
    }

    /// Bytes per pixel of the levels: 3 (RGB) or 4 (RGBA).
    #[wasm_bindgen(getter)]
    pub fn channels(&self) -> u32 {
        self.0.channels() as u32
    }

    /// `[y0, y1]`: the pixel rows of `level` that tile rows `row0..row1` cover, overlap included.
    #[wasm_bindgen(js_name = bandRows, unchecked_return_type = "[number, number]")]
    pub fn band_rows(&self, level: u32, row0: u32, row1: u32) -> Result<Vec<u32>, JsValue> {
        let (y0, y1) = self.0.band_rows(level, row0, row1).map_err(core_error)?;
        Ok(vec![y0, y1])
    }

    /// Copies pixel rows `y0..y1` of `level` (built if needed) into `out`, which must hold
    /// exactly those rows: one copy out of this instance's memory, into a `SharedArrayBuffer`
    /// or an `ArrayBuffer` another worker gets (`TileBand` there).
    #[wasm_bindgen(js_name = copyRows)]
    pub fn copy_rows(
        &mut self,
        level: u32,
        y0: u32,
        y1: u32,
        out: &js_sys::Uint8Array,
    ) -> Result<(), JsValue> {
        let rows = self.0.level_rows(level, y0, y1).map_err(core_error)?;
        if rows.len() != out.length() as usize {
            return Err(to_js_error(
                TilerErrorCode::Binding(BindingErrorCode::InvalidArgument),
                format!(
                    "rows {y0}..{y1} of level {level} are {} bytes, the array holds {}",
                    rows.len(),
                    out.length()
                ),
            ));
        }
        out.copy_from(rows);
        Ok(())
    }
}

/// Whole tile rows of one level, copied from another worker's `Tiler` (`bandRows`,
/// `copyRows`): encodes those tiles with the bytes that `Tiler.tile` makes.
#[wasm_bindgen(js_name = TileBand)]
pub struct WasmTileBand(crate::TileBand);

#[wasm_bindgen(js_class = TileBand)]
impl WasmTileBand {
    /// Rows `firstRow..` of `level` of a `width`×`height` image tiled with `options`, packed with
    /// `channels` bytes per pixel; `pixels` is copied into this instance.
    #[wasm_bindgen(constructor)]
    pub fn new(
        width: u32,
        height: u32,
        level: u32,
        #[wasm_bindgen(js_name = firstRow)] first_row: u32,
        channels: u32,
        pixels: &[u8],
        #[wasm_bindgen(unchecked_param_type = "Options | undefined")] options: JsValue,
    ) -> Result<WasmTileBand, JsValue> {
        let options: Options = from_js_or_default(options)?;
        crate::TileBand::new(
            width,
            height,
            level,
            first_row,
            channels as usize,
            pixels.to_vec(),
            &options,
        )
        .map(WasmTileBand)
        .map_err(core_error)
    }

    /// The encoded tile at `col`, `row` of the band's level; throws unless its pixels are in the band.
    pub fn tile(&self, col: u32, row: u32) -> Result<Vec<u8>, JsValue> {
        self.0.tile(col, row).map_err(core_error)
    }
}

/// The pyramid id of a source fed in chunks as it downloads.
#[wasm_bindgen(js_name = IdHasher)]
#[derive(Default)]
pub struct WasmIdHasher(IdHasher);

#[wasm_bindgen(js_class = IdHasher)]
impl WasmIdHasher {
    /// A hasher with nothing fed yet.
    #[wasm_bindgen(constructor)]
    pub fn new() -> WasmIdHasher {
        WasmIdHasher::default()
    }

    /// Feeds the next chunk of source bytes.
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    /// The pyramid id for the bytes fed so far, tiled with `options`; the hasher stays usable.
    pub fn finish(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Options | undefined")] options: JsValue,
    ) -> Result<String, JsValue> {
        let options: Options = from_js_or_default(options)?;
        Ok(self.0.clone().finish(&options))
    }
}

/// The pyramid id of a source whose SHA-256 (32 bytes) the caller computed, e.g. with the
/// browser's native `crypto.subtle.digest`, tiled with `options`: the same id as [`IdHasher`]'s.
#[wasm_bindgen(js_name = pyramidIdFromSha256)]
pub fn pyramid_id_from_sha256(
    sha256: &[u8],
    #[wasm_bindgen(unchecked_param_type = "Options | undefined")] options: JsValue,
) -> Result<String, JsValue> {
    if sha256.len() != 32 {
        return Err(to_js_error(
            TilerErrorCode::Binding(BindingErrorCode::InvalidArgument),
            format!("a SHA-256 digest is 32 bytes, not {}", sha256.len()),
        ));
    }
    let options: Options = from_js_or_default(options)?;
    Ok(crate::id::id_from_source_digest(
        &hex::encode(sha256),
        &options,
    ))
}

/// Tiles framed into one batch upload body (`POST /pyramids/{id}/tiles`), in the format
/// `tiler_wasm::batch` defines, the one tile-store parses.
#[wasm_bindgen(js_name = BatchEncoder)]
#[derive(Default)]
pub struct WasmBatchEncoder {
    body: Vec<u8>,
    count: u32,
}

#[wasm_bindgen(js_class = BatchEncoder)]
impl WasmBatchEncoder {
    /// An empty batch.
    #[wasm_bindgen(constructor)]
    pub fn new() -> WasmBatchEncoder {
        WasmBatchEncoder::default()
    }

    /// The `Content-Type` of a batch body.
    #[wasm_bindgen(getter, js_name = contentType)]
    pub fn content_type(&self) -> String {
        crate::batch::CONTENT_TYPE.to_owned()
    }

    /// Appends one tile; `format` is its extension, exactly `jpeg`, `png` or `webp`.
    pub fn push(
        &mut self,
        level: u32,
        col: u32,
        row: u32,
        #[wasm_bindgen(unchecked_param_type = "TileFormat")] format: &str,
        bytes: &[u8],
    ) -> Result<(), JsValue> {
        let format = canonical_format(format).ok_or_else(|| {
            to_js_error(
                TilerErrorCode::Binding(BindingErrorCode::InvalidArgument),
                format!("tile format must be jpeg, png or webp, not {format:?}"),
            )
        })?;
        let frame = crate::batch::Frame {
            addr: TileAddr { level, col, row },
            format,
            bytes,
        };
        crate::batch::encode_frame(&mut self.body, &frame).map_err(core_error)?;
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// Tiles pushed since the last `finish`.
    #[wasm_bindgen(getter)]
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Bytes of the body so far.
    #[wasm_bindgen(getter, js_name = byteLength)]
    pub fn byte_length(&self) -> f64 {
        self.body.len() as f64
    }

    /// The body; the encoder is empty again afterwards.
    pub fn finish(&mut self) -> Vec<u8> {
        self.count = 0;
        std::mem::take(&mut self.body)
    }
}

/// The Deep Zoom geometry of an image, as the tiler lays it out: levels halve (rounding up) down
/// to 1×1, tiles of `tileSize` plus `overlap` on inner edges.
#[wasm_bindgen(js_name = Layout)]
pub struct WasmLayout(Layout);

#[wasm_bindgen(js_class = Layout)]
impl WasmLayout {
    /// The layout of a `width`×`height` image; throws `invalid_option` for sizes it refuses.
    #[wasm_bindgen(constructor)]
    pub fn new(
        width: u32,
        height: u32,
        tile_size: u32,
        overlap: u32,
    ) -> Result<WasmLayout, JsValue> {
        Layout::new(width, height, tile_size, overlap)
            .map(WasmLayout)
            .map_err(core_error)
    }

    /// Every tile of the pyramid as `level/col_row.ext` with tiles in `format`, from level 0 up.
    #[wasm_bindgen(js_name = tileNames)]
    pub fn tile_names(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TileFormat")] format: &str,
    ) -> Result<Vec<String>, JsValue> {
        let format = canonical_format(format).ok_or_else(|| {
            to_js_error(
                TilerErrorCode::Binding(BindingErrorCode::InvalidArgument),
                format!("tile format must be jpeg, png or webp, not {format:?}"),
            )
        })?;
        Ok(self
            .0
            .tiles()
            .map(|a| TileName::new(a, format).relative())
            .collect())
    }
}
