//! The crate's one error type.

/// Everything that can go wrong while opening or tiling an image.
///
/// Each variant has a stable machine-readable [`Error::code`] that crosses the
/// worker boundary and appears in tile-store's JSON error bodies.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not an image in any supported format.
    #[error("not a supported image (JPEG, PNG, WebP or TIFF)")]
    UnknownFormat,
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
}

impl Error {
    /// A short stable code for programs: `unknown_format`, `unsupported`, `decode`, ...
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownFormat => "unknown_format",
            Error::Unsupported(_) => "unsupported",
            Error::Decode(_) => "decode",
            Error::Limits(_) => "limits",
            Error::InvalidOption(_) => "invalid_option",
            Error::NoSuchTile { .. } => "no_such_tile",
            Error::Dzi(_) => "dzi",
            Error::Encode(_) => "encode",
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
