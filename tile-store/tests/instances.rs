//! Several `tile-store serve` processes on one bucket, as behind a load balancer: a job
//! posted to one instance is answered by the others, survives the SIGKILL of the
//! instance running it, and a burst spreads over all of them; a `DELETE` through one
//! is seen by the others. Run on `s3s-fs` (which ignores conditional writes) and on
//! moto's S3 server (which honours them); the claim race itself is run against moto
//! and the disk store, where `If-Match` is real. Everything listens on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tiling.rs"]
mod tiling;

use common::moto;
use common::procs::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tile_store::store::{JobId, Key, Store};
use tile_store::tiling::board::{Board, BoardSettings, Held, Look};
use tile_store::tiling::jobs::{JobState, Jobs, SourceKey};
use tile_store::tiling::record::{JobRecord, RecordedSource};
use tiling::photo_jpeg;

/// The lease the instances run with: short, so that a takeover is quick to see, yet
/// long enough that a loaded machine (renewals every third of it) never misses one.
const LEASE_SECS: u64 = 5;
/// How long past the lease a takeover may take on a loaded machine (a hang detector).
const MARGIN: Duration = Duration::from_secs(90);

/// An S3-compatible server and the environment that points tile-store at it.
struct Bucket {
    env: Vec<(&'static str, String)>,
    client: aws_sdk_s3::Client,
    bucket: &'static str,
    _s3s: Option<S3sFs>,
    _moto: Option<moto::Moto>,
}

impl Bucket {
    fn s3s_fs() -> Self {
        let s3 = S3sFs::start();
        Bucket {
            env: s3_env(&s3.endpoint()),
            client: s3.client(),
            bucket: BUCKET,
            _s3s: Some(s3),
            _moto: None,
        }
    }

    async fn moto() -> Self {
        let moto = moto::Moto::start().await;
        let mut env = s3_env(&moto.endpoint());
        for (k, v) in &mut env {
            if *k == "AWS_S3_BUCKET_NAME" {
                *v = moto::BUCKET.into();
            }
        }
        Bucket {
            env,
            client: moto.client(),
            bucket: moto::BUCKET,
            _s3s: None,
            _moto: Some(moto),
        }
    }

    fn instance(&self, name: &str) -> TileStore {
        self.instance_with_lease(name, LEASE_SECS)
    }

    fn instance_with_lease(&self, name: &str, lease_secs: u64) -> TileStore {
        TileStore::start(
            free_port(),
            &[
                "--store",
                "s3",
                "--instance-id",
                name,
                "--job-lease",
                &lease_secs.to_string(),
            ],
            &self.env,
        )
    }

    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        let out = self
            .client
            .get_object()
            .bucket(self.bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.unwrap().into_bytes().to_vec())
    }

    async fn keys(&self, prefix: &str) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.unwrap().contents() {
                keys.insert(object.key().unwrap().to_owned());
            }
        }
        keys
    }
}

async fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, _, body) = call(&client(), addr, "GET", path, None, "").await.unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Polls `GET /jobs/{job}` on `addr` until `done` holds for the answer.
async fn job_until(
    addr: SocketAddr,
    job: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, view) = get_json(addr, &format!("/jobs/{job}")).await;
        assert_eq!(status, 200, "GET /jobs/{job} on {addr}: {view}");
        if done(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: job {job} is {view} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ended(view: &serde_json::Value) -> bool {
    matches!(view["status"].as_str(), Some("ready" | "failed"))
}

/// What `tile-store tile` writes for `source`: the `.dzi` and every tile, by key.
fn cli_pyramid(source: &[u8], id: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("source.jpg");
    std::fs::write(&image, source).unwrap();
    let out = dir.path().join("out/p");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tile-store"))
        .arg("tile")
        .arg(&image)
        .arg(&out)
        .env("NO_COLOR", "1")
        .status()
        .unwrap();
    assert!(status.success());
    let mut pyramid = BTreeMap::new();
    pyramid.insert(
        format!("{id}.dzi"),
        std::fs::read(dir.path().join("out/p.dzi")).unwrap(),
    );
    for (path, bytes) in files(&dir.path().join("out/p_files")) {
        pyramid.insert(format!("{id}_files/{path}"), bytes);
    }
    pyramid
}

/// A job posted to A is answered by B; A is SIGKILLed while tiling; B takes the job
/// over once A's lease lapses and commits exactly the CLI's pyramid.
async fn killed_mid_job_is_finished_by_another(bucket: Bucket) {
    let a = bucket.instance("instance-a");
    let b = bucket.instance("instance-b");
    // Large enough that tiling and storing take a while after the state says so.
    let photo = photo_jpeg(6000, 4000, 41);
    let (status, _, body) = call(&client(), a.addr, "POST", "/pyramids", None, photo.clone())
        .await
        .unwrap();
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let posted: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let job = posted["job"].as_str().unwrap().to_owned();
    let id = posted["id"].as_str().unwrap().to_owned();
    let source_key = format!(
        "sources/{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&photo))
    );
    assert!(
        bucket.object(&source_key).await.as_deref() == Some(photo.as_slice()),
        "the body is in the store before the 202"
    );

    // B answers for A's job, and sees it running on A.
    let running = job_until(b.addr, &job, MARGIN, "tiling on A", |v| {
        v["status"] == "tiling" || ended(v)
    })
    .await;
    assert_eq!(running["status"], "tiling", "{running}");
    assert_eq!(running["instance"], "instance-a");
    assert_eq!(running["attempts"], 1);
    assert_eq!(running["id"], id.as_str());
    let _ = a.kill();
    let killed = Instant::now();

    let done = job_until(
        b.addr,
        &job,
        Duration::from_secs(LEASE_SECS) + MARGIN,
        "taken over by B",
        ended,
    )
    .await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["instance"], "instance-b");
    assert_eq!(done["attempts"], 2);
    eprintln!(
        "taken over and finished {:.1} s after the kill (lease {LEASE_SECS} s)",
        killed.elapsed().as_secs_f64()
    );

    // Exactly the CLI's pyramid: the same manifest, the same tiles, nothing else.
    let want = cli_pyramid(&photo, &id);
    let stored: BTreeSet<String> = bucket.keys(&format!("{id}_files/")).await;
    let want_tiles: BTreeSet<String> = want
        .keys()
        .filter(|k| k.contains("_files/"))
        .cloned()
        .collect();
    assert_eq!(stored, want_tiles);
    for (key, bytes) in &want {
        assert!(
            bucket.object(key).await.as_deref() == Some(bytes.as_slice()),
            "{key} differs from the CLI's"
        );
    }
    assert!(
        bucket.object(&source_key).await.is_none(),
        "the stored source is removed once the job ends"
    );
    let log = b.kill();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_killed_mid_job_is_finished_by_another_instance() {
    killed_mid_job_is_finished_by_another(Bucket::s3s_fs()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_killed_mid_job_is_finished_by_another_instance() {
    killed_mid_job_is_finished_by_another(Bucket::moto().await).await;
}

/// SIGTERM of the instance running a job gives it back: another instance takes it over
/// at once, well inside a lease that is long here (a SIGKILL would make it wait for
/// the whole lease).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_hands_its_jobs_back() {
    const LONG_LEASE: u64 = 120;
    let bucket = Bucket::s3s_fs();
    let a = bucket.instance_with_lease("instance-a", LONG_LEASE);
    let b = bucket.instance_with_lease("instance-b", LONG_LEASE);
    let photo = photo_jpeg(6000, 4000, 43);
    let (status, _, body) = call(&client(), a.addr, "POST", "/pyramids", None, photo)
        .await
        .unwrap();
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let posted: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let job = posted["job"].as_str().unwrap().to_owned();
    let running = job_until(b.addr, &job, MARGIN, "tiling on A", |v| {
        v["status"] == "tiling" || ended(v)
    })
    .await;
    assert_eq!(running["instance"], "instance-a", "{running}");
    let (exit, log) = a.terminate(Duration::from_secs(60));
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}\n{log}");
    let done = job_until(
        b.addr,
        &job,
        Duration::from_secs(LONG_LEASE - 30),
        "handed back to B",
        ended,
    )
    .await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["instance"], "instance-b");
    let log = b.kill();
    assert!(!log.contains("panicked"), "{log}");
}

