//! Cross-origin isolation of the web app (`--web-dir`): its pages and files come with
//! `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` (so
//! the browser's tiler workers can share `SharedArrayBuffer`s), unless
//! `--cross-origin-isolation false`; pyramids carry `Cross-Origin-Resource-Policy: cross-origin`,
//! so an isolated page of any origin may still show them.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use std::sync::Arc;
use tile_store::auth::{Auth, AuthSettings};
use tile_store::store::disk::DiskStore;
use tile_store::{app, AppState};

const TOKEN: &str = "isolation-test-token";

fn state(data: &std::path::Path, web: &std::path::Path) -> AppState {
    let auth = Auth::new(&AuthSettings {
        tokens: vec![TOKEN.into()],
        ..Default::default()
    })
    .unwrap();
    let mut state = AppState::new(Arc::new(DiskStore::open(data).unwrap()), auth);
    state.web_dir = Some(web.to_owned());
    state
}

fn web_app() -> tempfile::TempDir {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>Tessera</title>",
    )
    .unwrap();
    std::fs::write(web.path().join("tiler.worker.js"), "self.onmessage = null").unwrap();
    web
}

fn isolated(headers: &HeaderMap) -> bool {
    let coop = headers.get("cross-origin-opener-policy");
    let coep = headers.get("cross-origin-embedder-policy");
    match (coop, coep) {
        (Some(coop), Some(coep)) => {
            assert_eq!(
                (coop.to_str().unwrap(), coep.to_str().unwrap()),
                ("same-origin", "require-corp")
            );
            true
        }
        (None, None) => false,
        other => panic!("one of COOP and COEP without the other: {other:?}"),
    }
}

#[tokio::test]
async fn the_web_app_is_cross_origin_isolated_and_pyramids_embeddable() {
    let data = tempfile::tempdir().unwrap();
    let web = web_app();
    let app = app(state(data.path(), web.path()));

    // The page (by path and by an app route) and a worker script.
    for path in ["/", "/index.html", "/viewer/some/route", "/tiler.worker.js"] {
        let (status, headers, _) = send(&app, request("GET", path, None, "")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(isolated(&headers), "{path} is served without COOP/COEP");
    }

    // A committed pyramid: its manifest and tiles may be embedded by any (isolated) page.
    let id = test_id("isolation");
    let pyramid = Pyramid::new(300, 200);
    assert!(upload_and_commit(&app, &id, &pyramid, Some(TOKEN))
        .await
        .is_success());
    let (tile, bytes) = &pyramid.tiles[0];
    let tile_path = format!(
        "/pyramids/{id}_files/{}/{}_{}.png",
        tile.level, tile.col, tile.row
    );
    for path in [format!("/pyramids/{id}.dzi"), tile_path] {
        let (status, headers, body) = send(&app, request("GET", &path, None, "")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            headers
                .get("cross-origin-resource-policy")
                .map(|v| v.to_str().unwrap()),
            Some("cross-origin"),
            "{path}"
        );
        // The API is not the page: it is never made an opener or embedder.
        assert!(!isolated(&headers), "{path}");
        if path.ends_with(".png") {
            assert_eq!(&body, bytes);
        }
    }
    let (_, headers, _) = send(&app, request("GET", "/healthz", None, "")).await;
    assert!(!isolated(&headers));
}

#[tokio::test]
async fn isolation_can_be_turned_off() {
    let data = tempfile::tempdir().unwrap();
    let web = web_app();
    let mut state = state(data.path(), web.path());
    state.cross_origin_isolation = false;
    let app = app(state);
    for path in ["/", "/tiler.worker.js"] {
        let (status, headers, _) = send(&app, request("GET", path, None, "")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!isolated(&headers), "{path}");
    }
}

#[tokio::test]
async fn serve_isolates_by_default() {
    use clap::Parser;
    use tile_store::config::{Cli, Command};
    let data = tempfile::tempdir().unwrap();
    let web = web_app();
    let config = |extra: &[&str]| {
        let mut args = vec![
            "tile-store",
            "serve",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--web-dir",
            web.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args).unwrap().command {
            Command::Serve(c) => *c,
            Command::Tile(_) => unreachable!(),
        }
    };
    for (extra, want) in [
        (&[][..], true),
        (&["--cross-origin-isolation", "false"][..], false),
        (&["--cross-origin-isolation"][..], true),
    ] {
        let state = tile_store::serve::state_from_config(&config(extra))
            .await
            .unwrap();
        assert_eq!(state.cross_origin_isolation, want, "{extra:?}");
        let (_, headers, _) = send(&app(state), request("GET", "/", None, "")).await;
        assert_eq!(isolated(&headers), want, "{extra:?}");
    }
}
