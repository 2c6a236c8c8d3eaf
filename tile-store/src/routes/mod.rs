//! The HTTP routes:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET, HEAD | `/pyramids/{id}.dzi` | the manifest of a committed pyramid |
//! | GET | `/pyramids/{id}.szi` | the whole pyramid as one file ([`szi`]) |
//! | GET, HEAD | `/pyramids/{id}_files/{level}/{col}_{row}.{ext}` | one tile |
//! | PUT | `/pyramids/{id}_files/{level}/{col}_{row}.{ext}` | upload one tile |
//! | POST | `/pyramids/{id}/tiles` | upload many tiles ([`batch`] wire format) |
//! | GET | `/pyramids/{id}/tiles` | tiles already stored (to resume an upload) |
//! | GET | `/pyramids/{id}/levels?from=&to=` | whole levels' tiles in one response ([`levels`]) |
//! | PUT | `/pyramids/{id}.dzi` | commit: checks every tile, then writes the manifest once |
//! | DELETE | `/pyramids/{id}` | remove a pyramid |
//! | GET | `/healthz` | liveness |
//! | POST | `/pyramids` | tile an image on the server ([`pyramids`]) |
//! | GET | `/pyramids?source={sha256}&…` | the committed pyramid of an image, by its digest |
//! | GET | `/jobs/{job}` | a tiling job's state |
//! | GET | `/jobs/{job}/events` | the same, as Server-Sent Events |

pub mod batch;
pub mod levels;
pub mod pyramids;
pub mod read;
pub mod szi;
pub mod write;

use crate::error::{AppError, Result};
use crate::store::{canonical_format, parse_decimal, PyramidId, TileName};
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

/// Builds the router with CORS, tracing and the web app.
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.cors_origins);
    let web_dir = state.web_dir.clone();
    let isolated = state.cross_origin_isolation;
    let mut router = Router::new()
        .route(
            "/pyramids/{name}",
            get(read::get_manifest)
                .put(write::commit)
                .delete(write::delete_pyramid),
        )
        .route(
            "/pyramids/{files}/{level}/{tile}",
            get(read::get_tile).put(write::put_tile),
        )
        .route(
            "/pyramids/{id}/tiles",
            get(write::list_tiles).post(write::upload_batch),
        )
        .route("/pyramids/{id}/levels", get(levels::get_levels))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/pyramids",
            get(read::find_by_source).post(pyramids::create),
        )
        .route("/jobs/{job}", get(pyramids::get_job))
        .route("/jobs/{job}/events", get(pyramids::job_events))
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(state);
    router = match web_dir {
        Some(dir) => {
            let web_app = WebApp {
                files: ServeDir::new(&dir),
                index: ServeFile::new(dir.join("index.html")),
                isolated,
            };
            router.fallback(move |request: Request| serve_web_app(web_app.clone(), request))
        }
        None => router.fallback(no_such_route),
    };
    let router = router
        .layer(axum::middleware::from_fn(pyramids_embeddable))
        .layer(TraceLayer::new_for_http());
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    with_nosniff(router)
}

/// Adds `X-Content-Type-Options: nosniff` to every response of `router`, so that no
/// stored object is ever sniffed into another type (a "PNG" that is HTML).
pub fn with_nosniff(router: Router) -> Router {
    router.layer(axum::middleware::map_response(
        |mut response: Response| async move {
            response.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        },
    ))
}

async fn no_such_route() -> AppError {
    AppError::NotFound("no such route".into())
}

/// `Cross-Origin-Resource-Policy: cross-origin` on everything under `/pyramids/`: manifests and
/// tiles are public, and a cross-origin isolated page (COEP `require-corp`) of another origin
/// may show them with a plain `<img>`, as stock OpenSeadragon does without `crossOriginPolicy`.
async fn pyramids_embeddable(request: Request, next: axum::middleware::Next) -> Response {
    let pyramids = request.uri().path().starts_with("/pyramids/");
    let mut response = next.run(request).await;
    if pyramids {
        response.headers_mut().insert(
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        );
    }
    response
}

/// The built web app: its files, `index.html` for the app's own routes, and whether its
/// responses make the page cross-origin isolated.
#[derive(Clone)]
struct WebApp {
    files: ServeDir,
    index: ServeFile,
    isolated: bool,
}

