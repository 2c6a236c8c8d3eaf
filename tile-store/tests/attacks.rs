//! Attacks on the API: every hostile request is refused with the right status and
//! leaves the store exactly as it was (every file, hidden ones included, byte for
//! byte). In process for the routes; over real TCP for what hyper refuses first
//! (oversized or trickled headers).
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use jsonwebtoken::Algorithm;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tile_store::auth::{Auth, AuthSettings};
use tile_store::serve::{serve_connections, ConnectionLimits};
use tile_store::store::disk::DiskStore;
use tile_store::store::TileName;
use tile_store::{app, AppState, UploadLimits};
use tiler_wasm::TileFormat;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "attack-test-token";
const SECRET: &str = "attack-test-secret";
const MAX_TILE: usize = 1 << 20;
const MAX_REQUEST: usize = 4 << 20;

fn state(dir: &Path) -> AppState {
    let auth = Auth::new(&AuthSettings {
        tokens: vec![TOKEN.into()],
        jwt_secret: Some(SECRET.into()),
        ..Default::default()
    })
    .unwrap();
    let mut state = AppState::new(Arc::new(DiskStore::open(dir).unwrap()), auth);
    state.limits = UploadLimits {
        max_tile_bytes: MAX_TILE,
        max_request_bytes: MAX_REQUEST,
        ..UploadLimits::default()
    };
    state
}

/// Every file under `dir` (hidden and temporary ones too) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                out.insert(format!("{name}/"), Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn png_tile(level: u32, col: u32, row: u32) -> TileName {
    TileName {
        level,
        col,
        row,
        format: TileFormat::Png,
    }
}

/// One hostile request and what it must get.
struct Attack {
    what: String,
    request: Request<Body>,
    status: StatusCode,
    code: Option<&'static str>,
}

/// Stands for "400, 404 or 405": a path no route matches is a 404 (405 when it has the
/// shape of a route without that method), one a route matches but whose parts do
/// not parse is a 400; either way nothing is touched.
const UNROUTABLE: StatusCode = StatusCode::IM_A_TEAPOT;

fn attack(
    what: impl Into<String>,
    request: Request<Body>,
    status: StatusCode,
    code: Option<&'static str>,
) -> Attack {
    Attack {
        what: what.into(),
        request,
        status,
        code,
    }
}

fn with_header(method: &str, uri: &str, name: &str, value: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header(name, value)
        .body(Body::from(body))
        .unwrap()
}

