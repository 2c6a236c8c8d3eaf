//! Server-side tiling (`POST /pyramids`, `/jobs/{job}`) in process on the disk store,
//! with sources served by a static server on 127.0.0.1. Only loopback is ever
//! contacted: the refused-address tests are refused before any connection, and the
//! private, link-local and metadata ranges are covered by the address policy's unit
//! tests (`src/fetch/policy.rs`), which never connect.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tiling.rs"]
mod tiling;

use axum::body::Body;
use axum::http::StatusCode;
use common::*;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tile_store::auth::{Auth, AuthSettings};
use tile_store::fetch::FetchSettings;
use tile_store::store::disk::DiskStore;
use tile_store::tiling::{Tiling, TilingSettings};
use tile_store::{app, AppState};
use tiling::*;

/// Sources over this many bytes are refused in these tests.
const MAX_SOURCE: u64 = 2 << 20;

fn state(dir: &Path, allow: &[&str], max_jobs: usize) -> AppState {
    let auth = Auth::new(&AuthSettings::default()).unwrap();
    let mut state = AppState::new(Arc::new(DiskStore::open(dir).unwrap()), auth);
    let settings = TilingSettings {
        fetch: FetchSettings {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            max_bytes: MAX_SOURCE,
            ..FetchSettings::default()
        },
        max_jobs,
        ..TilingSettings::default()
    };
    state.tiling = Arc::new(Tiling::new(&settings, None).unwrap());
    state
}

/// The pyramid on disk is exactly what the core makes natively for the same bytes:
/// same id, same `.dzi`, the same tile bytes, nothing more.
fn assert_same_as_native(dir: &Path, view: &serde_json::Value, source: &[u8]) {
    let native = native_pyramid(source);
    assert_eq!(view["id"], native.id.as_str());
    assert_eq!(view["dzi"], format!("/pyramids/{}.dzi", native.id).as_str());
    let dzi = std::fs::read_to_string(dir.join(format!("{}.dzi", native.id))).unwrap();
    assert_eq!(dzi, native.dzi);
    let stored = tiles_on_disk(dir, &native.id);
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        native.tiles.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &native.tiles {
        assert!(
            stored[name] == *bytes,
            "tile {name} differs from the native tiler's"
        );
    }
}