/// Six jobs posted to A at once spread over A, B and C: A holds at most two at a
/// time, and the others claim the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_posted_to_one_instance_spreads_over_all() {
    let bucket = Bucket::s3s_fs();
    let a = bucket.instance("instance-a");
    let b = bucket.instance("instance-b");
    let c = bucket.instance("instance-c");
    // Posted together, each large enough to take longer than the others' scan interval.
    let posts = (0..6).map(|seed| {
        let photo = photo_jpeg(4000, 3000, 100 + seed);
        async move {
            let (status, _, body) = call(&client(), a.addr, "POST", "/pyramids", None, photo)
                .await
                .unwrap();
            assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
            let view: serde_json::Value = serde_json::from_slice(&body).unwrap();
            view["job"].as_str().unwrap().to_owned()
        }
    });
    let jobs = futures::future::join_all(posts).await;
    let mut ran_on = BTreeMap::<String, usize>::new();
    for job in &jobs {
        // Asked of C, which was posted none of them.
        let done = job_until(c.addr, job, MARGIN, "burst", ended).await;
        assert_eq!(done["status"], "ready", "{done}");
        *ran_on
            .entry(done["instance"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    eprintln!("six jobs posted to A ran on {ran_on:?}");

    assert!(
        ran_on.len() >= 2,
        "every job ran on one instance: {ran_on:?}"
    );
    assert!(
        ran_on.get("instance-a").copied().unwrap_or(0) <= 4,
        "{ran_on:?}"
    );
    for server in [a, b, c] {
        let log = server.kill();
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// A pyramid deleted through B is not `ready` on A, even right after A served it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_through_one_instance_is_seen_by_the_others() {
    let bucket = Bucket::s3s_fs();
    let a = bucket.instance("instance-a");
    let b = bucket.instance("instance-b");
    let photo = photo_jpeg(800, 600, 7);
    let (status, _, body) = call(&client(), a.addr, "POST", "/pyramids", None, photo.clone())
        .await
        .unwrap();
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let view: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let job = view["job"].as_str().unwrap();
    let id = view["id"].as_str().unwrap().to_owned();
    let done = job_until(a.addr, job, MARGIN, "tiling", ended).await;
    assert_eq!(done["status"], "ready", "{done}");
    // A has just seen it committed (and remembers that).
    let tile = format!("/pyramids/{id}_files/0/0_0.jpeg");
    let (status, headers, _) = call(&client(), a.addr, "GET", &tile, None, "")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));

    let (status, _, body) = call(
        &client(),
        b.addr,
        "DELETE",
        &format!("/pyramids/{id}"),
        None,
        "",
    )
    .await
    .unwrap();
    assert!(
        status == 200 || status == 204,
        "{status} {}",
        String::from_utf8_lossy(&body)
    );

    let (status, _) = get_json(a.addr, &format!("/pyramids/{id}.dzi")).await;
    assert_eq!(status, 404, "the manifest is gone on A");
    let (status, _, _) = call(&client(), a.addr, "GET", &tile, None, "")
        .await
        .unwrap();
    assert_eq!(status, 404, "the tile is gone on A");
    // Posting the same image to A starts a new job instead of answering `ready`.
    let (status, _, body) = call(&client(), a.addr, "POST", "/pyramids", None, photo)
        .await
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 202, "{again}");
    assert_ne!(again["status"], "ready");
    let done = job_until(
        b.addr,
        again["job"].as_str().unwrap(),
        MARGIN,
        "again",
        ended,
    )
    .await;
    assert_eq!(done["status"], "ready", "{done}");
    for server in [a, b] {
        let log = server.kill();
        assert!(!log.contains("panicked"), "{log}");
    }
}

fn board(instance: &str, lease: Duration) -> Board {
    Board::new(BoardSettings {
        instance: instance.into(),
        lease,
        retention: Duration::from_secs(60),
    })
}

fn queued(job: &str) -> JobRecord {
    JobRecord::queued(
        job,
        RecordedSource::Url("http://127.0.0.1:1/x.jpg".into()),
        Default::default(),
        "anonymous",
        None,
    )
}

