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

/// Sends on its own task, so that a handler looping without yielding (the issue's
/// wrapped tile count) pins one worker while this one notices. A hung worker would
/// also hang the runtime's shutdown, so the test process exits with a failure.
async fn send_bounded(
    app: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let app = app.clone();
    let task = tokio::spawn(async move { send(&app, request).await });
    match tokio::time::timeout(HANG, task).await {
        Ok(answer) => answer.expect("request task"),
        Err(_) => {
            eprintln!("a request did not answer within {HANG:?}: it loops on a worker");
            std::process::exit(101);
        }
    }
}

fn dzi(tile_size: u32, overlap: u32, width: u64, height: u64) -> String {
    format!(
        r#"<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="png" Overlap="{overlap}" TileSize="{tile_size}"><Size Width="{width}" Height="{height}"/></Image>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_jobs_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path(), 20));
    // The issue's second attack: a tile size of 2 made millions of tile writes.
    let (status, _, body) = send_bounded(
        &app,
        post_image("/pyramids?tileSize=2&overlap=0", png(400, 400, 3)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, _) = send_bounded(
        &app,
        post_image("/pyramids?tileSize=64&overlap=64", png(40, 40, 3)),
    )
    .await;
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

#[tokio::test]
async fn protected_reads_are_private_and_every_answer_is_nosniff() {
    let dir = tempfile::tempdir().unwrap();
    let pyramid = Pyramid::new(300, 200);
    let id = test_id("private");
    for require_read_token in [false, true] {
        let auth = Auth::new(&AuthSettings {
            tokens: vec![TOKEN.into()],
            require_read_token,
            ..Default::default()
        })
        .unwrap();
        let app = app(AppState::new(
            Arc::new(DiskStore::open(dir.path()).unwrap()),
            auth,
        ));
        let status = upload_and_commit(&app, &id, &pyramid, Some(TOKEN)).await;
        assert!(status.is_success(), "{status}");
        for uri in [
            format!("/pyramids/{id}.dzi"),
            format!("/pyramids/{id}_files/0/0_0.png"),
        ] {
            let (status, headers, _) = send(&app, request("GET", &uri, Some(TOKEN), "")).await;
            assert_eq!(status, StatusCode::OK);
            let cache = headers["cache-control"].to_str().unwrap();
            let vary = headers.get("vary").map(|v| v.to_str().unwrap().to_owned());
            if require_read_token {
                assert_eq!(cache, "private, max-age=31536000, immutable", "{uri}");
                assert_eq!(vary.as_deref(), Some("Authorization"), "{uri}");
            } else {
                assert_eq!(cache, "public, max-age=31536000, immutable", "{uri}");
                assert_eq!(vary, None, "{uri}");
            }
            assert_eq!(headers["x-content-type-options"], "nosniff");
        }
        // Errors too.
        for (method, uri, token) in [
            (
                "GET",
                format!("/pyramids/{}.dzi", test_id("absent")),
                Some(TOKEN),
            ),
            ("PUT", format!("/pyramids/{id}.dzi"), None),
            ("GET", "/no/such/route".to_owned(), None),
        ] {
            let (status, headers, _) = send(&app, request(method, &uri, token, "")).await;
            assert!(status.is_client_error(), "{method} {uri}: {status}");
            assert_eq!(
                headers["x-content-type-options"], "nosniff",
                "{method} {uri}"
            );
        }
    }
}

const SECRET: &str = "hardening-jwt-secret";

fn user_token(sub: &str, scope: &str) -> String {
    let claims =
        serde_json::json!({ "sub": sub, "exp": now() + 600, "iat": now(), "scope": scope });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn only_the_committer_or_the_delete_scope_may_delete() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::new(&AuthSettings {
        tokens: vec![TOKEN.into()],
        jwt_secret: Some(SECRET.into()),
        jwt_require_scopes: true,
        ..Default::default()
    })
    .unwrap();
    let app = app(AppState::new(
        Arc::new(DiskStore::open(dir.path()).unwrap()),
        auth,
    ));
    let alice = user_token("alice", "tiles:write");
    let mallory = user_token("mallory", "tiles:write");
    let admin = user_token("admin", "tiles:write tiles:delete");
    let pyramid = Pyramid::new(300, 200);
    for (n, deleter) in [(0, alice.as_str()), (1, admin.as_str()), (2, TOKEN)] {
        let id = test_id(&format!("owned-{n}"));
        assert_eq!(
            upload_and_commit(&app, &id, &pyramid, Some(&alice)).await,
            StatusCode::CREATED
        );
        let (status, _, body) = send(
            &app,
            request("DELETE", &format!("/pyramids/{id}"), Some(&mallory), ""),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(error_code(&body), "not_committer");
        assert!(dir.path().join(format!("{id}.dzi")).exists());
        let (status, _, body) = send(
            &app,
            request("DELETE", &format!("/pyramids/{id}"), Some(deleter), ""),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert!(!dir.path().join(format!("{id}.dzi")).exists());
        assert!(!dir.path().join(format!("committers/{id}.json")).exists());
    }
    // Without tiles:write, nothing is written at all.
    let reader = user_token("reader", "tiles:read");
    let (status, _, _) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{}/tiles", test_id("r")),
            Some(&reader),
            pyramid.batch(&[]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Two instances over one store (each with its own per-id locks), and one instance
/// with itself: a commit and a delete racing never leave a manifest without its tiles.
#[tokio::test]
async fn delete_racing_commit_never_leaves_a_manifest_without_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<DiskStore> = Arc::new(DiskStore::open(dir.path()).unwrap());
    let instance = || {
        let auth = Auth::new(&AuthSettings {
            tokens: vec![TOKEN.into()],
            ..Default::default()
        })
        .unwrap();
        app(AppState::new(store.clone(), auth))
    };
    let (a, b) = (instance(), instance());
    let pyramid = Pyramid::new(600, 400);
    let id = test_id("race");
    let complete = || {
        let dzi = dir.path().join(format!("{id}.dzi"));
        if !dzi.exists() {
            return true;
        }
        pyramid.tiles.iter().all(|(name, _)| {
            dir.path()
                .join(format!("{id}_files/{}", name.relative()))
                .exists()
        })
    };
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..40 {
        let (status, _, _) = send(
            &a,
            request(
                "POST",
                &format!("/pyramids/{id}/tiles"),
                Some(TOKEN),
                pyramid.batch(&[]),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let deleter = if round % 2 == 0 { &b } else { &a };
        let commit = send(
            &a,
            request(
                "PUT",
                &format!("/pyramids/{id}.dzi"),
                Some(TOKEN),
                pyramid.dzi.to_xml(),
            ),
        );
        let delete = send(
            deleter,
            request("DELETE", &format!("/pyramids/{id}"), Some(TOKEN), ""),
        );
        let ((c, _, _), (d, _, _)) =
            tokio::time::timeout(HANG, async { tokio::join!(commit, delete) })
                .await
                .expect("no hang");
        *outcomes.entry((c.as_u16(), d.as_u16())).or_insert(0) += 1;
        assert!(
            complete(),
            "round {round}: commit {c}, delete {d}: a manifest without its tiles"
        );
        // Start the next round from nothing.
        let (d, _, _) = send(
            &a,
            request("DELETE", &format!("/pyramids/{id}"), Some(TOKEN), ""),
        )
        .await;
        assert_eq!(d, StatusCode::OK);
    }
    eprintln!("commit/delete outcomes: {outcomes:?}");
}

/// A request whose body sends `first` and then nothing until `release` fires (or is
/// dropped): an upload in progress, held by the test.
fn held_body_post(
    uri: &str,
    declared: u64,
    first: Vec<u8>,
    release: tokio::sync::oneshot::Receiver<()>,
) -> Request<Body> {
    use futures::StreamExt;
    let head = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(first))]);
    let rest = futures::stream::once(async move {
        let _ = release.await;
        Err(std::io::Error::other("the client went away"))
    });
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "image/png")
        .header("content-length", declared.to_string())
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from_stream(head.chain(rest)))
        .unwrap()
}

/// The issue's image-body attack: `POST /pyramids` with the image as the body read
/// 16 × 256 MiB into memory past the upload gate. Bodies now take a turn at the gate
/// (the same cap as tile uploads), and the bytes they declare are reserved from
/// `--max-queued-source-bytes` before any is read, so a body that cannot fit is
/// refused at once instead of held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_bodies_take_a_turn_at_the_upload_gate_and_the_source_budget() {
    use tile_store::tiling::{Tiling, TilingSettings};
    const MAX_SOURCE: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let mut state = state(dir.path(), 1_000_000);
    let mut settings = TilingSettings {
        max_queued_source_bytes: 3 * MAX_SOURCE / 2,
        ..TilingSettings::default()
    };
    settings.fetch.max_bytes = MAX_SOURCE;
    state.tiling = Arc::new(Tiling::new(&settings, None).unwrap());
    let gate = Arc::new(tile_store::gate::UploadGate::new(
        2,
        Duration::from_millis(300),
    ));
    state.uploads = Arc::clone(&gate);
    let app = app(state);
    // Waits (events, not a fixed sleep) until `n` uploads hold a turn at the gate.
    let turns_taken = |n: usize| {
        let gate = Arc::clone(&gate);
        async move {
            let deadline = tokio::time::Instant::now() + HANG;
            while gate.in_use() != n {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{n} turns never taken"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };

    // One body declaring the largest source, held open: it holds a turn and the budget.
    let (release_first, held) = tokio::sync::oneshot::channel();
    let first = tokio::spawn({
        let app = app.clone();
        async move {
            send(
                &app,
                held_body_post("/pyramids", MAX_SOURCE, vec![0x89; 1024], held),
            )
            .await
        }
    });
    turns_taken(1).await;
    // A second large body does not fit beside it: refused before its bytes are read.
    let (_keep, never) = tokio::sync::oneshot::channel::<()>();
    let (status, headers, body) = send_bounded(
        &app,
        held_body_post("/pyramids", MAX_SOURCE, vec![0x89; 1024], never),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(headers.contains_key("retry-after"));
    // A small body fits the budget and takes the gate's second turn (its source is
    // held by the job until it ends); with both turns taken, a third body waits the
    // gate's 300 ms and is told to retry.
    let (release_small, small_held) = tokio::sync::oneshot::channel();
    let small = tokio::spawn({
        let app = app.clone();
        async move {
            send(
                &app,
                held_body_post("/pyramids", 4096, vec![0x89; 16], small_held),
            )
            .await
        }
    });
    turns_taken(2).await;
    let (_keep, never) = tokio::sync::oneshot::channel::<()>();
    let (status, _, body) =
        send_bounded(&app, held_body_post("/pyramids", 16, vec![0x89; 1], never)).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(String::from_utf8_lossy(&body).contains("uploads are already in progress"));
    // The clients go away: their turns and bytes are given back, and a whole image is
    // then accepted.
    drop(release_first);
    drop(release_small);
    let _ = first.await.unwrap();
    let _ = small.await.unwrap();
    let (status, _, body) = send_bounded(&app, post_image("/pyramids", png(300, 200, 7))).await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::OK,
        "{status} {}",
        String::from_utf8_lossy(&body)
    );
}
