//! The HTTP API in process (tower `oneshot`) on the disk store in a temp folder.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use jsonwebtoken::Algorithm;
use std::sync::Arc;
use tile_store::auth::{Auth, AuthSettings};
use tile_store::store::disk::DiskStore;
use tile_store::store::TileName;
use tile_store::{app, AppState, UploadLimits};
use tiler_wasm::TileFormat;

const TOKEN: &str = "static-test-token";
const SECRET: &str = "jwt-test-secret";

fn state(dir: &std::path::Path) -> AppState {
    let auth = Auth::new(&AuthSettings {
        tokens: vec![TOKEN.into()],
        jwt_secret: Some(SECRET.into()),
        ..Default::default()
    })
    .unwrap();
    AppState::new(Arc::new(DiskStore::open(dir).unwrap()), auth)
}

fn tile(level: u32, col: u32, row: u32) -> TileName {
    TileName {
        level,
        col,
        row,
        format: TileFormat::Png,
    }
}

#[tokio::test]
async fn upload_list_commit_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path()));
    let id = test_id("upload");
    let pyramid = Pyramid::new(300, 200);
    assert_eq!(pyramid.tiles.len(), 11);
    let last = tile(9, 1, 0);

    // Nothing stored yet.
    let (status, _, body) = send(
        &app,
        request("GET", &format!("/pyramids/{id}/tiles"), Some(TOKEN), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["committed"], false);
    assert_eq!(list["tiles"].as_array().unwrap().len(), 0);

    // One batch with every tile but the last.
    let batch = pyramid.batch(&[last]);
    let (status, _, body) = send(
        &app,
        request("POST", &format!("/pyramids/{id}/tiles"), Some(TOKEN), batch),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["stored"],
        10
    );

    // The commit refuses, naming the missing tile; the manifest stays invisible.
    let xml = pyramid.dzi.to_xml();
    let (status, _, body) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some(TOKEN),
            xml.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["code"], "missing_tiles");
    assert_eq!(err["error"]["missing"]["count"], 1);
    assert_eq!(
        err["error"]["missing"]["tiles"],
        serde_json::json!(["9/1_0.png"])
    );
    let (status, _, body) = send(
        &app,
        request("GET", &format!("/pyramids/{id}.dzi"), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");

    // Staged tiles are not served: nothing of an uncommitted upload is public.
    let (status, _, _) = send(
        &app,
        request("GET", &format!("/pyramids/{id}_files/9/0_0.png"), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Tiles under their final keys before the manifest (a server-side tiling job
    // under way) are served, but not as immutable.
    let early = dir.path().join(format!("{id}_files/9/0_0.png"));
    std::fs::create_dir_all(early.parent().unwrap()).unwrap();
    let early_bytes = &pyramid
        .tiles
        .iter()
        .find(|(n, _)| *n == tile(9, 0, 0))
        .unwrap()
        .1;
    std::fs::write(&early, early_bytes).unwrap();
    let (status, headers, _) = send(
        &app,
        request("GET", &format!("/pyramids/{id}_files/9/0_0.png"), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-cache");

    // Resume: the listing says what is there; upload the rest singly.
    let (_, _, body) = send(
        &app,
        request("GET", &format!("/pyramids/{id}/tiles"), Some(TOKEN), ""),
    )
    .await;
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let listed: Vec<&str> = list["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 10);
    assert!(listed.contains(&"9/0_0.png") && !listed.contains(&"9/1_0.png"));
    let last_bytes = pyramid
        .tiles
        .iter()
        .find(|(n, _)| *n == last)
        .unwrap()
        .1
        .clone();
    let (status, _, body) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}_files/9/1_0.png"),
            Some(TOKEN),
            last_bytes.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));

    // Commit: 201, then 200 for the same manifest (any spelling), 409 for another.
    let (status, _, body) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some(TOKEN),
            xml.clone(),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let committed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(committed["tileCount"], 11);
    assert_eq!(committed["created"], true);
    let respelled = r#"<Image TileSize="254" Overlap="1" Format="png"><Size Width="300" Height="200"/></Image>"#;
    let (status, _, _) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some(TOKEN),
            respelled,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let other = pyramid
        .dzi
        .to_xml()
        .replace("Width=\"300\"", "Width=\"301\"");
    let (status, _, body) = send(
        &app,
        request("PUT", &format!("/pyramids/{id}.dzi"), Some(TOKEN), other),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "already_committed");

    // The manifest: vips's exact XML, strong ETag, immutable.
    let (status, headers, body) = send(
        &app,
        request("GET", &format!("/pyramids/{id}.dzi"), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8(body).unwrap(), xml);
    assert_eq!(headers["content-type"], "application/xml");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );

    // The same geometry as JSON: tiler-wasm's `Geometry`, what `parseDzi` gives the browser.
    let (status, headers, body) = send(
        &app,
        request("GET", &format!("/pyramids/{id}.json"), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let geometry: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        geometry,
        serde_json::json!({
            "width": 300, "height": 200, "tileSize": 254, "overlap": 1, "maxLevel": 9,
            // A JSON number (`f64` for JavaScript): 11.0, which JSON.parse reads as 11.
            "tileCount": 11, "format": "png", "mime": "image/png"
        })
    );
    let missing = "0".repeat(64);
    let (status, _, _) = send(
        &app,
        request("GET", &format!("/pyramids/{missing}.json"), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A tile: bytes as uploaded, content type, ETag, 304 on a matching If-None-Match.
    let uri = format!("/pyramids/{id}_files/9/1_0.png");
    let (status, headers, body) = send(&app, request("GET", &uri, None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, last_bytes);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let conditional = |tag: &str| {
        axum::http::Request::builder()
            .uri(&uri)
            .header("if-none-match", tag)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (status, headers, body) = send(&app, conditional(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers["etag"], etag.as_str());
    let (status, _, _) = send(&app, conditional(&format!("\"other\", W/{etag}"))).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, _, body) = send(&app, conditional("\"0000\"")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, last_bytes);

    // HEAD: headers, no body.
    let (status, headers, body) = send(&app, request("HEAD", &uri, None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(headers["etag"], etag.as_str());

    // The disk holds exactly the Deep Zoom layout.
    assert_eq!(
        std::fs::read_to_string(dir.path().join(format!("{id}.dzi"))).unwrap(),
        xml
    );
    for (name, bytes) in &pyramid.tiles {
        let path = dir.path().join(format!("{id}_files/{}", name.relative()));
        assert_eq!(&std::fs::read(&path).unwrap(), bytes, "{}", path.display());
    }

    // A committed pyramid accepts identical re-uploads only.
    let (status, _, _) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}_files/9/1_0.png"),
            Some(TOKEN),
            last_bytes.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let changed = png(256, 255, 99);
    let (status, _, body) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}_files/9/1_0.png"),
            Some(TOKEN),
            changed,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "committed");

    // Delete: the manifest goes first, then every tile.
    let (status, _, body) = send(
        &app,
        request("DELETE", &format!("/pyramids/{id}"), Some(TOKEN), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let deleted: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(deleted["wasCommitted"], true);
    assert_eq!(deleted["removedTiles"], 11);
    for uri in [format!("/pyramids/{id}.dzi"), uri] {
        let (status, _, _) = send(&app, request("GET", &uri, None, "")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
    assert!(!dir.path().join(format!("{id}_files")).exists());
    assert!(!dir.path().join(format!("{id}.dzi")).exists());
}

#[tokio::test]
async fn writes_need_valid_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path()));
    let id = test_id("auth");
    let uri = format!("/pyramids/{id}_files/0/0_0.png");
    let put = |token: Option<String>| request("PUT", &uri, token.as_deref(), png(1, 1, 0));
    let hour = 3600;

    let refused = [
        ("missing", None),
        ("wrong static token", Some("not-the-token".to_owned())),
        (
            "wrong secret",
            Some(jwt("other-secret", Algorithm::HS256, now() + hour)),
        ),
        ("expired", Some(jwt(SECRET, Algorithm::HS256, now() - hour))),
        ("alg none", Some(unsigned_jwt(now() + hour))),
        (
            "alg HS512 with the right secret",
            Some(jwt(SECRET, Algorithm::HS512, now() + hour)),
        ),
    ];
    for (what, token) in refused {
        let (status, headers, body) = send(&app, put(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(error_code(&body), "unauthorized", "{what}");
        assert_eq!(headers["www-authenticate"], "Bearer", "{what}");
    }
    let (status, _, _) = send(
        &app,
        request("DELETE", &format!("/pyramids/{id}"), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(
        &app,
        request("PUT", &format!("/pyramids/{id}.dzi"), None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        !dir.path().join(format!("{id}_files")).exists(),
        "a refused write stored something"
    );

    for token in [
        TOKEN.to_owned(),
        jwt(SECRET, Algorithm::HS256, now() + hour),
    ] {
        let (status, _, body) = send(&app, put(Some(token))).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    // Reads stay open (no 401); the tile is staged, so not served before a commit.
    let (status, _, _) = send(&app, request("GET", &uri, None, "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(dir.path().join("staging").exists());
}

#[tokio::test]
async fn reads_can_require_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::new(&AuthSettings {
        tokens: vec![TOKEN.into()],
        require_read_token: true,
        ..Default::default()
    })
    .unwrap();
    let app = app(AppState::new(
        Arc::new(DiskStore::open(dir.path()).unwrap()),
        auth,
    ));
    let id = test_id("read");
    for uri in [
        format!("/pyramids/{id}.dzi"),
        format!("/pyramids/{id}/levels?from=0&to=1"),
    ] {
        let (status, _, _) = send(&app, request("GET", &uri, None, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        let (status, _, _) = send(&app, request("GET", &uri, Some(TOKEN), "")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn bad_ids_and_paths_never_reach_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let app = app(state(&data));
    let id = test_id("paths");
    let png = png(1, 1, 0);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            "/pyramids/..%2F..%2Fsecret.dzi".into(),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "/pyramids/ABCDEF.dzi".into(),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            format!("/pyramids/{}.dzi", id.to_uppercase()),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            format!("/pyramids/{}.dzi", &id[1..]),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            format!("/pyramids/..%2F{}_files/0/0_0.png", &id[3..]),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            format!("/pyramids/{id}_files/..%2F..%2F/0_0.png"),
            StatusCode::BAD_REQUEST,
            "invalid_tile",
        ),
        (
            format!("/pyramids/{id}_files/01/0_0.png"),
            StatusCode::BAD_REQUEST,
            "invalid_tile",
        ),
        (
            format!("/pyramids/{id}_files/-1/0_0.png"),
            StatusCode::BAD_REQUEST,
            "invalid_tile",
        ),
        (
            format!("/pyramids/{id}_files/0/0_0.png%2F..%2F..%2Fx.png"),
            StatusCode::BAD_REQUEST,
            "invalid_extension",
        ),
        (
            format!("/pyramids/{id}_files/0/0_0.jpg"),
            StatusCode::BAD_REQUEST,
            "invalid_extension",
        ),
        (
            format!("/pyramids/{id}_files/0/0_0.gif"),
            StatusCode::BAD_REQUEST,
            "invalid_extension",
        ),
        (
            format!("/pyramids/{id}_files/99/0_0.png"),
            StatusCode::BAD_REQUEST,
            "invalid_tile",
        ),
        (
            format!("/pyramids/{id}_files/0/4294967296_0.png"),
            StatusCode::BAD_REQUEST,
            "invalid_tile",
        ),
        (
            format!("/pyramids/{id}/../../tiles"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (uri, expected, code) in &cases {
        let (status, _, body) = send(&app, request("PUT", uri, Some(TOKEN), png.clone())).await;
        assert_eq!(
            status,
            *expected,
            "PUT {uri}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(error_code(&body), *code, "PUT {uri}");
        let (status, _, body) = send(&app, request("GET", uri, None, "")).await;
        assert!(status.is_client_error(), "GET {uri}: {status}");
        assert!(!body.is_empty(), "GET {uri}");
    }
    let (status, _, body) = send(
        &app,
        request("DELETE", "/pyramids/..%2Fdata", Some(TOKEN), ""),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    // Nothing was written anywhere: not in the store, not beside it.
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("data")]);
}

/// `GET /pyramids?source=`: the committed pyramid of an image by its SHA-256 and settings, the id
/// made by the recipe here (fixed vectors from tiler-wasm's `id.rs`, computed with Python's hashlib).
#[tokio::test]
async fn a_pyramid_is_found_by_its_sources_digest_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path()));
    // SHA-256 of b"hello", and the id of b"hello" as PNG tiles of 256 without overlap.
    let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let id = "e4b654f0f8ceb5ef6382c3c9d01b58473e6408818f69258709797fb155ffde0b";
    let settings = "format=png&tileSize=256&overlap=0";
    let find = |query: String| request("GET", &format!("/pyramids?{query}"), None, "");

    let (status, _, body) = send(&app, find(format!("source={hello}&{settings}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not committed yet");
    assert_eq!(error_code(&body), "not_found");

    let pyramid = Pyramid::new(300, 200);
    assert_eq!(
        upload_and_commit(&app, id, &pyramid, Some(TOKEN)).await,
        StatusCode::CREATED
    );

    let (status, headers, body) = send(&app, find(format!("source={hello}&{settings}"))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-cache");
    let found: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(found["id"], id);
    assert_eq!(
        found["geometry"],
        serde_json::json!({
            "width": 300, "height": 200, "tileSize": 254, "overlap": 1, "maxLevel": 9,
            "tileCount": 11, "format": "png", "mime": "image/png"
        })
    );

    // Other settings are another pyramid (the default-settings id of b"hello" is not committed).
    let (status, _, _) = send(&app, find(format!("source={hello}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (query, code) in [
        (
            format!("source={}&{settings}", &hello[..63]),
            "invalid_source",
        ),
        (
            format!("source={}&{settings}", hello.to_uppercase()),
            "invalid_source",
        ),
        (
            format!("source=../{}&{settings}", &hello[3..]),
            "invalid_source",
        ),
        (settings.to_owned(), "invalid_query"),
        (format!("source={hello}&quality=0"), "invalid_option"),
        (format!("source={hello}&colour=red"), "invalid_query"),
    ] {
        let (status, _, body) = send(&app, find(query.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_code(&body), code, "{query}");
    }
}

/// Parts of a `multipart/form-data` body, read by multer (not by tile-store's writer): name, file
/// name, content type, bytes.
async fn form_parts(content_type: &str, body: Vec<u8>) -> Vec<(String, String, String, Vec<u8>)> {
    let boundary = multer::parse_boundary(content_type).expect("a multipart content type");
    let stream =
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(body)) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = form.next_field().await.expect("a well-formed part") {
        let name = field.name().expect("named").to_owned();
        let file = field.file_name().expect("a file").to_owned();
        let mime = field.content_type().expect("typed").to_string();
        parts.push((
            name,
            file,
            mime,
            field.bytes().await.expect("bytes").to_vec(),
        ));
    }
    parts
}

#[tokio::test]
async fn whole_levels_come_in_one_multipart_response() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path()));
    let id = test_id("levels");
    let levels = |query: &str| request("GET", &format!("/pyramids/{id}/levels?{query}"), None, "");

    let (status, _, body) = send(&app, levels("from=7&to=9")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not committed yet");
    assert_eq!(error_code(&body), "not_found");

    // 300×200 in 254-pixel tiles: level 9 is 2×1 tiles, 8 is 150×100 and 7 is 75×50 (one each).
    let pyramid = Pyramid::new(300, 200);
    assert_eq!(
        upload_and_commit(&app, &id, &pyramid, Some(TOKEN)).await,
        StatusCode::CREATED
    );

    let (status, headers, body) = send(&app, levels("from=7&to=9")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let content_type = headers["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    let parts = form_parts(&content_type, body.clone()).await;
    let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["7/0_0.png", "8/0_0.png", "9/0_0.png", "9/1_0.png"]);
    for (name, file, mime, bytes) in &parts {
        assert_eq!(file, name);
        assert_eq!(mime, "image/png");
        let stored = pyramid
            .tiles
            .iter()
            .find(|(t, _)| &t.relative() == name)
            .expect("a tile of the pyramid");
        assert_eq!(bytes, &stored.1, "{name}: the uploaded bytes");
    }

    // The same levels are the same bytes, so the ETag holds.
    let etag = headers["etag"].clone();
    let (_, again, same) = send(&app, levels("from=7&to=9")).await;
    assert_eq!(same, body);
    let mut conditional = levels("from=7&to=9");
    conditional
        .headers_mut()
        .insert("if-none-match", etag.clone());
    let (status, _, _) = send(&app, conditional).await;
    assert_eq!((status, &again["etag"]), (StatusCode::NOT_MODIFIED, &etag));

    for (query, code) in [
        ("from=9&to=10", "invalid_levels"),
        ("from=9&to=8", "invalid_levels"),
        ("from=0&to=4294967295", "invalid_levels"),
        ("from=7", "invalid_query"),
        ("from=-1&to=9", "invalid_query"),
        ("from=7&to=9&level=3", "invalid_query"),
    ] {
        let (status, _, body) = send(&app, levels(query)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_code(&body), code, "{query}");
    }
    let (status, _, body) = send(
        &app,
        request("GET", "/pyramids/..%2Fx/levels?from=0&to=1", None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_id");
}

#[tokio::test]
async fn tile_bytes_must_match_their_extension_and_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path()));
    let id = test_id("magic");
    let jpeg_uri = format!("/pyramids/{id}_files/0/0_0.jpeg");
    let (status, _, body) = send(&app, request("PUT", &jpeg_uri, Some(TOKEN), png(1, 1, 0))).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&body), "wrong_image_type");
    let (status, _, _) = send(&app, request("PUT", &jpeg_uri, Some(TOKEN), "GIF89a....")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A batch with one bad frame stores nothing.
    let good = (tile(0, 0, 0), png(1, 1, 0));
    let bad = (
        TileName {
            format: TileFormat::Webp,
            ..tile(1, 0, 0)
        },
        png(1, 1, 0),
    );
    let body =
        tile_store::routes::batch::encode([(good.0, good.1.as_slice()), (bad.0, bad.1.as_slice())]);
    let (status, _, resp) = send(
        &app,
        request("POST", &format!("/pyramids/{id}/tiles"), Some(TOKEN), body),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        String::from_utf8_lossy(&resp)
    );
    let (status, _, resp) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some(TOKEN),
            "\0\0\0\x05{bad}",
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&resp).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_batch")
    );
    let (_, _, listing) = send(
        &app,
        request("GET", &format!("/pyramids/{id}/tiles"), Some(TOKEN), ""),
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&listing).unwrap()["tiles"],
        serde_json::json!([])
    );

    // With the geometry declared, addresses and extensions outside it are refused.
    let geometry = "width=300&height=200&tileSize=254&overlap=1&format=png";
    let put = |uri: String| request("PUT", &uri, Some(TOKEN), png(1, 1, 0));
    let (status, _, body) = send(
        &app,
        put(format!("/pyramids/{id}_files/9/2_0.png?{geometry}")),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_tile")
    );
    let (status, _, body) = send(
        &app,
        put(format!("/pyramids/{id}_files/10/0_0.png?{geometry}")),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_tile")
    );
    let (status, _, body) = send(
        &app,
        put(format!("/pyramids/{id}_files/0/0_0.png?width=300")),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    let (status, _, _) = send(
        &app,
        put(format!("/pyramids/{id}_files/9/1_0.png?{geometry}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Broken manifests are refused before anything is looked up.
    for xml in ["", "<Image/>", "<Image Format=\"png\" Overlap=\"1\" TileSize=\"254\"><Size Width=\"0\" Height=\"1\"/></Image>"] {
        let (status, _, body) = send(&app, request("PUT", &format!("/pyramids/{id}.dzi"), Some(TOKEN), xml)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{xml}");
        assert_eq!(error_code(&body), "dzi");
    }
    let huge = r#"<Image Format="png" Overlap="0" TileSize="16"><Size Width="100000" Height="100000"/></Image>"#;
    let (status, _, body) = send(
        &app,
        request("PUT", &format!("/pyramids/{id}.dzi"), Some(TOKEN), huge),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "too_many_tiles")
    );
}

#[tokio::test]
async fn size_limits_answer_413() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = state(dir.path());
    let tile_bytes = png(40, 40, 1);
    state.limits = UploadLimits {
        max_tile_bytes: tile_bytes.len() + 10,
        max_request_bytes: 3 * tile_bytes.len(),
        ..UploadLimits::default()
    };
    let app = app(state);
    let id = test_id("limits");
    let big = png(200, 200, 2);
    assert!(big.len() > tile_bytes.len() + 10);

    let (status, _, body) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}_files/0/0_0.png"),
            Some(TOKEN),
            big.clone(),
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );

    // A tile over the limit inside a batch that fits.
    let one_big = tile_store::routes::batch::encode([(
        tile(0, 0, 0),
        &big[..big.len().min(2 * tile_bytes.len())],
    )]);
    let (status, _, body) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some(TOKEN),
            one_big,
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );

    // A batch over the request limit, with and without a declared length.
    let many =
        tile_store::routes::batch::encode((0..4).map(|c| (tile(5, c, 0), tile_bytes.as_slice())));
    let (status, _, body) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some(TOKEN),
            many.clone(),
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    let streamed = axum::body::Body::from_stream(futures::stream::iter(
        many.chunks(100)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    ));
    let (status, _, body) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some(TOKEN),
            streamed,
        ),
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );

    let fits =
        tile_store::routes::batch::encode((0..2).map(|c| (tile(5, c, 0), tile_bytes.as_slice())));
    let (status, _, body) = send(
        &app,
        request("POST", &format!("/pyramids/{id}/tiles"), Some(TOKEN), fits),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn cors_and_the_web_app() {
    let dir = tempfile::tempdir().unwrap();
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>Tessera</title>",
    )
    .unwrap();
    std::fs::write(web.path().join("app.js"), "console.log(1)").unwrap();
    std::fs::create_dir(web.path().join("assets")).unwrap();
    std::fs::write(
        web.path().join("assets/index-DZnQTezH.js"),
        "console.log(2)",
    )
    .unwrap();
    let mut state = state(dir.path());
    state.cors_origins = vec!["http://localhost:5173".into()];
    state.web_dir = Some(web.path().to_owned());
    let app = app(state);

    let (status, headers, body) = send(&app, request("GET", "/app.js", None, "")).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, &b"console.log(1)"[..])
    );
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert_eq!(
        headers["cache-control"], "no-cache",
        "an unhashed file is revalidated"
    );
    let (status, headers, _) =
        send(&app, request("GET", "/assets/index-DZnQTezH.js", None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["cache-control"], "public, max-age=31536000, immutable",
        "a bundler's content-hashed file is kept"
    );
    let (status, headers, body) = send(&app, request("GET", "/viewer/some/route", None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("Tessera"));
    assert_eq!(
        headers["cache-control"], "no-cache",
        "index.html is revalidated: a new build is seen at once"
    );
    // A missing file is a 404, not the app's index page.
    let (status, _, body) = send(&app, request("GET", "/samples/typo.jpg", None, "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!String::from_utf8_lossy(&body).contains("Tessera"));
    // Unknown API paths stay JSON 404s rather than the web app.
    let (status, _, body) = send(&app, request("GET", "/pyramids/a/b/c/d", None, "")).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );

    let preflight = axum::http::Request::builder()
        .method("OPTIONS")
        .uri(format!("/pyramids/{}/tiles", test_id("cors")))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, headers, _) = send(&app, preflight).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let get = axum::http::Request::builder()
        .uri("/healthz")
        .header("origin", "http://evil.example")
        .body(axum::body::Body::empty())
        .unwrap();
    let (_, headers, _) = send(&app, get).await;
    assert!(!headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn refuses_anonymous_writes_on_public_addresses() {
    use clap::Parser;
    use tile_store::config::{Cli, Command};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let config = |extra: &[&str]| {
        let mut args = vec!["tile-store", "serve", "--data-dir", data];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args).unwrap().command {
            Command::Serve(c) => *c,
            Command::Tile(_) => unreachable!(),
        }
    };
    let refused =
        tile_store::serve::state_from_config(&config(&["--listen", "0.0.0.0:8080"])).await;
    let message = refused
        .expect_err("anonymous writes on 0.0.0.0")
        .to_string();
    assert!(message.contains("--allow-anonymous-writes"), "{message}");
    for ok in [
        &["--listen", "0.0.0.0:8080", "--allow-anonymous-writes"][..],
        &["--listen", "0.0.0.0:8080", "--token", "t"][..],
        &["--listen", "[::1]:8080"][..],
        &[][..],
    ] {
        let state = tile_store::serve::state_from_config(&config(ok)).await;
        assert!(state.is_ok(), "{ok:?}");
    }
}

#[tokio::test]
async fn concurrent_uploads_and_commits_of_one_id_agree() {
    let dir = tempfile::tempdir().unwrap();
    // Two instances over one folder, as two processes sharing a disk would be.
    let first = app(state(dir.path()));
    let second = app(state(dir.path()));
    let id = test_id("concurrent");
    let pyramid = Pyramid::new(1000, 700);
    let batch = pyramid.batch(&[]);
    let xml = pyramid.dzi.to_xml();

    let upload = |app: axum::Router| {
        let (batch, xml, id) = (batch.clone(), xml.clone(), id.clone());
        tokio::spawn(async move {
            let (status, _, body) = send(
                &app,
                request("POST", &format!("/pyramids/{id}/tiles"), Some(TOKEN), batch),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            let (status, _, body) = send(
                &app,
                request("PUT", &format!("/pyramids/{id}.dzi"), Some(TOKEN), xml),
            )
            .await;
            (status, String::from_utf8_lossy(&body).into_owned())
        })
    };
    let handles: Vec<_> = (0..4)
        .map(|i| {
            upload(if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    for handle in handles {
        let (status, body) = handle.await.unwrap();
        statuses.push(status);
        bodies.push(body);
    }
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::CREATED
        ],
        "{bodies:?}"
    );

    for (name, bytes) in &pyramid.tiles {
        let path = dir.path().join(format!("{id}_files/{}", name.relative()));
        assert_eq!(&std::fs::read(&path).unwrap(), bytes, "{}", path.display());
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