#[tokio::test]
async fn by_url_tiles_commits_and_serves_what_the_core_makes() {
    let dir = tempfile::tempdir().unwrap();
    let photo = photo_jpeg(700, 500, 1);
    let origin = Origin::start(photo.clone()).await;
    let app = app(state(dir.path(), &["127.0.0.1"], 4));

    // Through a same-host redirect, which is followed.
    let (status, headers, view) = post_json(&app, json!({ "src": origin.url("/to-photo") })).await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::OK,
        "{status} {view}"
    );
    let job = view["job"].as_str().unwrap().to_owned();
    if status == StatusCode::ACCEPTED {
        assert_eq!(headers["location"], format!("/jobs/{job}").as_str());
    }
    let done = finished_job(&app, &job).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["progress"]["tiles"], done["progress"]["tilesTotal"]);
    assert_eq!(done["progress"]["bytes"], photo.len() as u64);
    assert_same_as_native(dir.path(), &done, &photo);

    // Stock OpenSeadragon reads the manifest and tiles from the usual routes.
    let dzi_url = done["dzi"].as_str().unwrap();
    let (status, _, xml) = send(&app, request("GET", dzi_url, None, Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(xml, native_pyramid(&photo).dzi.as_bytes());
    let top = format!(
        "/pyramids/{}_files/10/0_0.jpeg",
        done["id"].as_str().unwrap()
    );
    let (status, headers, _) = send(&app, request("GET", &top, None, Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
}

#[tokio::test]
async fn by_body_upload_and_events_until_ready() {
    let dir = tempfile::tempdir().unwrap();
    let photo = photo_jpeg(600, 400, 2);
    let app = app(state(dir.path(), &[], 4));

    let (status, _, view) = post_image(&app, photo.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{view}");
    // The id is known at once: it is the hash of the body.
    assert_eq!(view["id"], native_pyramid(&photo).id.as_str());
    let job = view["job"].as_str().unwrap();

    // The event stream ends after the last state.
    let (status, headers, body) = send(
        &app,
        request("GET", &format!("/jobs/{job}/events"), None, Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    let text = String::from_utf8(body).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(text.contains("event: status"), "{text}");
    let last = events.last().expect("at least one event");
    assert_eq!(last["status"], "ready", "{text}");
    assert_same_as_native(dir.path(), last, &photo);
}

/// A 16-bit PNG with alpha by URL (spooled to a file) is streamed row by row into exactly what
/// the core makes decoding it whole.
#[tokio::test]
async fn a_png_by_url_is_streamed_into_what_the_core_makes() {
    let dir = tempfile::tempdir().unwrap();
    let mut pixels = image::load_from_memory(&photo_jpeg(500, 400, 5))
        .unwrap()
        .into_rgba16();
    for (x, y, p) in pixels.enumerate_pixels_mut() {
        p.0[3] = if x < 40 {
            0
        } else {
            ((x * 97 + y * 301) % 65_536) as u16
        };
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba16(pixels)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let origin = Origin::start(png.clone()).await;
    let app = app(state(dir.path(), &["127.0.0.1"], 4));
    // The origin's route is named for a JPEG; the tiler sniffs the bytes.
    let (status, _, view) = post_json(&app, json!({ "src": origin.url("/photo.jpg") })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{view}");
    let done = finished_job(&app, view["job"].as_str().unwrap()).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_same_as_native(dir.path(), &done, &png);
}

/// A tiled, JPEG-compressed BigTIFF (as `vips tiffsave` writes orthomosaics) posted as the body
/// is streamed into the pyramid `vips dzsave` makes: same `.dzi`, same tiles. The whole-image
/// decoder cannot read such a TIFF, so a pyramid at all shows the job streamed it.
#[tokio::test]
async fn a_tiled_jpeg_bigtiff_is_streamed_into_the_pyramid_vips_makes() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let jpeg = work.path().join("photo.jpg");
    std::fs::write(&jpeg, photo_jpeg(900, 600, 3)).unwrap();
    let tiff = work.path().join("ortho.tif");
    let vips = |args: &[&std::ffi::OsStr]| {
        let status = std::process::Command::new("vips")
            .args(args)
            .status()
            .expect("the tests need vips (libvips-tools)");
        assert!(status.success(), "vips {args:?}");
    };
    vips(&[
        "tiffsave".as_ref(),
        jpeg.as_os_str(),
        tiff.as_os_str(),
        "--tile".as_ref(),
        "--bigtiff".as_ref(),
        "--compression".as_ref(),
        "jpeg".as_ref(),
    ]);
    let source = std::fs::read(&tiff).unwrap();
    assert!(tiler_wasm::Tiler::open(&source, &tiler_wasm::Options::default()).is_err());

    let app = app(state(dir.path(), &[], 4));
    let (status, _, view) = post_image(&app, source).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{view}");
    let done = finished_job(&app, view["job"].as_str().unwrap()).await;
    assert_eq!(done["status"], "ready", "{done}");
    let id = done["id"].as_str().unwrap();

    let base = work.path().join("vips");
    vips(&["dzsave".as_ref(), tiff.as_os_str(), base.as_os_str()]);
    let dzi = std::fs::read_to_string(dir.path().join(format!("{id}.dzi"))).unwrap();
    assert_eq!(
        dzi,
        std::fs::read_to_string(base.with_extension("dzi")).unwrap()
    );
    // vips's tiles, without its `vips-properties.xml`.
    let mut theirs = Vec::new();
    for level in std::fs::read_dir(work.path().join("vips_files")).unwrap() {
        let level = level.unwrap();
        if !level.file_type().unwrap().is_dir() {
            continue;
        }
        for tile in std::fs::read_dir(level.path()).unwrap() {
            theirs.push(format!(
                "{}/{}",
                level.file_name().to_string_lossy(),
                tile.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    theirs.sort();
    let ours: Vec<String> = tiles_on_disk(dir.path(), id).into_keys().collect();
    assert_eq!(ours, theirs);
}

/// A JPEG XL posted as the body is tiled (jxl-oxide, the `jxl` feature) into what the core
/// makes natively; the browser's build leaves such images to this route.
#[cfg(feature = "jxl")]
#[tokio::test]
async fn a_jpeg_xl_body_is_tiled() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let jpeg = work.path().join("photo.jpg");
    std::fs::write(&jpeg, photo_jpeg(500, 300, 9)).unwrap();
    let jxl = work.path().join("photo.jxl");
    let status = std::process::Command::new("vips")
        .arg("copy")
        .arg(&jpeg)
        .arg(format!("{}[lossless]", jxl.display()))
        .status()
        .expect("the tests need vips (libvips-tools)");
    assert!(status.success());
    let source = std::fs::read(&jxl).unwrap();
    let app = app(state(dir.path(), &[], 4));
    let (status, _, view) = post_image(&app, source.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{view}");
    let done = finished_job(&app, view["job"].as_str().unwrap()).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_same_as_native(dir.path(), &done, &source);
}

#[tokio::test]
async fn a_committed_pyramid_is_ready_at_once_without_tiling_again() {
    let dir = tempfile::tempdir().unwrap();
    let photo = photo_jpeg(640, 480, 3);
    let origin = Origin::start(photo.clone()).await;
    let app = app(state(dir.path(), &["127.0.0.1"], 4));
    let (_, _, view) = post_image(&app, photo.clone()).await;
    let done = finished_job(&app, view["job"].as_str().unwrap()).await;
    assert_eq!(done["status"], "ready");
    let id = done["id"].as_str().unwrap().to_owned();

    // Take a tile away behind the store's back: tiling again would put it back.
    let removed = dir.path().join(format!("{id}_files/0/0_0.jpeg"));
    std::fs::remove_file(&removed).unwrap();

    let (status, _, view) = post_image(&app, photo.clone()).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(
        view,
        json!({ "id": id, "dzi": format!("/pyramids/{id}.dzi"), "status": "ready" })
    );

    let (status, _, view) = post_json(&app, json!({ "src": origin.url("/photo.jpg") })).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "ready");
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["progress"]["tiles"], 0);
    assert!(!removed.exists(), "the pyramid was tiled again");
}

#[tokio::test]
async fn concurrent_requests_for_one_source_share_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let photo = photo_jpeg(700, 500, 4);
    let origin = Origin::start(photo.clone()).await;
    let app = app(state(dir.path(), &["127.0.0.1"], 4));
    // The fetch is held until all three requests are in: they must join one job.
    let src = json!({ "src": origin.url("/held.jpg") });
    let ((s1, _, a), (s2, _, b), (s3, _, c), ()) = tokio::join!(
        post_json(&app, src.clone()),
        post_json(&app, src.clone()),
        post_json(&app, src.clone()),
        async {
            origin.held_requests(1).await;
            origin.release();
        },
    );
    for (status, view) in [(s1, &a), (s2, &b), (s3, &c)] {
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::OK,
            "{status} {view}"
        );
    }
    assert_eq!(a["job"], b["job"]);
    assert_eq!(a["job"], c["job"]);
    assert_eq!(origin.hits.held.load(Ordering::SeqCst), 1, "fetched once");
    let done = finished_job(&app, a["job"].as_str().unwrap()).await;
    assert_eq!(done["status"], "ready");
    assert_same_as_native(dir.path(), &done, &photo);

    // The same bytes under another URL meet the same pyramid.
    let (status, _, view) = post_json(&app, json!({ "src": origin.url("/photo.jpg") })).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["id"], done["id"]);
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(photo_jpeg(300, 200, 5)).await;
    let app = app(state(dir.path(), &["127.0.0.1"], 1));
    let held = {
        let app = app.clone();
        let src = json!({ "src": origin.url("/held.jpg") });
        tokio::spawn(async move { post_json(&app, src).await })
    };
    // The one slot is busy fetching until the origin is released.
    origin.held_requests(1).await;
    let (status, headers, body) = post_image(&app, photo_jpeg(200, 100, 6)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "10");
    assert_eq!(body["error"]["code"], "busy");
    origin.release();
    let (status, _, view) = held.await.unwrap();
    assert!(status.is_success(), "{view}");
    finished_job(&app, view["job"].as_str().unwrap()).await;
    // Room again once the job is done.
    let (status, _, _) = post_image(&app, photo_jpeg(200, 100, 6)).await;
    assert!(status.is_success());
}

#[tokio::test]
async fn loopback_addresses_outside_the_allow_list_are_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(photo_jpeg(300, 200, 7)).await;
    let app = app(state(dir.path(), &["127.0.0.1"], 4));
    let port = origin.port;
    for (src, names) in [
        (format!("http://127.0.0.2:{port}/photo.jpg"), "127.0.0.2"),
        (format!("http://[::1]:{port}/photo.jpg"), "::1"),
        (
            format!("http://[::ffff:127.0.0.2]:{port}/photo.jpg"),
            "127.0.0.2",
        ),
        (format!("http://0.0.0.0:{port}/photo.jpg"), "0.0.0.0"),
        // Redirects from the allowed host to refused ones.
        (origin.url("/to-127.0.0.2"), "127.0.0.2"),
        (origin.url("/to-ipv6-loopback"), "::1"),
    ] {
        let (status, _, body) = post_json(&app, json!({ "src": src })).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{src}: {body}");
        assert_eq!(body["error"]["code"], "address_refused", "{src}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(names) && message.contains("loopback")
                || message.contains("unspecified"),
            "{src}: {message}"
        );
        assert!(message.contains("--fetch-allow"), "{message}");
    }
    assert_eq!(origin.hits.photo.load(Ordering::SeqCst), 0);

    // Without an allow-list even 127.0.0.1 is refused, by name (the resolver's check)
    // and in the forms the URL parser turns into it.
    let strict = tile_store::app(state(dir.path(), &[], 4));
    for src in [
        format!("http://localhost:{port}/photo.jpg"),
        format!("http://127.0.0.1:{port}/photo.jpg"),
        format!("http://2130706433:{port}/photo.jpg"),
        format!("http://0x7f.1:{port}/photo.jpg"),
    ] {
        let (status, _, body) = post_json(&strict, json!({ "src": src })).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{src}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("loopback"),
            "{body}"
        );
    }
    assert_eq!(origin.hits.photo.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bad_sources_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(photo_jpeg(300, 200, 8)).await;
    let app = app(state(dir.path(), &["127.0.0.1"], 4));
    let cases = [
        (
            json!({ "src": "file:///etc/passwd" }),
            StatusCode::BAD_REQUEST,
            "invalid_src",
        ),
        (
            json!({ "src": "ftp://127.0.0.1/x.jpg" }),
            StatusCode::BAD_REQUEST,
            "invalid_src",
        ),
        (
            json!({ "src": "not a url" }),
            StatusCode::BAD_REQUEST,
            "invalid_src",
        ),
        (
            json!({ "src": origin.url("/missing.jpg") }),
            StatusCode::BAD_GATEWAY,
            "fetch_status",
        ),
        (
            json!({ "src": origin.url("/big.bin") }),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            json!({ "src": origin.url("/chunked-big.bin") }),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            json!({ "s3Key": "image/images/1-a.jpg" }),
            StatusCode::BAD_REQUEST,
            "no_s3",
        ),
        (
            json!({ "src": origin.url("/photo.jpg"), "s3Key": "k" }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (json!({}), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            json!({ "src": origin.url("/photo.jpg"), "quality": 0 }),
            StatusCode::BAD_REQUEST,
            "invalid_option",
        ),
        (
            json!({ "src": origin.url("/photo.jpg"), "format": "gif" }),
            StatusCode::BAD_REQUEST,
            "invalid_option",
        ),
        (
            json!({ "src": origin.url("/photo.jpg"), "colour": "red" }),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ];
    for (body, status, code) in cases {
        let (got, _, answer) = post_json(&app, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    // An over-size body upload.
    let (status, _, answer) = post_image(&app, vec![0xff; MAX_SOURCE as usize + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    // An empty one.
    let (status, _, _) = post_image(&app, Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_broken_image_fails_its_job_with_the_decoders_message() {
    let dir = tempfile::tempdir().unwrap();
    let photo = photo_jpeg(500, 400, 9);
    let origin = Origin::start(photo.clone()).await;
    let app = app(state(dir.path(), &["127.0.0.1"], 4));
    let broken = &photo[..photo.len() / 2];
    let expected = tiler_wasm::Tiler::open(broken, &tiler_wasm::Options::default())
        .expect_err("the core refuses it");

    let (status, _, view) = post_json(&app, json!({ "src": origin.url("/broken.jpg") })).await;
    // Accepted, or failed already by the time the source is read and hashed.
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::BAD_REQUEST,
        "{status} {view}"
    );
    let done = finished_job(&app, view["job"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], expected.code());
    assert_eq!(done["error"]["message"], expected.to_string().as_str());
    assert_eq!(done["error"]["status"], 400);
    // Nothing committed; the same source may be tried again (a new job).
    let id = done["id"].as_str().unwrap();
    assert!(!dir.path().join(format!("{id}.dzi")).exists());
    let (status, _, again) = post_json(&app, json!({ "src": origin.url("/broken.jpg") })).await;
    // Accepted, or already failed by the time the source is hashed: either way a new job.
    match status {
        StatusCode::ACCEPTED => {}
        StatusCode::BAD_REQUEST => assert_eq!(again["error"]["code"], expected.code()),
        other => panic!("{other}: {again}"),
    }
    assert!(again["job"].is_string(), "{again}");
    assert_ne!(again["job"], view["job"]);

    // Not a known format at all.
    let (status, _, view) = post_image(&app, b"hello, not an image".to_vec()).await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::BAD_REQUEST,
        "{status} {view}"
    );
    let done = finished_job(&app, view["job"].as_str().unwrap()).await;
    assert_eq!(done["error"]["code"], "unknown_format", "{done}");

    let (status, _, body) = send(&app, request("GET", "/jobs/0123", None, Body::empty())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
}

#[tokio::test]
async fn writes_need_authorisation_like_other_writes() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::new(&AuthSettings {
        tokens: vec!["t0ken".into()],
        ..Default::default()
    })
    .unwrap();
    let app = app(AppState::new(
        Arc::new(DiskStore::open(dir.path()).unwrap()),
        auth,
    ));
    let (status, _, _) = post_image(&app, photo_jpeg(100, 100, 10)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut authorised = request("POST", "/pyramids", Some("t0ken"), photo_jpeg(100, 100, 10));
    authorised
        .headers_mut()
        .insert("content-type", "image/jpeg".parse().unwrap());
    let (status, _, body) = send(&app, authorised).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// The names, in order, and the bytes of every entry of the ZIP at `path`, read by
/// Python's `zipfile` (another implementation than the one that wrote it), which
/// also checks every entry's CRC; stored entries only.
fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let script = r#"
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None, "a CRC does not match"
print(json.dumps([[i.filename, i.compress_type, z.read(i).hex()] for i in z.infolist()]))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<(String, u32, String)> = serde_json::from_slice(&out.stdout).unwrap();
    entries
        .into_iter()
        .map(|(name, method, hex)| {
            assert_eq!(method, 0, "{name} is not stored");
            (name, hex::decode(hex).unwrap())
        })
        .collect()
}

/// `GET /pyramids/{id}.szi` is the stored pyramid as one file: every tile and the
/// manifest byte for byte, under the names and in the order `vips dzsave --container
/// szi` uses for the same image.
#[tokio::test]
async fn a_committed_pyramid_downloads_as_one_szi_laid_out_as_vips_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let photo = photo_jpeg(1100, 700, 9);
    let app = app(state(dir.path(), &[], 4));
    let (status, _, view) = post_image(&app, photo.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{view}");
    let done = finished_job(&app, view["job"].as_str().unwrap()).await;
    let id = done["id"].as_str().unwrap().to_owned();

    let (status, headers, body) = send(
        &app,
        request("GET", &format!("/pyramids/{id}.szi"), None, Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/zip");
    let work = tempfile::tempdir().unwrap();
    let ours_path = work.path().join("ours.szi");
    std::fs::write(&ours_path, &body).unwrap();
    let ours = zip_entries(&ours_path);

    // Byte for byte what the store holds.
    let dzi = std::fs::read(dir.path().join(format!("{id}.dzi"))).unwrap();
    let tiles = tiles_on_disk(dir.path(), &id);
    assert_eq!(ours.len(), tiles.len() + 1);
    for (name, bytes) in &ours {
        let stored = match name.strip_prefix(&format!("{id}/{id}_files/")) {
            Some(tile) => tiles
                .get(tile)
                .unwrap_or_else(|| panic!("{name} not stored")),
            None => {
                assert_eq!(name, &format!("{id}/{id}.dzi"));
                &dzi
            }
        };
        assert!(bytes == stored, "{name} differs from the store");
    }

    // vips's names and order for the same image (its own metadata files aside).
    let source = work.path().join("photo.jpg");
    std::fs::write(&source, &photo).unwrap();
    let vips_out = work.path().join("v");
    let status = std::process::Command::new("vips")
        .arg("dzsave")
        .arg(&source)
        .arg(&vips_out)
        .args(["--container", "szi"])
        .status()
        .expect("vips runs");
    assert!(status.success());
    let vips_path = ["v.szi", "v"]
        .iter()
        .map(|n| work.path().join(n))
        .find(|p| p.is_file())
        .expect("vips wrote the archive");
    let theirs: Vec<String> = zip_entries(&vips_path)
        .into_iter()
        .map(|(name, _)| name.replace("v/v_files/", "").replace("v/v.dzi", ".dzi"))
        .filter(|name| !name.ends_with("properties.xml"))
        .collect();
    let ours: Vec<String> = ours
        .into_iter()
        .map(|(name, _)| {
            name.replace(&format!("{id}/{id}_files/"), "")
                .replace(&format!("{id}/{id}.dzi"), ".dzi")
        })
        .collect();
    // vips writes tiles as its threads finish them, so only the sets and the order
    // of levels (deepest first, the manifest last) are fixed.
    let set = |names: &[String]| {
        names
            .iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(set(&ours), set(&theirs));
    let levels = |names: &[String]| -> Vec<u32> {
        names
            .iter()
            .filter_map(|n| n.split('/').next()?.parse().ok())
            .collect()
    };
    for names in [&ours, &theirs] {
        assert_eq!(names.last().map(String::as_str), Some(".dzi"));
        assert!(levels(names).windows(2).all(|w| w[0] >= w[1]), "{names:?}");
    }
}
