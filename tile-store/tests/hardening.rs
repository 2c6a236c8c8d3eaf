//! Issue 13 in process: tile caps and checked geometry, cache and `nosniff` headers,
//! `s3Key` confinement. Each test is an attack from the issue and shows it refused or
//! bounded. (Connections are in `connections.rs`, JWTs in `jwt.rs`.)
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tile_store::auth::{Auth, AuthSettings};
use tile_store::store::disk::DiskStore;
use tile_store::store::TileName;
use tile_store::{app, AppState, UploadLimits};
use tiler_wasm::TileFormat;

const TOKEN: &str = "hardening-token";

fn state(dir: &std::path::Path, max_tiles: u64) -> AppState {
    let auth = Auth::new(&AuthSettings {
        tokens: vec![TOKEN.into()],
        ..Default::default()
    })
    .unwrap();
    let mut state = AppState::new(Arc::new(DiskStore::open(dir).unwrap()), auth);
    state.limits = UploadLimits {
        max_tiles_per_pyramid: max_tiles,
        ..UploadLimits::default()
    };
    state
}

/// A hang detector only: a refused request answers at once, a wrapped count never.
const HANG: Duration = Duration::from_secs(60);

async fn send_bounded(
    app: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    tokio::time::timeout(HANG, send(app, request))
        .await
        .expect("the request answered (it did not loop)")
}

fn dzi(tile_size: u32, overlap: u32, width: u64, height: u64) -> String {
    format!(
        r#"<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="png" Overlap="{overlap}" TileSize="{tile_size}"><Size Width="{width}" Height="{height}"/></Image>"#
    )
}

#[tokio::test]
async fn the_overflow_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path(), tile_store::DEFAULT_MAX_TILES_PER_PYRAMID));
    let id = test_id("overflow");
    // The manifest of the issue: its tile count wrapped a u64 and passed the cap.
    let (status, _, body) = send_bounded(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some(TOKEN),
            dzi(1, 0, 4_294_965_248, 3_221_227_008),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "dzi");
    // The same size with the smallest tile size allowed: counted without wrapping.
    let (status, _, body) = send_bounded(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some(TOKEN),
            dzi(16, 0, 4_294_965_248, 3_221_227_008),
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "too_many_tiles")
    );
    // Overlap as large as the tile size is refused too.
    let (status, _, _) = send_bounded(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some(TOKEN),
            dzi(254, 254, 600, 400),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!dir.path().join(format!("{id}.dzi")).exists());
}

fn png_tile(level: u32, col: u32, row: u32) -> TileName {
    TileName {
        level,
        col,
        row,
        format: TileFormat::Png,
    }
}

#[tokio::test]
async fn uploads_to_an_id_stop_at_the_tile_cap() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path(), 5));
    let id = test_id("cap");
    let bytes = png(16, 16, 1);
    // Without a geometry: tiles anywhere, but at most 5 of them per id.
    let first: Vec<(TileName, &[u8])> = (0..4).map(|c| (png_tile(20, c, 7), &bytes[..])).collect();
    let (status, _, body) = send_bounded(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some(TOKEN),
            tile_store::routes::batch::encode(first.clone()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    // Re-sending stored tiles does not count twice.
    let (status, _, _) = send_bounded(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some(TOKEN),
            tile_store::routes::batch::encode(first),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let two_more: Vec<(TileName, &[u8])> =
        (4..6).map(|c| (png_tile(20, c, 7), &bytes[..])).collect();
    let (status, _, body) = send_bounded(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some(TOKEN),
            tile_store::routes::batch::encode(two_more),
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "too_many_tiles")
    );
    let (status, _, _) = send_bounded(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}_files/20/4_7.png"),
            Some(TOKEN),
            bytes.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the fifth tile fits");
    let (status, _, body) = send_bounded(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}_files/20/5_7.png"),
            Some(TOKEN),
            bytes.clone(),
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "too_many_tiles")
    );
    // A geometry over the cap is refused before anything is stored.
    let (status, _, body) = send_bounded(
        &app,
        request(
            "PUT",
            &format!(
                "/pyramids/{}_files/0/0_0.png?width=4000&height=4000&tileSize=254&overlap=1&format=png",
                test_id("cap-2")
            ),
            Some(TOKEN),
            bytes,
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "too_many_tiles")
    );
    // A commit over the cap, likewise.
    let (status, _, body) = send_bounded(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some(TOKEN),
            dzi(254, 1, 4000, 4000),
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "too_many_tiles")
    );
}

fn post_image(uri: &str, bytes: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "image/png")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(bytes))
        .unwrap()
}

#[tokio::test]
async fn server_jobs_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path(), 20));
    // The issue's second attack: a tile size of 2 made millions of tile writes.
    let (status, _, body) =
        send_bounded(&app, post_image("/pyramids?tileSize=2&overlap=0", png(400, 400, 3))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) =
        send_bounded(&app, post_image("/pyramids?tileSize=64&overlap=64", png(40, 40, 3))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // 400×400 with 254-pixel tiles: 4 + 9 levels of one tile = 13 tiles, within 20;
    // with 64-pixel tiles, 49 + 16 + 4 + … tiles: over the cap, refused from the header.
    let (status, _, body) = send_bounded(
        &app,
        post_image("/pyramids?tileSize=64&overlap=0", png(400, 400, 3)),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "too_many_tiles")
    );
    let (status, _, body) = send_bounded(&app, post_image("/pyramids", png(400, 400, 3))).await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::OK,
        "{status} {}",
        String::from_utf8_lossy(&body)
    );
}