/// Two instances look at one free job at the same moment, many times over: exactly one
/// claims it each time. Then the holder stops renewing; the other takes it over only
/// after a whole lease, and the first learns it lost it at its next renewal.
async fn claims_are_exclusive(store: Arc<dyn Store>) {
    let a = Arc::new(board("a", Duration::from_millis(600)));
    let b = Arc::new(board("b", Duration::from_millis(600)));
    for round in 0..20u32 {
        let id = JobId::parse(&format!("{round:032x}")).unwrap();
        a.create(&*store, &queued(id.as_str())).await.unwrap();
        let (ra, rb) = tokio::join!(a.look(&*store, &id), b.look(&*store, &id));
        let claimed: Vec<_> = [ra.unwrap(), rb.unwrap()]
            .into_iter()
            .filter_map(|l| match l {
                Look::Claimed(claim) => Some(claim),
                _ => None,
            })
            .collect();
        assert_eq!(claimed.len(), 1, "round {round}: {claimed:?}");
        let (record, _) = a.read(&*store, &id).await.unwrap().unwrap();
        assert_eq!(record.attempts, 1);
        assert_eq!(
            record.instance.as_deref(),
            claimed[0].record.instance.as_deref()
        );
    }

    // Takeover: A claims, then goes silent.
    let id = JobId::parse(&"f".repeat(32)).unwrap();
    a.create(&*store, &queued(id.as_str())).await.unwrap();
    let Look::Claimed(mut held_by_a) = a.look(&*store, &id).await.unwrap() else {
        panic!("A claims a free job");
    };
    let started = Instant::now();
    let claim_b = loop {
        match b.look(&*store, &id).await.unwrap() {
            Look::Claimed(claim) => break claim,
            Look::Waiting(record) => assert_eq!(record.instance.as_deref(), Some("a")),
            other => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "taken over before the lease lapsed"
    );
    assert_eq!(claim_b.record.attempts, 2);
    assert_eq!(claim_b.record.instance.as_deref(), Some("b"));
    // A's next renewal finds the record changed: it has lost the job.
    let jobs = Jobs::new(4, Duration::from_secs(60));
    let job = jobs
        .adopt(id.clone(), SourceKey::Url("u".into(), "r".into()), None)
        .expect("a new job");
    job.set_state(JobState::Tiling);
    let held = tokio::time::timeout(
        Duration::from_secs(30),
        a.hold(&*store, &job, &mut held_by_a),
    )
    .await
    .expect("hold returns");
    assert_eq!(held, Held::Lost);
    let (record, _) = b.read(&*store, &id).await.unwrap().unwrap();
    assert_eq!(
        record.instance.as_deref(),
        Some("b"),
        "A wrote nothing after losing"
    );
    let _ = store.delete(&Key::Job(id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_two_instances_racing_to_claim_one_job_exactly_one_wins() {
    let moto = moto::Moto::start().await;
    claims_are_exclusive(Arc::new(moto.store("race/"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_two_instances_racing_to_claim_one_job_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = tile_store::store::disk::DiskStore::open(dir.path()).unwrap();
    claims_are_exclusive(Arc::new(store)).await;
}

/// A job posted to an instance with a free place is held by it from the record's first
/// write: another instance looking at once (its scan) finds it taken, never free; with
/// no free place the record is left for any instance.
#[tokio::test]
async fn a_posted_job_is_held_from_its_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = tile_store::store::disk::DiskStore::open(dir.path()).unwrap();
    let (a, b) = (
        board("a", Duration::from_secs(30)),
        board("b", Duration::from_secs(30)),
    );
    let mut held = Vec::new();
    for round in 0..tile_store::tiling::board::CLAIMS_AT_ONCE as u32 {
        let id = JobId::parse(&format!("{round:032x}")).unwrap();
        let claim = a
            .create_claimed(&store, &queued(id.as_str()))
            .await
            .unwrap()
            .expect("A has a free place and holds the job");
        assert_eq!(claim.record.instance.as_deref(), Some("a"));
        assert_eq!(claim.record.attempts, 1);
        match b.look(&store, &id).await.unwrap() {
            Look::Waiting(record) => assert_eq!(record.instance.as_deref(), Some("a")),
            other => panic!("round {round}: B looking at once got {other:?}"),
        }
        held.push(claim);
    }
    // A's places are all taken: the next job waits for whichever instance is free.
    let id = JobId::parse(&"e".repeat(32)).unwrap();
    assert!(a
        .create_claimed(&store, &queued(id.as_str()))
        .await
        .unwrap()
        .is_none());
    let Look::Claimed(claim) = b.look(&store, &id).await.unwrap() else {
        panic!("B claims the job A had no place for");
    };
    assert_eq!(claim.record.instance.as_deref(), Some("b"));
    drop(held);
}

/// The stored copy of an uploaded image outlives the job that ends first while another
/// unended job (the same image with other settings, posted anywhere) still needs it.
#[tokio::test]
async fn an_uploaded_source_stays_while_another_job_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(tile_store::store::disk::DiskStore::open(dir.path()).unwrap());
    let board = board("a", Duration::from_secs(30));
    let bytes = photo_jpeg(64, 48, 1);
    let digest = tile_store::store::SourceDigest::of(&bytes);
    store
        .put(&Key::Source(digest), bytes::Bytes::from(bytes.clone()))
        .await
        .unwrap();
    let upload = RecordedSource::Upload {
        sha256: digest.to_string(),
        bytes: bytes.len() as u64,
    };
    let (first, second) = (
        JobId::parse(&"1".repeat(32)).unwrap(),
        JobId::parse(&"2".repeat(32)).unwrap(),
    );
    for id in [&first, &second] {
        let record = JobRecord::queued(id.as_str(), upload.clone(), Default::default(), "x", None);
        board.create(&*store, &record).await.unwrap();
    }
    let end = |id: JobId| {
        let (store, board) = (Arc::clone(&store), &board);
        async move {
            let (mut record, version) = board.read(&*store, &id).await.unwrap().unwrap();
            record.state = JobState::Ready;
            store
                .put_if_version(&Key::Job(id), record.to_bytes(), &version)
                .await
                .unwrap()
                .unwrap();
        }
    };
    end(first.clone()).await;
    assert!(!board.remove_source(&*store, digest, &first).await.unwrap());
    assert!(
        store.get(&Key::Source(digest)).await.unwrap().is_some(),
        "the second job needs it"
    );
    // The second job ends too: now the copy goes.
    end(second.clone()).await;
    assert!(board.remove_source(&*store, digest, &second).await.unwrap());
    assert!(store.get(&Key::Source(digest)).await.unwrap().is_none());
}
