//! The crate's one error type.

/// The formats this build reads, for people: the browser's build leaves JPEG XL to tile-store and
/// has AVIF decoded by the browser itself; natively AVIF has no decoder.
#[cfg(target_arch = "wasm32")]
const READABLE: &str = "JPEG, PNG, WebP, TIFF or AVIF";
#[cfg(all(not(target_arch = "wasm32"), feature = "jxl"))]
const READABLE: &str = "JPEG, PNG, WebP, TIFF or JPEG XL";
#[cfg(all(not(target_arch = "wasm32"), not(feature = "jxl")))]
const READABLE: &str = "JPEG, PNG, WebP or TIFF";

/// Everything that can go wrong while opening or tiling an image.
///
/// Each variant has a stable machine-readable [`Error::code`] that crosses the
/// worker boundary and appears in tile-store's JSON error bodies.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not an image in any supported format.
    #[error("not an image Tessera can read ({READABLE})")]
    UnknownFormat,
    /// A format recognised only to be refused (HEIC, AVIF, JPEG XL, ...): no decoder for it is
    /// built in. Its code is `unsupported`; the message names the format.
    #[error("{0} images are not supported: convert to JPEG, PNG, WebP or TIFF")]
    UnsupportedFormat(&'static str),
    /// A format this build does not decode but tile-store's does (JPEG XL in the browser's build,
    /// which leaves out `jxl-oxide` for its size): the image must be tiled on the server. Its
    /// code is `server_only`; the message names the format.
    #[error("{0} images are decoded only on the server: tile it there (POST /pyramids or `tile-store tile`)")]
    ServerOnly(&'static str),
    /// The format is recognised but this variant of it is not supported.
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The image is damaged: truncated, corrupt or inconsistent.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// The image is larger than the configured limits allow.
    #[error("image too large: {0}")]
    Limits(String),
    /// An option is out of range (tile size, overlap, quality, ...).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A tile address outside the pyramid's geometry.
    #[error("no tile at level {level}, column {col}, row {row}")]
    NoSuchTile {
        /// Pyramid level.
        level: u32,
        /// Tile column.
        col: u32,
        /// Tile row.
        row: u32,
    },
    /// A `.dzi` document that cannot be parsed.
    #[error("invalid .dzi: {0}")]
    Dzi(String),
    /// Encoding a tile failed.
    #[error("cannot encode tile: {0}")]
    Encode(String),
    /// A decoder panicked: a bug (ours or a dependency's) that this input found. It is caught
    /// so that a service or worker survives, and kept apart from [`Error::Decode`] so that tests
    /// and fuzzers see every panic as the failure it is.
    #[error("internal error: the decoder panicked on this input")]
    Panic,
    /// A tile-upload batch that breaks the frame format ([`crate::batch`]).
    #[error("{message}")]
    Batch {
        /// What is wrong with it.
        fault: BatchFault,
        /// Which frame, and how.
        message: String,
    },
}

/// What is wrong with a tile-upload batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFault {
    /// Truncated, or a header that is not the format's JSON.
    Malformed,
    /// A tile extension other than `jpeg`, `png` or `webp`.
    Extension,
    /// A tile over the size limit.
    TooLarge,
}

