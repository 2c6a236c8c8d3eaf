//! The hostile-input corpus (`tiler-wasm/tests/common/corpus.rs`) sent as the body of
//! `POST /pyramids`, in process on the disk store: every case ends typed, as the core
//! itself ends it natively — the job `failed` with the core's code and message and no
//! `.dzi`, or `ready` with the very pyramid the core makes — within a bounded wait,
//! never a 5xx, never a panic on any thread of the process.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../tiler-wasm/tests/common/corpus.rs"]
#[allow(dead_code)] // `write`, `e2e` and the encoders serve other tests.
mod corpus;
#[path = "common/tiling.rs"]
mod tiling;

use axum::body::Body;
use axum::http::StatusCode;
use axum::Router;
use common::*;
use corpus::Expect;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tile_store::auth::{Auth, AuthSettings};
use tile_store::fetch::FetchSettings;
use tile_store::store::disk::DiskStore;
use tile_store::tiling::{Tiling, TilingSettings};
use tile_store::{app, AppState};
use tiling::*;

/// The longest one job of the corpus may take to end.
const JOB_DEADLINE: Duration = Duration::from_secs(20);

/// Panics on any thread of this process (the tiler's blocking threads included).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn state(dir: &Path) -> AppState {
    let auth = Auth::new(&AuthSettings::default()).unwrap();
    let mut state = AppState::new(Arc::new(DiskStore::open(dir).unwrap()), auth);
    let settings = TilingSettings {
        fetch: FetchSettings {
            // Room for the 16 MiB iCCP case.
            max_bytes: 64 << 20,
            ..FetchSettings::default()
        },
        max_jobs: 4,
        ..TilingSettings::default()
    };
    state.tiling = Arc::new(Tiling::new(&settings, None).unwrap());
    state
}

/// What the core makes of `bytes` natively, by the path the server takes: its typed error, or a
/// whole pyramid.
fn native(bytes: &[u8]) -> Result<NativePyramid, tiler_wasm::Error> {
    let options = tiler_wasm::Options::default();
    // The path the server takes: streamed for the TIFF variants that stream, whole otherwise.
    let walk = match tiler_wasm::Walk::streamed(std::io::Cursor::new(bytes), &options)? {
        Some(streamed) => streamed,
        None => tiler_wasm::Walk::whole(bytes, &options)?,
    };
    walk.run(1, |_, _| -> Result<(), tiler_wasm::Error> { Ok(()) })?;
    Ok(native_pyramid(bytes))
}

/// Polls `GET /jobs/{job}` until `ready` or `failed`, at most [`JOB_DEADLINE`].
async fn ended(app: &Router, name: &str, job: &str) -> serde_json::Value {
    let deadline = Instant::now() + JOB_DEADLINE;
    loop {
        let (status, _, body) = send(
            app,
            request("GET", &format!("/jobs/{job}"), None, Body::empty()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: GET /jobs/{job}");
        let view = json(&body);
        if matches!(view["status"].as_str(), Some("ready" | "failed")) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: job still {view} after {JOB_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_body_ends_its_job_typed_as_the_core_does() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path()));
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let cases = corpus::corpus();
    for case in &cases {
        let name = case.name.as_str();
        let id = tiler_wasm::pyramid_id(&case.bytes, &tiler_wasm::Options::default());
        let dzi_path = dir.path().join(format!("{id}.dzi"));
        let expected = native(&case.bytes);
        match (&expected, case.expect) {
            (Err(e), Expect::Error(codes)) => assert!(codes.contains(&e.code()), "{name}: {e}"),
            (Ok(_), Expect::Tiles) | (_, Expect::Either) => {}
            (Err(e), Expect::Tiles) => panic!("{name}: the core fails it: {e}"),
            (Ok(_), Expect::Error(_)) => panic!("{name}: the core tiles it"),
        }

        let (status, _, view) = post_image(&app, case.bytes.clone()).await;
        assert!(!status.is_server_error(), "{name}: {status} {view}");
        if case.bytes.is_empty() {
            // Refused at the door, before any job: there is no image to tile.
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {view}");
            assert_eq!(view["error"]["code"], "invalid_request", "{name}");
            *outcomes.entry("400 invalid_request".into()).or_default() += 1;
            continue;
        }
        assert!(
            matches!(
                status,
                StatusCode::ACCEPTED | StatusCode::OK | StatusCode::BAD_REQUEST
            ),
            "{name}: {status} {view}"
        );
        let done = match view["job"].as_str() {
            Some(job) => ended(&app, name, job).await,
            // Only a committed pyramid is answered without a job.
            None => {
                assert_eq!(status, StatusCode::OK, "{name}: {view}");
                view.clone()
            }
        };
        assert_eq!(done["id"], id.as_str(), "{name}: {done}");
        match &expected {
            Err(e) => {
                assert_eq!(done["status"], "failed", "{name}: {done}");
                assert_eq!(done["error"]["status"], 400, "{name}: {done}");
                assert_eq!(done["error"]["code"], e.code(), "{name}: {done}");
                assert_eq!(
                    done["error"]["message"],
                    e.to_string().as_str(),
                    "{name}: {done}"
                );
                assert!(!dzi_path.exists(), "{name}: a failed job committed a .dzi");
                *outcomes.entry(format!("failed {}", e.code())).or_default() += 1;
            }
            Ok(pyramid) => {
                assert_eq!(done["status"], "ready", "{name}: {done}");
                assert_eq!(
                    std::fs::read_to_string(&dzi_path).unwrap(),
                    pyramid.dzi,
                    "{name}"
                );
                let stored = tiles_on_disk(dir.path(), &id);
                assert_eq!(
                    stored.keys().collect::<Vec<_>>(),
                    pyramid.tiles.keys().collect::<Vec<_>>(),
                    "{name}"
                );
                for (tile, bytes) in &pyramid.tiles {
                    assert!(stored[tile] == *bytes, "{name}: tile {tile} differs");
                }
                *outcomes.entry("ready".into()).or_default() += 1;
            }
        }
    }
    eprintln!("{} hostile bodies: {outcomes:?}", cases.len());
    assert_eq!(outcomes.values().sum::<usize>(), cases.len());
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a thread panicked");
    // The service is still whole: a good image tiles after all of them.
    let good = photo_jpeg(300, 200, 11);
    let (status, _, view) = post_image(&app, good).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{view}");
    let done = ended(&app, "the good image", view["job"].as_str().unwrap()).await;
    assert_eq!(done["status"], "ready", "{done}");
}