/// A committed pyramid, a partly uploaded one, and the attacks against them.
#[tokio::test]
async fn hostile_requests_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let app = app(state(&data));

    // The store under attack: one committed 300×200 pyramid, one partial upload.
    let committed = test_id("attacks-committed");
    let partial = test_id("attacks-partial");
    let pyramid = Pyramid::new(300, 200);
    for id in [&committed, &partial] {
        let (status, _, body) = send(
            &app,
            request(
                "POST",
                &format!("/pyramids/{id}/tiles"),
                Some(TOKEN),
                pyramid.batch(&[png_tile(9, 1, 0)]),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    let last = &pyramid
        .tiles
        .iter()
        .find(|(n, _)| *n == png_tile(9, 1, 0))
        .unwrap()
        .1;
    let (status, _, _) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{committed}_files/9/1_0.png"),
            Some(TOKEN),
            last.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let xml = pyramid.dzi.to_xml();
    let (status, _, _) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{committed}.dzi"),
            Some(TOKEN),
            xml.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let before = snapshot(&data);
    assert!(before.len() > 20, "{before:?}");

    let png = png(1, 1, 0);
    let hour = 3600;
    let bearer = |t: &str| format!("Bearer {t}");
    let bad = StatusCode::BAD_REQUEST;
    let mut attacks = Vec::new();

    // Path traversal and malformed ids, on every write route and on reads.
    let traversals = [
        "/pyramids/../../etc/passwd".to_owned(),
        "/pyramids/..%2F..%2Fetc%2Fpasswd.dzi".to_owned(),
        "/pyramids/%2e%2e%2f%2e%2e%2fetc%2fpasswd.dzi".to_owned(),
        "/pyramids/%2E%2E/%2E%2E/x.dzi".to_owned(),
        "/pyramids/..%5C..%5Cwindows%5Cwin.ini.dzi".to_owned(),
        format!("/pyramids/{committed}%5C..%5C..%5Cx.dzi"),
        format!("/pyramids/{committed}_files/..%2F..%2F..%2F/0_0.png"),
        format!("/pyramids/{committed}_files/%2e%2e/0_0.png"),
        format!("/pyramids/{committed}_files/9/0_0.png%2F..%2F..%2Fx.png"),
        format!("/pyramids/{committed}_files/9/..%5C0_0.png"),
        format!("/pyramids/{}%00.dzi", &committed[..63]),
        format!("/pyramids/{}.dzi", "g".repeat(64)),
        format!("/pyramids/{}.dzi", committed.to_uppercase()),
        format!("/pyramids/{}.dzi", "a".repeat(65)),
        format!("/pyramids/{}.dzi", "a".repeat(10_000)),
        format!("/pyramids/{}_files/0/0_0.png", "0".repeat(60_000)),
        format!("/pyramids/{}%C3%A9.dzi", &committed[..62]),
        format!("/pyramids/{committed}_files/9/00_0.png"),
        format!("/pyramids/{committed}_files/+9/0_0.png"),
        format!("/pyramids/{committed}_files/9/0_0.PNG"),
        format!("/pyramids/{committed}_files/9/0_0.png.png"),
        format!("/pyramids/{committed}_files/99999999999/0_0.png"),
    ];
    for uri in &traversals {
        let is_tile = uri.contains("_files/");
        if is_tile {
            attacks.push(attack(
                format!("PUT {uri}"),
                request("PUT", uri, Some(TOKEN), png.clone()),
                UNROUTABLE,
                None,
            ));
        } else {
            attacks.push(attack(
                format!("PUT (commit) {uri}"),
                request("PUT", uri, Some(TOKEN), xml.clone()),
                UNROUTABLE,
                None,
            ));
            let as_id = uri.trim_end_matches(".dzi");
            attacks.push(attack(
                format!("DELETE {as_id}"),
                request("DELETE", as_id, Some(TOKEN), ""),
                UNROUTABLE,
                None,
            ));
            attacks.push(attack(
                format!("POST {as_id}/tiles"),
                request(
                    "POST",
                    &format!("{as_id}/tiles"),
                    Some(TOKEN),
                    pyramid.batch(&[]),
                ),
                UNROUTABLE,
                None,
            ));
        }
        attacks.push(attack(
            format!("GET {uri}"),
            request("GET", uri, None, ""),
            UNROUTABLE,
            None,
        ));
    }

    // Credentials: missing, wrong, forged or expired, on every write route.
    let committed_tile = format!("/pyramids/{committed}_files/9/0_0.png");
    let refused_tokens: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty", Some(String::new())),
        ("wrong static token", Some("not-the-token".into())),
        (
            "wrong secret",
            Some(jwt("other-secret", Algorithm::HS256, now() + hour)),
        ),
        ("expired", Some(jwt(SECRET, Algorithm::HS256, now() - hour))),
        ("alg none", Some(unsigned_jwt(now() + hour))),
        (
            "alg HS384",
            Some(jwt(SECRET, Algorithm::HS384, now() + hour)),
        ),
        ("garbage", Some("a.b.c".into())),
        ("basic scheme", None),
    ];
    for (what, token) in &refused_tokens {
        let auth = match (what, token) {
            (&"basic scheme", _) => Some(format!("Basic {}", "dXNlcjpwYXNz")),
            (_, Some(t)) => Some(bearer(t)),
            (_, None) => None,
        };
        let build = |method: &str, uri: &str, body: Vec<u8>| {
            let mut b = Request::builder().method(method).uri(uri);
            if let Some(a) = &auth {
                b = b.header("authorization", a);
            }
            b.body(Body::from(body)).unwrap()
        };
        let ok_png = pyramid.tiles[0].1.clone();
        for (route, req) in [
            (
                "PUT tile",
                build(
                    "PUT",
                    &format!("/pyramids/{partial}_files/9/1_0.png"),
                    last.clone(),
                ),
            ),
            ("PUT committed tile", build("PUT", &committed_tile, ok_png)),
            (
                "POST batch",
                build(
                    "POST",
                    &format!("/pyramids/{partial}/tiles"),
                    pyramid.batch(&[]),
                ),
            ),
            (
                "commit",
                build(
                    "PUT",
                    &format!("/pyramids/{partial}.dzi"),
                    xml.clone().into_bytes(),
                ),
            ),
            (
                "DELETE committed",
                build("DELETE", &format!("/pyramids/{committed}"), Vec::new()),
            ),
            (
                "DELETE partial",
                build("DELETE", &format!("/pyramids/{partial}"), Vec::new()),
            ),
            (
                "list",
                build("GET", &format!("/pyramids/{partial}/tiles"), Vec::new()),
            ),
        ] {
            attacks.push(attack(
                format!("{route} with {what} credentials"),
                req,
                StatusCode::UNAUTHORIZED,
                Some("unauthorized"),
            ));
        }
    }

    // Bytes that are not what their extension says.
    let html = b"<!doctype html><script>alert(1)</script>".to_vec();
    for (ext, bytes) in [
        ("jpeg", png.clone()),
        ("jpeg", html.clone()),
        ("png", b"\xFF\xD8\xFF\xE0 not really".to_vec()),
        ("png", Vec::new()),
        ("webp", b"RIFF\x04\0\0\0WAVEfmt ".to_vec()),
        ("webp", html.clone()),
    ] {
        attacks.push(attack(
            format!("PUT .{ext} holding {} bytes of something else", bytes.len()),
            request(
                "PUT",
                &format!("/pyramids/{partial}_files/0/0_0.{ext}"),
                Some(TOKEN),
                bytes.clone(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("wrong_image_type"),
        ));
        let name = TileName {
            format: ext.parse().unwrap(),
            ..png_tile(0, 0, 0)
        };
        let mut frames: Vec<(TileName, &[u8])> = pyramid
            .tiles
            .iter()
            .map(|(n, b)| (*n, b.as_slice()))
            .collect();
        frames.push((name, bytes.as_slice()));
        attacks.push(attack(
            format!("batch with a .{ext} frame of something else"),
            request(
                "POST",
                &format!("/pyramids/{partial}/tiles"),
                Some(TOKEN),
                tile_store::routes::batch::encode(frames),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("wrong_image_type"),
        ));
    }

    // Tiles outside the geometry: of the committed pyramid, or of one declared.
    let geometry = "width=300&height=200&tileSize=254&overlap=1&format=png";
    for (uri, code) in [
        (format!("/pyramids/{committed}_files/10/0_0.png"), "invalid_tile"),
        (format!("/pyramids/{committed}_files/9/2_0.png"), "invalid_tile"),
        (format!("/pyramids/{committed}_files/9/0_1.png"), "invalid_tile"),
        (format!("/pyramids/{committed}_files/33/0_0.png"), "invalid_tile"),
        (format!("/pyramids/{committed}_files/0/4294967295_0.png"), "invalid_tile"),
        (format!("/pyramids/{partial}_files/9/5_0.png?{geometry}"), "invalid_tile"),
        (format!("/pyramids/{partial}_files/12/0_0.png?{geometry}"), "invalid_tile"),
        (format!("/pyramids/{partial}_files/40/0_0.png"), "invalid_tile"),
        (
            format!("/pyramids/{partial}_files/0/0_0.png?width=4294967295&height=4294967295&tileSize=1&overlap=0&format=png&width=1"),
            "invalid_query",
        ),
        (format!("/pyramids/{partial}_files/0/0_0.png?width=-1"), "invalid_query"),
    ] {
        attacks.push(attack(
            format!("PUT {uri}"),
            request("PUT", &uri, Some(TOKEN), png.clone()),
            bad,
            Some(code),
        ));
    }
    let (_, committed_first) = &pyramid.tiles[0];
    let mut changed = committed_first.clone();
    changed.extend(b"trailing");
    attacks.push(attack(
        "a changed tile of a committed pyramid",
        request(
            "PUT",
            &format!(
                "/pyramids/{committed}_files/{}",
                pyramid.tiles[0].0.relative()
            ),
            Some(TOKEN),
            changed,
        ),
        StatusCode::CONFLICT,
        Some("committed"),
    ));
    let mut out_of_range: Vec<(TileName, &[u8])> = pyramid
        .tiles
        .iter()
        .map(|(n, b)| (*n, b.as_slice()))
        .collect();
    out_of_range.push((png_tile(9, 7, 7), png.as_slice()));
    attacks.push(attack(
        "a batch of the committed pyramid with one tile outside it",
        request(
            "POST",
            &format!("/pyramids/{committed}/tiles"),
            Some(TOKEN),
            tile_store::routes::batch::encode(out_of_range.clone()),
        ),
        bad,
        Some("invalid_tile"),
    ));
    attacks.push(attack(
        "a batch with a declared geometry and one tile outside it",
        request(
            "POST",
            &format!("/pyramids/{partial}/tiles?{geometry}"),
            Some(TOKEN),
            tile_store::routes::batch::encode(out_of_range),
        ),
        bad,
        Some("invalid_tile"),
    ));
    let jpeg_dzi = xml.replace("Format=\"png\"", "Format=\"jpeg\"");
    attacks.push(attack(
        "a different manifest for the committed pyramid",
        request(
            "PUT",
            &format!("/pyramids/{committed}.dzi"),
            Some(TOKEN),
            jpeg_dzi.clone(),
        ),
        StatusCode::CONFLICT,
        Some("already_committed"),
    ));
    attacks.push(attack(
        "a commit of the partial pyramid as JPEG (none of its tiles)",
        request(
            "PUT",
            &format!("/pyramids/{partial}.dzi"),
            Some(TOKEN),
            jpeg_dzi,
        ),
        StatusCode::CONFLICT,
        Some("missing_tiles"),
    ));
    attacks.push(attack(
        "a commit of the partial pyramid with a tile missing",
        request(
            "PUT",
            &format!("/pyramids/{partial}.dzi"),
            Some(TOKEN),
            xml.clone(),
        ),
        StatusCode::CONFLICT,
        Some("missing_tiles"),
    ));
    for manifest in [
        "<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><Image Format=\"&b;\"/>".to_owned(),
        "<Image Format=\"png\" Overlap=\"1\" TileSize=\"254\"><Size Width=\"4294967295\" Height=\"4294967295\"/></Image>".to_owned(),
        "<Image Format=\"png\" Overlap=\"300\" TileSize=\"254\"><Size Width=\"300\" Height=\"200\"/></Image>".to_owned(),
        "<Image Format=\"gif\" Overlap=\"1\" TileSize=\"254\"><Size Width=\"300\" Height=\"200\"/></Image>".to_owned(),
        format!("<Image>{}</Image>", "<a>".repeat(10_000)),
    ] {
        attacks.push(attack(
            format!("a hostile manifest ({} bytes)", manifest.len()),
            request("PUT", &format!("/pyramids/{partial}.dzi"), Some(TOKEN), manifest),
            bad,
            None,
        ));
    }

    // Oversized bodies, declared or not.
    let big_png = {
        let mut b = png.clone();
        b.resize(MAX_TILE + 1, 0);
        b
    };
    attacks.push(attack(
        "a tile one byte over the limit",
        request(
            "PUT",
            &format!("/pyramids/{partial}_files/9/1_0.png"),
            Some(TOKEN),
            big_png.clone(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE,
        Some("too_large"),
    ));
    attacks.push(attack(
        "a tile declaring a huge Content-Length",
        with_header(
            "PUT",
            &format!("/pyramids/{partial}_files/9/1_0.png"),
            "content-length",
            "999999999999",
            Vec::new(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE,
        Some("too_large"),
    ));
    let mut many: Vec<(TileName, &[u8])> = Vec::new();
    for c in 0..5 {
        many.push((png_tile(9, c, 0), big_png[..MAX_TILE - 1].as_ref()));
    }
    attacks.push(attack(
        "a batch over the request limit",
        request(
            "POST",
            &format!("/pyramids/{partial}/tiles"),
            Some(TOKEN),
            tile_store::routes::batch::encode(many),
        ),
        StatusCode::PAYLOAD_TOO_LARGE,
        Some("too_large"),
    ));
    attacks.push(attack(
        "a batch frame declaring a 4 GiB tile",
        request(
            "POST",
            &format!("/pyramids/{partial}/tiles"),
            Some(TOKEN),
            {
                let header = br#"{"level":9,"col":1,"row":0,"ext":"png","len":4294967295}"#;
                let mut b = (header.len() as u32).to_be_bytes().to_vec();
                b.extend_from_slice(header);
                b.extend_from_slice(&png);
                b
            },
        ),
        StatusCode::PAYLOAD_TOO_LARGE,
        Some("too_large"),
    ));
    attacks.push(attack(
        "a manifest over 64 KiB",
        request(
            "PUT",
            &format!("/pyramids/{partial}.dzi"),
            Some(TOKEN),
            format!("{xml}<!--{}-->", " ".repeat(70_000)),
        ),
        StatusCode::PAYLOAD_TOO_LARGE,
        Some("too_large"),
    ));
    attacks.push(attack(
        "a POST to a manifest",
        request(
            "POST",
            &format!("/pyramids/{partial}.dzi"),
            Some(TOKEN),
            xml.clone(),
        ),
        StatusCode::METHOD_NOT_ALLOWED,
        Some("method_not_allowed"),
    ));

    let count = attacks.len();
    for Attack {
        what,
        request,
        status,
        code,
    } in attacks
    {
        let (got, _, body) = send(&app, request).await;
        if status == UNROUTABLE {
            assert!(
                matches!(
                    got,
                    StatusCode::BAD_REQUEST
                        | StatusCode::NOT_FOUND
                        | StatusCode::METHOD_NOT_ALLOWED
                ),
                "{what}: {got} {}",
                String::from_utf8_lossy(&body)
            );
        } else {
            assert_eq!(got, status, "{what}: {}", String::from_utf8_lossy(&body));
        }
        if let Some(code) = code {
            assert_eq!(error_code(&body), code, "{what}");
        } else {
            assert!(!error_code(&body).is_empty(), "{what}");
        }
        assert!(snapshot(&data) == before, "{what} changed the store");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "{what} wrote beside the store"
        );
    }
    assert!(count > 150, "{count} attacks");
    eprintln!("{count} hostile requests refused, the store unchanged after each");

    // The committed pyramid is still whole and served.
    for (name, bytes) in &pyramid.tiles {
        let (status, _, body) = send(
            &app,
            request(
                "GET",
                &format!("/pyramids/{committed}_files/{}", name.relative()),
                None,
                "",
            ),
        )
        .await;
        assert_eq!((status, &body), (StatusCode::OK, bytes));
    }
}

/// Tiles uploaded before any geometry was known, outside the one finally committed,
/// are removed by the commit: a committed pyramid serves only its own tiles.
#[tokio::test]
async fn the_commit_removes_tiles_outside_its_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path()));
    let id = test_id("strays");
    let pyramid = Pyramid::new(300, 200);
    let stray_png = png(3, 3, 9);
    let mut frames: Vec<(TileName, &[u8])> = pyramid
        .tiles
        .iter()
        .map(|(n, b)| (*n, b.as_slice()))
        .collect();
    frames.push((png_tile(9, 5, 5), stray_png.as_slice()));
    frames.push((png_tile(20, 0, 0), stray_png.as_slice()));
    let jpeg = TileName {
        format: TileFormat::Jpeg,
        ..png_tile(0, 0, 0)
    };
    let jpeg_bytes = b"\xFF\xD8\xFF\xE0 a jpeg".to_vec();
    frames.push((jpeg, jpeg_bytes.as_slice()));
    let (status, _, body) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some(TOKEN),
            tile_store::routes::batch::encode(frames),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some(TOKEN),
            pyramid.dzi.to_xml(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for stray in ["9/5_5.png", "20/0_0.png", "0/0_0.jpeg"] {
        let (status, _, _) = send(
            &app,
            request("GET", &format!("/pyramids/{id}_files/{stray}"), None, ""),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{stray}");
    }
    let (_, _, listing) = send(
        &app,
        request("GET", &format!("/pyramids/{id}/tiles"), Some(TOKEN), ""),
    )
    .await;
    let listing: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    assert_eq!(
        listing["tiles"].as_array().unwrap().len(),
        pyramid.tiles.len()
    );
}

/// What hyper refuses before the router: oversized and trickled headers.
#[tokio::test]
async fn oversized_and_trickled_headers_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let service = app(state(&data));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        header_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_connections(listener, service, &limits, async {
            let _ = stopped.await;
        })
        .await;
    });
    let id = test_id("headers");
    let png = png(1, 1, 0);

    /// Sends `head` (and `body`) and returns the status line, or "" when the
    /// server closed the connection without an answer.
    async fn exchange(addr: std::net::SocketAddr, head: &[u8], body: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        // The server may answer and close before the whole head is written.
        let _ = stream.write_all(head).await;
        let _ = stream.write_all(body).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
            .await
            .expect("the server answers or closes the connection");
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    }
    let put_head = |extra: &str| {
        format!(
            "PUT /pyramids/{id}_files/0/0_0.png HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\
             Content-Length: {}\r\n{extra}\r\n",
            png.len()
        )
        .into_bytes()
    };

    let huge = format!("X-Filler: {}\r\n", "a".repeat(200 << 10));
    let status = exchange(addr, &put_head(&huge), &png).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status:?}");
    let many: String = (0..500).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let status = exchange(addr, &put_head(&many), &png).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status:?}");

    // Headers trickled and never finished: the connection is dropped.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"PUT /pyramids/").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a trickling client kept its connection");

    assert!(
        !data.exists() || snapshot(&data).is_empty(),
        "a refused request wrote"
    );
    // The same request with sane headers is served.
    let status = exchange(addr, &put_head(""), &png).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");

    let _ = stop.send(());
    server.await.unwrap();
}