/// The stable machine-readable kind of an [`Error`]; serialized (and typed in TypeScript) as its
/// snake_case name, which is also [`ErrorCode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not an image in any supported format.
    UnknownFormat,
    /// A recognised format in a variant that is not supported.
    Unsupported,
    /// A format only the server decodes: the image must be tiled there.
    ServerOnly,
    /// A damaged image: truncated, corrupt or inconsistent.
    Decode,
    /// An image larger than the limits allow.
    Limits,
    /// An option out of range.
    InvalidOption,
    /// A tile address outside the pyramid.
    NoSuchTile,
    /// A `.dzi` document that cannot be parsed.
    Dzi,
    /// Encoding a tile failed.
    Encode,
    /// A decoder panicked (a bug); in wasm, also what a trap is reported as.
    Panic,
    /// A tile-upload batch that breaks the frame format.
    InvalidBatch,
    /// A batch tile with an extension other than `jpeg`, `png` or `webp`.
    InvalidExtension,
    /// A batch tile over the size limit.
    TooLarge,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::UnknownFormat,
        ErrorCode::Unsupported,
        ErrorCode::ServerOnly,
        ErrorCode::Decode,
        ErrorCode::Limits,
        ErrorCode::InvalidOption,
        ErrorCode::NoSuchTile,
        ErrorCode::Dzi,
        ErrorCode::Encode,
        ErrorCode::Panic,
        ErrorCode::InvalidBatch,
        ErrorCode::InvalidExtension,
        ErrorCode::TooLarge,
    ];

    /// The code as programs see it: `unknown_format`, `unsupported`, `decode`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownFormat => "unknown_format",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::ServerOnly => "server_only",
            ErrorCode::Decode => "decode",
            ErrorCode::Limits => "limits",
            ErrorCode::InvalidOption => "invalid_option",
            ErrorCode::NoSuchTile => "no_such_tile",
            ErrorCode::Dzi => "dzi",
            ErrorCode::Encode => "encode",
            ErrorCode::Panic => "panic",
            ErrorCode::InvalidBatch => "invalid_batch",
            ErrorCode::InvalidExtension => "invalid_extension",
            ErrorCode::TooLarge => "too_large",
        }
    }
}

impl Error {
    /// The error's kind.
    pub fn kind(&self) -> ErrorCode {
        match self {
            Error::UnknownFormat => ErrorCode::UnknownFormat,
            Error::Unsupported(_) | Error::UnsupportedFormat(_) => ErrorCode::Unsupported,
            Error::ServerOnly(_) => ErrorCode::ServerOnly,
            Error::Decode(_) => ErrorCode::Decode,
            Error::Limits(_) => ErrorCode::Limits,
            Error::InvalidOption(_) => ErrorCode::InvalidOption,
            Error::NoSuchTile { .. } => ErrorCode::NoSuchTile,
            Error::Dzi(_) => ErrorCode::Dzi,
            Error::Encode(_) => ErrorCode::Encode,
            Error::Panic => ErrorCode::Panic,
            Error::Batch { fault, .. } => match fault {
                BatchFault::Malformed => ErrorCode::InvalidBatch,
                BatchFault::Extension => ErrorCode::InvalidExtension,
                BatchFault::TooLarge => ErrorCode::TooLarge,
            },
        }
    }

    /// A short stable code for programs: `unknown_format`, `unsupported`, `decode`, ...
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<image::ImageError> for Error {
    fn from(e: image::ImageError) -> Self {
        use image::ImageError as E;
        match e {
            E::Limits(l) => Error::Limits(l.to_string()),
            E::Unsupported(u) => Error::Unsupported(u.to_string()),
            E::Encoding(e) => Error::Encode(e.to_string()),
            E::Decoding(d) => Error::Decode(d.to_string()),
            E::Parameter(p) => Error::Decode(p.to_string()),
            E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                Error::Decode("the image is truncated".into())
            }
            E::IoError(io) => Error::Decode(io.to_string()),
        }
    }
}

impl From<zune_jpeg::errors::DecodeErrors> for Error {
    fn from(e: zune_jpeg::errors::DecodeErrors) -> Self {
        use zune_jpeg::errors::DecodeErrors as E;
        match e {
            E::LargeDimensions(_) => Error::Limits(e.to_string()),
            E::Unsupported(_) => Error::Unsupported(e.to_string()),
            other => Error::Decode(other.to_string()),
        }
    }
}

/// Runs `decode`, a third-party decoder's work on untrusted bytes, turning a panic inside it
/// into [`Error::Panic`]: a malformed file must fail as an error, never take the caller down.
pub(crate) fn contain<T>(decode: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or(Err(Error::Panic))
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// The code programs match on is the name serde (and so the generated TypeScript type) uses.
    #[test]
    fn codes_serialize_as_their_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
