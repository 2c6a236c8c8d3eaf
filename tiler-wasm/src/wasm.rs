//! The wasm-bindgen bindings: conversions between JavaScript values and the core API, nothing else.
//!
//! Every failure crosses as a thrown plain object `{ code, message }` ([`to_js_error`]), so a
//! Web Worker can post it on unchanged. Panics are logged to the console with their message.

use crate::{Error, ErrorCode, IdHasher, Limits, Options, Tiler};
use serde::Serialize;
use wasm_bindgen::prelude::*;

// The TypeScript types of `Metadata`, `Options`, `Limits`, `Exif`, `TileFormat`, `SourceFormat` and
// `ErrorCode` are generated from the Rust types by their `tsify::Tsify` derives (on wasm32 only).

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

/// An opened image whose Deep Zoom tiles are made on demand.
#[wasm_bindgen(js_name = Tiler)]
pub struct WasmTiler(Tiler);

#[wasm_bindgen(js_class = Tiler)]
impl WasmTiler {
    /// Decodes `bytes` (JPEG, PNG, WebP or TIFF), applies EXIF orientation and converts to sRGB.
    pub fn open(
        bytes: &[u8],
        #[wasm_bindgen(unchecked_param_type = "Options | undefined")] options: JsValue,
    ) -> Result<WasmTiler, JsValue> {
        let options: Options = from_js_or_default(options)?;
        Tiler::open(bytes, &options)
            .map(WasmTiler)
            .map_err(core_error)
    }

    /// The image's metadata.
    #[wasm_bindgen(unchecked_return_type = "Metadata")]
    pub fn metadata(&self) -> Result<JsValue, JsValue> {
        to_js(self.0.metadata())
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

    /// The tiles' MIME type.
    #[wasm_bindgen(getter)]
    pub fn mime(&self) -> String {
        self.0.format().mime().to_owned()
    }

    /// Width of the oriented image.
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u32 {
        self.0.layout().width()
    }

    /// Height of the oriented image.
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> u32 {
        self.0.layout().height()
    }

    /// Tile size without overlap.
    #[wasm_bindgen(getter, js_name = tileSize)]
    pub fn tile_size(&self) -> u32 {
        self.0.layout().tile_size()
    }

    /// Overlap on each side of a tile.
    #[wasm_bindgen(getter)]
    pub fn overlap(&self) -> u32 {
        self.0.layout().overlap()
    }

    /// The full-resolution level; level 0 is 1×1.
    #[wasm_bindgen(getter, js_name = maxLevel)]
    pub fn max_level(&self) -> u32 {
        self.0.layout().max_level()
    }

    /// Number of tiles in the whole pyramid.
    #[wasm_bindgen(getter, js_name = tileCount)]
    pub fn tile_count(&self) -> f64 {
        // Exact: a pyramid within the limits has far fewer than 2^53 tiles.
        self.0.layout().tile_count() as f64
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
