//! Helpers of the server-side tiling tests: photo-like JPEGs, the pyramid the core
//! makes natively, a static file server on 127.0.0.1, and job polling.
#![allow(dead_code, clippy::unwrap_used)]

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use image::{ImageEncoder, Rgb, RgbImage};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiler_wasm::{Options, Tiler};

/// A photo-like JPEG (smooth gradients with some texture), `width`×`height`.
pub fn photo_jpeg(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ seed.wrapping_mul(31)) % 23;
        Rgb([
            ((x * 255 / width) as u8).wrapping_add(noise as u8),
            ((y * 255 / height) as u8).wrapping_add(seed as u8),
            (((x + y) * 127 / (width + height)) as u8).wrapping_add((noise / 2) as u8),
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .expect("JPEG encodes");
    out
}

/// What the core makes natively for `source` with default options: the id, the
/// `.dzi` text and every tile by `level/col_row.ext`.
pub struct NativePyramid {
    pub id: String,
    pub dzi: String,
    pub tiles: BTreeMap<String, Vec<u8>>,
}

pub fn native_pyramid(source: &[u8]) -> NativePyramid {
    let options = Options::default();
    let mut tiler = Tiler::open(source, &options).expect("the core opens it");
    let ext = tiler.format().extension();
    let mut tiles = BTreeMap::new();
    tiler
        .walk(|addr, bytes| -> Result<(), tiler_wasm::Error> {
            tiles.insert(
                format!("{}/{}_{}.{ext}", addr.level, addr.col, addr.row),
                bytes,
            );
            Ok(())
        })
        .expect("the core tiles it");
    NativePyramid {
        id: tiler_wasm::pyramid_id(source, &options),
        dzi: tiler.dzi().to_xml(),
        tiles,
    }
}

/// Every tile stored under `{root}/{id}_files`, by `level/col_row.ext`.
pub fn tiles_on_disk(root: &Path, id: &str) -> BTreeMap<String, Vec<u8>> {
    let mut tiles = BTreeMap::new();
    let files = root.join(format!("{id}_files"));
    for level in std::fs::read_dir(&files).unwrap() {
        let level = level.unwrap();
        for tile in std::fs::read_dir(level.path()).unwrap() {
            let tile = tile.unwrap();
            let name = format!(
                "{}/{}",
                level.file_name().to_string_lossy(),
                tile.file_name().to_string_lossy()
            );
            tiles.insert(name, std::fs::read(tile.path()).unwrap());
        }
    }
    tiles
}

/// A JSON request through the router.
pub async fn post_json(
    app: &Router,
    body: serde_json::Value,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let request = Request::builder()
        .method("POST")
        .uri("/pyramids")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, headers, body) = super::common::send(app, request).await;
    (status, headers, json(&body))
}

/// An image sent as the body of `POST /pyramids`.
pub async fn post_image(
    app: &Router,
    bytes: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let request = Request::builder()
        .method("POST")
        .uri("/pyramids")
        .header("content-type", "image/jpeg")
        .body(Body::from(bytes))
        .unwrap();
    let (status, headers, body) = super::common::send(app, request).await;
    (status, headers, json(&body))
}

pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("JSON body, got {:?}", String::from_utf8_lossy(body)))
}

/// Polls `GET /jobs/{job}` until the job is `ready` or `failed` (60 s at most).
pub async fn finished_job(app: &Router, job: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = super::common::send(
            app,
            super::common::request("GET", &format!("/jobs/{job}"), None, Body::empty()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let view = json(&body);
        if matches!(view["status"].as_str(), Some("ready" | "failed")) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} still {view} after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A static file server on 127.0.0.1 with the paths the tests need.
pub struct Origin {
    pub base: String,
    pub port: u16,
    pub hits: Arc<Hits>,
    release: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
pub struct Hits {
    pub held: AtomicUsize,
    pub photo: AtomicUsize,
}

#[derive(Clone)]
struct OriginState {
    photo: Arc<Vec<u8>>,
    port: u16,
    hits: Arc<Hits>,
    released: tokio::sync::watch::Receiver<bool>,
}

/// Bytes of `/big.bin` and `/chunked-big.bin`.
pub const BIG: usize = 3 << 20;

impl Origin {
    /// Serves `photo` at `/photo.jpg` and at `/held.jpg` (which answers only once
    /// [`Origin::release`] is called, so a test decides when a fetch ends), a truncated copy at
    /// `/broken.jpg`, over-size bodies, and redirects to loopback addresses.
    pub async fn start(photo: Vec<u8>) -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Hits::default());
        let (release, released) = tokio::sync::watch::channel(false);
        let state = OriginState {
            photo: Arc::new(photo),
            port,
            hits: Arc::clone(&hits),
            released,
        };
        let router = Router::new()
            .route(
                "/photo.jpg",
                get(|State(s): State<OriginState>| async move {
                    s.hits.photo.fetch_add(1, Ordering::SeqCst);
                    jpeg(s.photo.to_vec())
                }),
            )
            .route(
                "/held.jpg",
                get(|State(mut s): State<OriginState>| async move {
                    s.hits.held.fetch_add(1, Ordering::SeqCst);
                    s.released
                        .wait_for(|&released| released)
                        .await
                        .expect("the origin outlives its requests");
                    jpeg(s.photo.to_vec())
                }),
            )
            .route(
                "/broken.jpg",
                get(|State(s): State<OriginState>| async move {
                    jpeg(s.photo[..s.photo.len() / 2].to_vec())
                }),
            )
            .route("/big.bin", get(|| async { vec![0u8; BIG] }))
            .route(
                "/chunked-big.bin",
                get(|| async {
                    let chunks =
                        futures::stream::iter((0..BIG / 65536).map(|_| {
                            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 65536]))
                        }));
                    Body::from_stream(chunks)
                }),
            )
            .route(
                "/to-127.0.0.2",
                get(|State(s): State<OriginState>| async move {
                    redirect(format!("http://127.0.0.2:{}/photo.jpg", s.port))
                }),
            )
            .route(
                "/to-ipv6-loopback",
                get(|State(s): State<OriginState>| async move {
                    redirect(format!("http://[::1]:{}/photo.jpg", s.port))
                }),
            )
            .route("/to-photo", get(|| async { redirect("/photo.jpg".into()) }))
            .with_state(state);
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Origin {
            base: format!("http://127.0.0.1:{port}"),
            port,
            hits,
            release,
        }
    }

    /// Lets every request to `/held.jpg`, waiting or to come, be answered.
    pub fn release(&self) {
        self.release.send_replace(true);
    }

    /// Waits until `/held.jpg` has been requested `n` times.
    pub async fn held_requests(&self, n: usize) {
        while self.hits.held.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn jpeg(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response()
}

fn redirect(location: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)], "").into_response()
}
