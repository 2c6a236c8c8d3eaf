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
            Error::Panic => "panic",
            Error::Batch { fault, .. } => match fault {
                BatchFault::Malformed => "invalid_batch",
                BatchFault::Extension => "invalid_extension",
                BatchFault::TooLarge => "too_large",
            },
        }
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
