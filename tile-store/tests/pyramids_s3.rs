//! `POST /pyramids` by S3 key on the S3 store, against a real `s3s-fs` on 127.0.0.1:
//! the source is read from the bucket with the store's own client, the pyramid lands
//! under the store's prefix, byte for byte what the core makes natively.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tiling.rs"]
mod tiling;

use aws_sdk_s3::primitives::ByteStream;
use axum::http::StatusCode;
use common::s3s_fs::{S3sFs, BUCKET};
use serde_json::json;
use std::sync::Arc;
use tile_store::auth::{Auth, AuthSettings};
use tile_store::fetch::FetchSettings;
use tile_store::tiling::{Tiling, TilingSettings};
use tile_store::{app, AppState};
use tiling::*;

const PREFIX: &str = "pyramids/";
const MAX_SOURCE: u64 = 2 << 20;

async fn put(client: &aws_sdk_s3::Client, key: &str, bytes: Vec<u8>) {
    client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap();
}

async fn get(client: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test]
async fn by_s3_key_with_the_stores_credentials() {
    let s3 = S3sFs::start();
    let client = s3.client();
    let photo = photo_jpeg(900, 600, 11);
    let key = "image/images/1715000000000-deck.jpg";
    put(&client, key, photo.clone()).await;
    put(
        &client,
        "image/images/big.bin",
        vec![0; MAX_SOURCE as usize + 1],
    )
    .await;

    let mut state = AppState::new(
        Arc::new(s3.store(PREFIX)),
        Auth::new(&AuthSettings::default()).unwrap(),
    );
    let settings = TilingSettings {
        fetch: FetchSettings {
            max_bytes: MAX_SOURCE,
            ..FetchSettings::default()
        },
        max_jobs: 4,
        s3_source_prefixes: vec!["image/images/".into(), "other/".into()],
        ..TilingSettings::default()
    };
    // Without --s3-source-prefix every s3Key is refused, naming the flag.
    let mut closed = state.clone();
    closed.tiling = Arc::new(
        Tiling::new(
            &TilingSettings {
                s3_source_prefixes: Vec::new(),
                ..settings.clone()
            },
            Some(s3.store(PREFIX)),
        )
        .unwrap(),
    );
    let (status, _, body) = post_json(&app(closed), json!({ "s3Key": key })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "s3_key_refused");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--s3-source-prefix"));
    state.tiling = Arc::new(Tiling::new(&settings, Some(s3.store(PREFIX))).unwrap());
    let app = app(state);

    let (status, _, view) = post_json(&app, json!({ "s3Key": key })).await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::OK,
        "{status} {view}"
    );
    let done = finished_job(&app, view["job"].as_str().unwrap()).await;
    assert_eq!(done["status"], "ready", "{done}");

    let native = native_pyramid(&photo);
    assert_eq!(done["id"], native.id.as_str());
    let dzi = get(&client, &format!("{PREFIX}{}.dzi", native.id)).await;
    assert_eq!(dzi, native.dzi.as_bytes());
    for (name, bytes) in &native.tiles {
        let stored = get(&client, &format!("{PREFIX}{}_files/{name}", native.id)).await;
        assert!(
            stored == *bytes,
            "tile {name} differs from the native tiler's"
        );
    }
    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("{PREFIX}{}_files/", native.id))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), native.tiles.len());

    // Asked again: ready, from the committed manifest.
    let (status, _, view) = post_json(&app, json!({ "s3Key": key })).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["id"], native.id.as_str());
    assert_eq!(view["progress"]["tiles"], 0);

    for (s3_key, status, code) in [
        (
            "image/images/missing.jpg",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "image/images/big.bin",
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "/leading-slash.jpg",
            StatusCode::BAD_REQUEST,
            "invalid_s3_key",
        ),
    ] {
        let (mut got, _, mut body) = post_json(&app, json!({ "s3Key": s3_key })).await;
        if got == StatusCode::ACCEPTED {
            // No free place at that moment (the job before still writing its last record):
            // the job waited its turn, and its end says the same.
            let done = finished_job(&app, body["job"].as_str().unwrap()).await;
            got = done["error"]["status"]
                .as_u64()
                .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
                .unwrap_or_else(|| panic!("{s3_key}: {done}"));
            body = done;
        }
        assert_eq!(got, status, "{s3_key}: {body}");
        assert_eq!(body["error"]["code"], code, "{s3_key}: {body}");
    }

    // Outside the prefixes: refused before any S3 call, so the answer is the same for
    // a key that exists, a large one and a missing one (no existence or size oracle) —
    // and the same with S3 down.
    put(&client, "secret/payroll.jpg", photo.clone()).await;
    put(&client, "secret/big.bin", vec![0; MAX_SOURCE as usize + 1]).await;
    let outside = [
        "secret/payroll.jpg",
        "secret/big.bin",
        "secret/missing.jpg",
        "image/images/../../secret/payroll.jpg",
        "image/images//x.jpg",
        "image/image",
        "other",
    ];
    let mut answers = Vec::new();
    for s3_key in outside {
        let (got, _, body) = post_json(&app, json!({ "s3Key": s3_key })).await;
        answers.push((got, body.to_string()));
        assert_eq!(got, StatusCode::FORBIDDEN, "{s3_key}: {body}");
        assert_eq!(body["error"]["code"], "s3_key_refused", "{s3_key}: {body}");
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], answers[2]);
    let mut s3 = s3;
    s3.kill();
    let (got, _, body) = post_json(&app, json!({ "s3Key": "secret/payroll.jpg" })).await;
    assert_eq!(
        (got, body.to_string()),
        answers[0].clone(),
        "a refused key reached S3"
    );
}
