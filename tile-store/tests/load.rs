//! Load: 64 concurrent clients mix batch uploads, commits and tile reads against the
//! real `tile-store serve` on a real `s3s-fs`, all on loopback. Afterwards every
//! committed tile is read back and compared byte for byte, through tile-store and
//! in s3s-fs's folder. No answer may be a 5xx.
//!
//! `TESSERA_LOAD_SECS` sets the duration (10 s by default, as in `make test`;
//! `make load` runs 60 s). Throughput and latency percentiles are printed.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::procs::*;
use common::test_id;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tile_store::store::TileName;
use tiler_wasm::{Dzi, Layout, TileFormat};

const CLIENTS: usize = 64;
const TILES_PER_BATCH: usize = 16;
const TILE_BYTES: usize = 12 << 10;
/// How long past the deadline a client may take to finish its first commit.
const GRACE: Duration = Duration::from_secs(120);

/// The bytes of one tile of pyramid `seed`: derived from both, so that they can be
/// made again to check what was stored, and no two tiles are alike.
fn tile_bytes(seed: u64, name: &TileName) -> Vec<u8> {
    let mut state =
        seed ^ (u64::from(name.level) << 40 | u64::from(name.col) << 20 | u64::from(name.row));
    state = state.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    while bytes.len() < TILE_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(TILE_BYTES - (state % 512) as usize);
    bytes
}

/// A pyramid a client uploads: 1000×700, 25 tiles.
struct Job {
    id: String,
    seed: u64,
    dzi: Dzi,
    tiles: Vec<TileName>,
}

impl Job {
    fn new(seed: u64) -> Self {
        let layout = Layout::new(1000, 700, 254, 1).unwrap();
        let tiles = layout
            .tiles()
            .map(|a| TileName {
                level: a.level,
                col: a.col,
                row: a.row,
                format: TileFormat::Png,
            })
            .collect();
        Job {
            id: test_id(&format!("load-{seed}")),
            seed,
            dzi: Dzi::new(&layout, TileFormat::Png),
            tiles,
        }
    }
}