/// The web app for every path the API does not claim; unknown API paths stay JSON 404s.
///
/// A path whose last segment has an extension names a file, so a missing one is a 404 —
/// an image URL with a typo must not come back as `index.html` with status 200.
async fn serve_web_app(web_app: WebApp, request: Request) -> Response {
    let path = request.uri().path();
    if path.starts_with("/pyramids/") {
        return no_such_route().await.into_response();
    }
    let names_a_file = path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'));
    let hashed = names_a_file && content_hashed(path);
    let response = if names_a_file {
        web_app.files.oneshot(request).await
    } else {
        web_app.files.fallback(web_app.index).oneshot(request).await
    };
    let mut response = match response {
        Ok(response) => response.map(Body::new),
        Err(infallible) => match infallible {},
    };
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let cache = if hashed {
            "public, max-age=31536000, immutable"
        } else {
            // index.html and unhashed files: asked again each time (304 while unchanged), so a
            // new build is seen at once.
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    if web_app.isolated {
        // Cross-origin isolation: the page (and its workers, whose scripts come from here too)
        // may use SharedArrayBuffer. Everything the app loads from this origin needs nothing
        // more; other origins must allow it by CORS or Cross-Origin-Resource-Policy.
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(
            HeaderName::from_static("cross-origin-embedder-policy"),
            HeaderValue::from_static("require-corp"),
        );
    }
    response
}

/// Whether `path` names a bundler's content-hashed file, which never changes under its name:
/// directly under `/assets/` (Vite's output folder) and named as Vite names them,
/// `name-HASH.ext` with an 8-character base64url hash (one with a capital or a digit, so that
/// an ordinary word is not taken for one). Other files of an app are revalidated.
fn content_hashed(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/assets/") else {
        return false;
    };
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return false;
    };
    let Some(split) = stem.len().checked_sub(9) else {
        return false;
    };
    let (Some(before), Some(hash)) = (stem.get(..split + 1), stem.get(split + 1..)) else {
        return false;
    };
    !name.contains('/')
        && before.len() > 1
        && before.ends_with('-')
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && hash
            .bytes()
            .any(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::POST,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_NONE_MATCH,
                HeaderName::from_static(crate::staging::SESSION_HEADER),
            ])
            .expose_headers([
                header::ETAG,
                header::CONTENT_LENGTH,
                HeaderName::from_static("cache-control"),
                HeaderName::from_static(crate::staging::SESSION_HEADER),
            ])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

/// Path segments, or a JSON 400 when the path cannot be decoded.
fn segments<T>(path: std::result::Result<Path<T>, PathRejection>) -> Result<T> {
    path.map(|Path(p)| p)
        .map_err(|e| AppError::bad_request("invalid_path", e.body_text()))
}

/// `{id}.dzi` → the id.
fn parse_manifest_name(name: &str) -> Result<PyramidId> {
    let id = name
        .strip_suffix(".dzi")
        .ok_or_else(|| AppError::NotFound("expected /pyramids/{id}.dzi".into()))?;
    PyramidId::parse(id)
}

/// `{id}_files`, `{level}`, `{col}_{row}.{ext}` → the pyramid and tile.
fn parse_tile_path(files: &str, level: &str, tile: &str) -> Result<(PyramidId, TileName)> {
    let id = files
        .strip_suffix("_files")
        .ok_or_else(|| AppError::NotFound("expected /pyramids/{id}_files/...".into()))?;
    let id = PyramidId::parse(id)?;
    let bad = |what: &str| AppError::bad_request("invalid_tile", what.to_owned());
    let level = parse_decimal(level).ok_or_else(|| bad("level must be a decimal number"))?;
    let (col, rest) = tile
        .split_once('_')
        .ok_or_else(|| bad("tile name must be {col}_{row}.{ext}"))?;
    let (row, ext) = rest
        .split_once('.')
        .ok_or_else(|| bad("tile name must be {col}_{row}.{ext}"))?;
    let col = parse_decimal(col).ok_or_else(|| bad("column must be a decimal number"))?;
    let row = parse_decimal(row).ok_or_else(|| bad("row must be a decimal number"))?;
    let format = canonical_format(ext).ok_or_else(|| {
        AppError::bad_request(
            "invalid_extension",
            "tile extension must be jpeg, png or webp",
        )
    })?;
    Ok((
        id,
        TileName {
            level,
            col,
            row,
            format,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::content_hashed;

    #[test]
    fn vite_output_names_are_content_hashed_and_other_names_are_not() {
        for hashed in [
            "/assets/index-DZnQTezH.js",
            "/assets/openseadragon-CL4v-o81.js",
            "/assets/tiler_wasm_bg-DtYOqfzg.wasm",
            "/assets/index-Dox-lfO2.css",
        ] {
            assert!(content_hashed(hashed), "{hashed}");
        }
        for not in [
            "/index.html",
            "/app.js",
            "/assets/app.js",
            "/assets/my-favorite.png",
            "/assets/-DZnQTezH.js",
            "/assets/sub/index-DZnQTezH.js",
            "/samples/index-DZnQTezH.js",
            "/assets/index-DZnQTez.js",
            "/assets/index-DZnQTezH",
            "/assets/index-DZ.QTezH.js",
        ] {
            assert!(!content_hashed(not), "{not}");
        }
    }
}
