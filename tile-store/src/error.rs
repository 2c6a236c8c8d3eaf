//! The crate's one error type and its mapping to HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything that can go wrong in tile-store, mapped to a status and a JSON body in
/// [`AppError::into_response`] and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A malformed request: bad id, path, header, batch frame or query.
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// No credentials, or credentials that do not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// Nothing stored under this address (or the pyramid is not committed).
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method.
    #[error("method not allowed here")]
    MethodNotAllowed,
    /// The request conflicts with what is stored.
    #[error("{message}")]
    Conflict {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
        /// Tiles the commit still needs, as `level/col_row.ext` (at most [`MAX_MISSING_LISTED`]).
        missing: Option<Missing>,
    },
    /// A tile or request body over the configured size limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Tile bytes that are not the image type their extension names.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A source image tile-store will not fetch (a refused address or scheme).
    #[error("{message}")]
    Forbidden {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// Fetching a source image failed on the other side (its status, a timeout, a reset).
    #[error("{message}")]
    Upstream {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// Too much work queued (tiling jobs, uploads); the client should retry after
    /// `retry_after_secs`. The message is sent.
    #[error("{message}")]
    Busy {
        /// Human-readable explanation.
        message: String,
        /// Seconds to wait before retrying (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// A tiler error (bad image, bad `.dzi`, bad geometry).
    #[error(transparent)]
    Tiler(#[from] tiler_wasm::Error),
    /// A storage backend failure; details are logged, never sent.
    #[error("storage failure: {0}")]
    Store(String),
    /// Temporarily unable to answer (the store is unreachable or slow, or too many
    /// uploads are in flight): `503` with `Retry-After`, safe to retry.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A local I/O failure; details are logged, never sent.
    #[error("I/O failure: {0}")]
    Io(#[from] std::io::Error),
    /// Settings that cannot work together (reported at start-up).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Any other failure of our own; details are logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Most missing tiles listed in one 409 response; `count` always has the total.
pub const MAX_MISSING_LISTED: usize = 1000;

/// The tiles a commit lacks.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Missing {
    /// Total number of missing tiles.
    pub count: u64,
    /// The first missing tiles, as `level/col_row.ext`.
    pub tiles: Vec<String>,
}

/// `Retry-After` (seconds) of a `503` for a short-lived condition: S3 slow or
/// unreachable, too many uploads at once.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 1;
/// `Retry-After` (seconds) when the tiling queue or its source-byte budget is full:
/// a job takes seconds to minutes, so retrying sooner only adds load.
pub const RETRY_AFTER_BUSY_QUEUE_SECS: u64 = 10;

/// Shorthand for results in this crate.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl AppError {
    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            // A decoder panic is a bug of ours, not a fault of the client's image.
            AppError::Tiler(tiler_wasm::Error::Panic) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::BadRequest { .. } | AppError::Tiler(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            AppError::Busy { .. } | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(_) | AppError::Io(_) | AppError::Config(_) | AppError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The stable code sent in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::Forbidden { code, .. }
            | AppError::Upstream { code, .. } => code,
            AppError::Busy { .. } => "busy",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::PayloadTooLarge(_) => "too_large",
            AppError::UnsupportedMediaType(_) => "wrong_image_type",
            AppError::Tiler(e) => e.code(),
            AppError::Config(_) => "config",
            AppError::Store(_) | AppError::Io(_) | AppError::Internal(_) => "internal",
            AppError::Unavailable(_) => "unavailable",
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<&'a Missing>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if let AppError::Unavailable(detail) = &self {
            tracing::warn!(%detail, "request refused for now");
            "temporarily unavailable; retry shortly".to_owned()
        } else if status.is_server_error()
            // Upstream and busy answers are about the source or the queue, not our internals.
            && !matches!(self, AppError::Upstream { .. } | AppError::Busy { .. })
        {
            tracing::error!(error = %self, "request failed");
            "internal server error".to_owned()
        } else {
            self.to_string()
        };
        let missing = match &self {
            AppError::Conflict { missing, .. } => missing.as_ref(),
            _ => None,
        };
        let body = Body {
            error: Detail {
                code: self.code(),
                message,
                missing,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after = match &self {
            AppError::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            AppError::Unavailable(_) => Some(RETRY_AFTER_UNAVAILABLE_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