#[derive(Default)]
struct Tally {
    /// Latencies in microseconds, by kind of request.
    latencies: BTreeMap<&'static str, Vec<u64>>,
    statuses: BTreeMap<(&'static str, u16), u64>,
    failures: Vec<String>,
    tiles_uploaded: u64,
    bytes_uploaded: u64,
    bytes_read: u64,
    wrong_reads: u64,
}

impl Tally {
    fn record(&mut self, kind: &'static str, started: Instant, status: u16) {
        self.latencies
            .entry(kind)
            .or_default()
            .push(started.elapsed().as_micros() as u64);
        *self.statuses.entry((kind, status)).or_default() += 1;
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_upload_commit_and_read_with_nothing_lost() {
    let seconds: u64 = std::env::var("TESSERA_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let s3 = S3sFs::start();
    let port = free_port();
    let server = TileStore::start(port, &["--store", "s3"], &s3_env(&s3.endpoint()));
    let addr = server.addr;
    let client = client();

    // Committed pyramids, for the readers; and what every client recorded.
    let committed: Arc<Mutex<Vec<Arc<Job>>>> = Arc::default();
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);

    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, committed, tally) = (client.clone(), committed.clone(), tally.clone());
            tokio::spawn(async move {
                let mut rng = (c as u64 + 1) * 0x2545_F491_4F6C_DD1D;
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut serial = 0u64;
                // Every fourth pyramid (the first included) is shared by 8 clients, who
                // upload and commit it at once: one content address, several writers.
                let new_job = |serial: &mut u64| {
                    *serial += 1;
                    let seed = if *serial % 4 == 1 {
                        1_000_000 + (c as u64 / 8) * 1000 + *serial
                    } else {
                        (c as u64) << 32 | *serial
                    };
                    Arc::new(Job::new(seed))
                };
                let mut job = new_job(&mut serial);
                let mut sent = 0;
                // Until the deadline, and past it until this client has committed once: the
                // count of commits asserted below does not depend on the machine's speed.
                let mut commits = 0;
                while Instant::now() < deadline || commits == 0 {
                    assert!(
                        Instant::now() < deadline + GRACE,
                        "client {c} committed nothing in {seconds} s + {GRACE:?}"
                    );
                    let readable = committed.lock().unwrap().len();
                    if readable > 0 && next() % 10 < 6 {
                        // A read of a random committed tile, checked.
                        let pick = {
                            let all = committed.lock().unwrap();
                            all[(next() as usize) % all.len()].clone()
                        };
                        let name = pick.tiles[(next() as usize) % pick.tiles.len()];
                        let path = format!("/pyramids/{}_files/{}", pick.id, name.relative());
                        let t = Instant::now();
                        let answer = call(&client, addr, "GET", &path, None, "").await;
                        let mut tally = tally.lock().unwrap();
                        match answer {
                            Ok((status, _, body)) => {
                                tally.record("tile GET", t, status);
                                tally.bytes_read += body.len() as u64;
                                if status != 200 || body.as_ref() != tile_bytes(pick.seed, &name) {
                                    tally.wrong_reads += 1;
                                }
                            }
                            Err(e) => tally.failures.push(format!("GET {path}: {e}")),
                        }
                    } else if sent < job.tiles.len() {
                        let chunk = &job.tiles[sent..(sent + TILES_PER_BATCH).min(job.tiles.len())];
                        let tiles: Vec<(TileName, Vec<u8>)> = chunk
                            .iter()
                            .map(|n| (*n, tile_bytes(job.seed, n)))
                            .collect();
                        let body = Bytes::from(tile_store::routes::batch::encode(
                            tiles.iter().map(|(n, b)| (*n, b.as_slice())),
                        ));
                        let size = body.len() as u64;
                        let t = Instant::now();
                        let path = format!("/pyramids/{}/tiles", job.id);
                        let answer = call(&client, addr, "POST", &path, None, body).await;
                        let mut tally = tally.lock().unwrap();
                        match answer {
                            Ok((status, _, body)) => {
                                tally.record("batch POST", t, status);
                                if status == 200 {
                                    sent += chunk.len();
                                    tally.tiles_uploaded += chunk.len() as u64;
                                    tally.bytes_uploaded += size;
                                } else {
                                    tally.failures.push(format!(
                                        "POST {path}: {status} {}",
                                        String::from_utf8_lossy(&body)
                                    ));
                                }
                            }
                            Err(e) => tally.failures.push(format!("POST {path}: {e}")),
                        }
                    } else {
                        let path = format!("/pyramids/{}.dzi", job.id);
                        let t = Instant::now();
                        let answer =
                            call(&client, addr, "PUT", &path, None, job.dzi.to_xml()).await;
                        let mut tally = tally.lock().unwrap();
                        match answer {
                            Ok((status, _, body)) => {
                                tally.record("commit PUT", t, status);
                                if status == 200 || status == 201 {
                                    commits += 1;
                                    committed.lock().unwrap().push(job.clone());
                                } else {
                                    tally.failures.push(format!(
                                        "PUT {path}: {status} {}",
                                        String::from_utf8_lossy(&body)
                                    ));
                                }
                            }
                            Err(e) => tally.failures.push(format!("PUT {path}: {e}")),
                        }
                        drop(tally);
                        job = new_job(&mut serial);
                        sent = 0;
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();

    // Every committed tile, byte for byte: through tile-store and in the bucket.
    let committed: Vec<Arc<Job>> = {
        let mut all = committed.lock().unwrap().clone();
        all.sort_by_key(|j| j.seed);
        all.dedup_by_key(|j| j.seed);
        all
    };
    let checks = committed
        .iter()
        .flat_map(|job| job.tiles.iter().map(move |name| (job.clone(), *name)));
    let verified = futures::stream::iter(checks)
        .map(|(job, name)| {
            let (client, s3) = (client.clone(), &s3);
            async move {
                let want = tile_bytes(job.seed, &name);
                let path = format!("/pyramids/{}_files/{}", job.id, name.relative());
                let (status, _, body) = call(&client, addr, "GET", &path, None, "").await.unwrap();
                assert_eq!(status, 200, "{path}");
                assert!(body.as_ref() == want.as_slice(), "{path}: corrupted");
                let key = format!("{}_files/{}", job.id, name.relative());
                assert!(
                    s3.object(&key).as_deref() == Some(want.as_slice()),
                    "{key} in the bucket"
                );
            }
        })
        .buffer_unordered(32)
        .count()
        .await;
    for job in &committed {
        let (status, _, body) = call(
            &client,
            addr,
            "GET",
            &format!("/pyramids/{}.dzi", job.id),
            None,
            "",
        )
        .await
        .unwrap();
        assert_eq!((status, body.as_ref()), (200, job.dzi.to_xml().as_bytes()));
    }

    let tally = tally.lock().unwrap();
    let requests: usize = tally.latencies.values().map(Vec::len).sum();
    eprintln!(
        "load: {CLIENTS} clients for {elapsed:.1} s on s3s-fs: {requests} requests ({:.0}/s), \
         {} tiles uploaded ({:.0} tiles/s, {:.1} MB/s), {:.1} MB read, {} pyramids committed, \
         {verified} committed tiles verified byte for byte",
        requests as f64 / elapsed,
        tally.tiles_uploaded,
        tally.tiles_uploaded as f64 / elapsed,
        tally.bytes_uploaded as f64 / elapsed / 1e6,
        tally.bytes_read as f64 / 1e6,
        committed.len(),
    );
    eprintln!("| request | count | per s | p50 ms | p99 ms | max ms |");
    eprintln!("|---|---|---|---|---|---|");
    for (kind, latencies) in &tally.latencies {
        let mut sorted = latencies.clone();
        sorted.sort_unstable();
        eprintln!(
            "| {kind} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
            sorted.len(),
            sorted.len() as f64 / elapsed,
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            percentile(&sorted, 1.0),
        );
    }
    eprintln!("statuses: {:?}", tally.statuses);
    let server_errors: u64 = tally
        .statuses
        .iter()
        .filter(|((_, s), _)| *s >= 500)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(server_errors, 0, "5xx answers: {:?}", tally.statuses);
    assert!(
        tally.failures.is_empty(),
        "{:?}",
        &tally.failures[..tally.failures.len().min(10)]
    );
    assert_eq!(tally.wrong_reads, 0);
    // Every client committed at least once (the loop above runs on until it has), and
    // the first pyramid of each group of 8 is one content address: so at least
    // CLIENTS commits answered 2xx and at least CLIENTS / 8 distinct pyramids exist,
    // however fast the machine is.
    let commits_ok: u64 = [200, 201]
        .iter()
        .filter_map(|s| tally.statuses.get(&("commit PUT", *s)))
        .sum();
    assert!(
        commits_ok >= CLIENTS as u64,
        "only {commits_ok} commits answered 2xx"
    );
    assert!(
        committed.len() >= CLIENTS / 8,
        "only {} distinct pyramids committed",
        committed.len()
    );
    let log = server.kill();
    assert!(!log.contains("panicked"), "{log}");
}
