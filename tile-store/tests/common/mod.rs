//! Helpers shared by the integration tests: real tile images, requests, JWTs.
#![allow(dead_code, clippy::unwrap_used)]

pub mod moto;
pub mod procs;
pub mod s3_endpoint;
pub mod s3s_fs;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use image::{ImageEncoder, Rgb, RgbImage};
use tile_store::store::TileName;
use tiler_wasm::{Dzi, Layout, TileFormat};
use tower::ServiceExt;

/// The upload session header ([`tile_store::staging::SESSION_HEADER`]).
pub const SESSION_HEADER: &str = tile_store::staging::SESSION_HEADER;
/// The upload session of the tests' one anonymous client (requests without a token).
pub const TEST_SESSION: &str = "5e55105e55105e55105e55105e55105e";

/// A well-formed pyramid id.
pub fn test_id(seed: &str) -> String {
    tiler_wasm::pyramid_id(seed.as_bytes(), &tiler_wasm::Options::default())
}

/// A real PNG image of `width`×`height`.
pub fn png(width: u32, height: u32, shade: u8) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, shade])
    });
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .expect("PNG encodes");
    out
}

/// A small PNG pyramid: its manifest and one real PNG per tile, sized as the layout says.
pub struct Pyramid {
    pub dzi: Dzi,
    pub tiles: Vec<(TileName, Vec<u8>)>,
}

impl Pyramid {
    pub fn new(width: u32, height: u32) -> Self {
        let layout = Layout::new(width, height, 254, 1).expect("layout");
        let dzi = Dzi::new(&layout, TileFormat::Png);
        let tiles = layout
            .tiles()
            .map(|a| {
                let r = layout.tile_rect(a.level, a.col, a.row).expect("in grid");
                let name = TileName {
                    level: a.level,
                    col: a.col,
                    row: a.row,
                    format: TileFormat::Png,
                };
                (name, png(r.width, r.height, a.level as u8))
            })
            .collect();
        Pyramid { dzi, tiles }
    }

    pub fn batch(&self, skip: &[TileName]) -> Vec<u8> {
        tile_store::routes::batch::encode(
            self.tiles
                .iter()
                .filter(|(n, _)| !skip.contains(n))
                .map(|(n, b)| (*n, b.as_slice())),
        )
    }
}

/// Sends one request through the router in process.
pub async fn send(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response: Response<Body> = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

pub fn request(
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    match token {
        Some(token) => builder = builder.header("authorization", format!("Bearer {token}")),
        // One anonymous client per test: its uploads share one staging session.
        None => builder = builder.header(SESSION_HEADER, TEST_SESSION),
    }
    builder.body(body.into()).expect("request")
}

/// Uploads every tile of `pyramid` to `id` and commits it with `token`.
pub async fn upload_and_commit(
    app: &Router,
    id: &str,
    pyramid: &Pyramid,
    token: Option<&str>,
) -> StatusCode {
    let (status, _, body) = send(
        app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            token,
            pyramid.batch(&[]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = send(
        app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            token,
            pyramid.dzi.to_xml(),
        ),
    )
    .await;
    status
}

/// The `error.code` of a JSON error body.
pub fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("JSON error body, got {:?}", String::from_utf8_lossy(body)));
    v["error"]["code"].as_str().expect("error.code").to_owned()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An HS-family JWT with `exp`.
pub fn jwt(secret: &str, alg: jsonwebtoken::Algorithm, exp: u64) -> String {
    let claims = serde_json::json!({ "sub": "user-1", "exp": exp, "iat": now() });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("JWT encodes")
}

/// A JWT with `"alg":"none"` and no signature.
pub fn unsigned_jwt(exp: u64) -> String {
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = base64url(format!(r#"{{"sub":"user-1","exp":{exp}}}"#).as_bytes());
    format!("{header}.{claims}.")
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
