//! Per-writer staging (issue 13), on the local disk and on moto (an S3 server that
//! honours conditional writes): exactly one commit wins, a second writer cannot
//! poison a pyramid, expired staged uploads are swept, and a delete racing a commit
//! never leaves a manifest without its tiles.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::moto::Moto;
use common::{png, send, test_id, Pyramid, SESSION_HEADER};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tile_store::auth::{Auth, AuthSettings};
use tile_store::store::disk::DiskStore;
use tile_store::store::{Key, PyramidId, Store, TileName};
use tile_store::{app, AppState};

/// Writer A's static token.
const TOKEN_A: &str = "token-of-writer-a";
/// Hang detector for one wait.
const HANG: Duration = Duration::from_secs(120);

/// One instance over `store`: writer A by token, anonymous writers by session.
fn instance(store: Arc<dyn Store>) -> Router {
    let auth = Auth::new(&AuthSettings {
        tokens: vec![TOKEN_A.into()],
        allow_anonymous_writes: true,
        ..Default::default()
    })
    .unwrap();
    app(AppState::new(store, auth))
}

/// How a request names its writer.
#[derive(Clone, Copy)]
enum As<'a> {
    Token(&'a str),
    /// Anonymous, with this session (none: the server hands one out).
    Session(Option<&'a str>),
}

fn request(method: &str, uri: &str, who: As<'_>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    builder = match who {
        As::Token(token) => builder.header("authorization", format!("Bearer {token}")),
        As::Session(Some(session)) => builder.header(SESSION_HEADER, session),
        As::Session(None) => builder,
    };
    builder.body(body.into()).unwrap()
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("JSON, got {:?}", String::from_utf8_lossy(body)))
}

/// The listing `who` gets: committed, and the tiles.
async fn listing(app: &Router, id: &str, who: As<'_>) -> (bool, Vec<String>) {
    let (status, _, body) = send(
        app,
        request("GET", &format!("/pyramids/{id}/tiles"), who, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let list = json(&body);
    let tiles = list["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    (list["committed"].as_bool().unwrap(), tiles)
}

/// Writer B (an anonymous session) stages wrong bytes for some tiles; writer A (a
/// token) stages the right ones and commits. Every served tile is A's; neither sees
/// the other's staged tiles; B's partial commit is refused as missing tiles.
async fn second_writer_cannot_poison(store: Arc<dyn Store>) {
    let app = instance(store.clone());
    let id = test_id("poison");
    let pyramid = Pyramid::new(700, 500);
    let total = pyramid.tiles.len();
    // B's wrong tiles: real PNGs of the right size, other pixels.
    let wrong: Vec<(TileName, Vec<u8>)> = pyramid
        .tiles
        .iter()
        .take(4)
        .map(|(name, right)| {
            let img = image::load_from_memory(right).unwrap();
            (*name, png(img.width(), img.height(), 250))
        })
        .collect();
    assert!(wrong
        .iter()
        .zip(&pyramid.tiles)
        .all(|((_, w), (_, r))| w != r));
    let wrong_batch =
        tile_store::routes::batch::encode(wrong.iter().map(|(n, b)| (*n, b.as_slice())));

    // B's first write gets its session, in the header and the body.
    let (status, headers, body) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            As::Session(None),
            wrong_batch,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let session = headers[SESSION_HEADER].to_str().unwrap().to_owned();
    assert_eq!(json(&body)["session"], session.as_str());
    assert_eq!(session.len(), 32);
    let b = As::Session(Some(&session));
    let a = As::Token(TOKEN_A);

    // Each listing shows its own writer's staged tiles only.
    let (committed, b_tiles) = listing(&app, &id, b).await;
    assert!(!committed);
    assert_eq!(b_tiles.len(), 4);
    assert_eq!(listing(&app, &id, a).await.1, Vec::<String>::new());
    // Another session sees nothing either, and a forged session is refused.
    let other = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        listing(&app, &id, As::Session(Some(other))).await.1,
        Vec::<String>::new()
    );
    let (status, _, body) = send(
        &app,
        request(
            "GET",
            &format!("/pyramids/{id}/tiles"),
            As::Session(Some("../../../etc/passwd")),
            "",
        ),
    )
    .await;
    assert_eq!(
        (status, common::error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_session")
    );
    // Staged tiles are not served.
    let first = format!("/pyramids/{id}_files/{}", wrong[0].0.relative());
    let (status, _, _) = send(&app, request("GET", &first, a, "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // B commits its partial upload: refused, nothing committed.
    let xml = pyramid.dzi.to_xml();
    let (status, _, body) = send(
        &app,
        request("PUT", &format!("/pyramids/{id}.dzi"), b, xml.clone()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let error = json(&body);
    assert_eq!(error["error"]["code"], "missing_tiles");
    assert_eq!(error["error"]["missing"]["count"], total - 4);

    // A uploads everything and commits.
    let (status, _, body) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            a,
            pyramid.batch(&[]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(listing(&app, &id, a).await.1.len(), total);
    assert_eq!(listing(&app, &id, b).await.1, b_tiles, "B sees A's tiles");
    let (status, _, body) = send(
        &app,
        request("PUT", &format!("/pyramids/{id}.dzi"), a, xml.clone()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );

    // B again: the same manifest is committed already, and nothing changes.
    let (status, _, body) = send(
        &app,
        request("PUT", &format!("/pyramids/{id}.dzi"), b, xml.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["created"], false);
    for (name, bytes) in &pyramid.tiles {
        let uri = format!("/pyramids/{id}_files/{}", name.relative());
        let (status, _, body) = send(&app, request("GET", &uri, a, "")).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(body == *bytes, "{uri}: not writer A's bytes");
    }
    // After the commit B may not change a tile either.
    let (status, _, _) = send(&app, request("PUT", &first, b, wrong[0].1.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Once committed, every writer's listing is the pyramid's own tiles.
    let pid = PyramidId::parse(&id).unwrap();
    let (committed, listed) = listing(&app, &id, b).await;
    assert!(committed);
    assert_eq!(listed.len(), total);
    assert_eq!(store.list_tiles(&pid).await.unwrap().len(), total);
}

#[tokio::test]
async fn a_second_writer_cannot_poison_a_pyramid_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    second_writer_cannot_poison(Arc::new(DiskStore::open(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn a_second_writer_cannot_poison_a_pyramid_on_moto() {
    let moto = Moto::start().await;
    second_writer_cannot_poison(Arc::new(moto.store("poison/"))).await;
}

/// N instances sharing one moto bucket commit one fully staged id at once: exactly
/// one answer is `created: true` (moto honours `If-None-Match: *`), and the manifest
/// is the expected bytes.
#[tokio::test]
async fn exactly_one_of_many_simultaneous_commits_creates_on_moto() {
    const INSTANCES: usize = 8;
    let moto = Moto::start().await;
    let id = test_id("moto-race");
    let pyramid = Pyramid::new(300, 200);
    let instances: Vec<Router> = (0..INSTANCES)
        .map(|_| instance(Arc::new(moto.store(""))))
        .collect();
    let (status, _, _) = send(
        &instances[0],
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            As::Token(TOKEN_A),
            pyramid.batch(&[]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let xml = pyramid.dzi.to_xml();
    let barrier = Arc::new(tokio::sync::Barrier::new(INSTANCES));
    let commits: Vec<_> = instances
        .into_iter()
        .map(|app| {
            let (uri, xml, barrier) = (format!("/pyramids/{id}.dzi"), xml.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                send(&app, request("PUT", &uri, As::Token(TOKEN_A), xml)).await
            })
        })
        .collect();
    let mut created = 0;
    for commit in commits {
        let (status, _, body) = tokio::time::timeout(HANG, commit).await.unwrap().unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        if json(&body)["created"] == true {
            assert_eq!(status, StatusCode::CREATED);
            created += 1;
        }
    }
    assert_eq!(created, 1, "exactly one commit writes the manifest");
    let manifest = moto
        .client()
        .get_object()
        .bucket(common::moto::BUCKET)
        .key(format!("{id}.dzi"))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(manifest.as_ref(), xml.as_bytes());
}

/// Writers A and B stage different bytes for the same id on two instances and commit at
/// the same moment, round after round: every committed pyramid is wholly one writer's,
/// never a mix (the store's commit lock on moto, which honours conditional writes).
#[tokio::test]
async fn two_writers_committing_one_id_on_two_instances_never_mix_on_moto() {
    let moto = Moto::start().await;
    let (one, two) = (
        instance(Arc::new(moto.store(""))),
        instance(Arc::new(moto.store(""))),
    );
    let store = moto.store("");
    let right = Pyramid::new(700, 500);
    let mut other = Pyramid::new(700, 500);
    for (name, bytes) in &mut other.tiles {
        let img = image::load_from_memory(bytes).unwrap();
        *bytes = png(img.width(), img.height(), 200 + name.level as u8);
    }
    let session = "0123456789abcdef0123456789abcdef";
    let mut winners = BTreeMap::<&str, usize>::new();
    for round in 0..6 {
        let id = test_id(&format!("two-writers-{round}"));
        upload(&one, &id, &right, As::Token(TOKEN_A), false).await;
        upload(&two, &id, &other, As::Session(Some(session)), false).await;
        let uri = format!("/pyramids/{id}.dzi");
        let xml = right.dzi.to_xml();
        let (a, b) = tokio::join!(
            send(&one, request("PUT", &uri, As::Token(TOKEN_A), xml.clone())),
            send(&two, request("PUT", &uri, As::Session(Some(session)), xml)),
        );
        for (status, _, body) in [&a, &b] {
            assert!(
                status.is_success(),
                "round {round}: {status} {}",
                String::from_utf8_lossy(body)
            );
        }
        let pid = PyramidId::parse(&id).unwrap();
        let mut from = BTreeMap::<&str, usize>::new();
        for ((name, mine), (_, theirs)) in right.tiles.iter().zip(&other.tiles) {
            let stored = store
                .get(&Key::Tile(pid.clone(), *name))
                .await
                .unwrap()
                .unwrap();
            let who = if stored.as_ref() == mine.as_slice() {
                "A"
            } else if stored.as_ref() == theirs.as_slice() {
                "B"
            } else {
                panic!("round {round}: tile {name:?} is neither writer's")
            };
            *from.entry(who).or_default() += 1;
        }
        assert_eq!(from.len(), 1, "round {round}: a mixed pyramid {from:?}");
        *winners.entry(*from.keys().next().unwrap()).or_default() += 1;
    }
    eprintln!("rounds won: {winners:?}");
}

/// Stages `pyramid` for writer `who` and commits it, or only stages when `commit` is false.
async fn upload(app: &Router, id: &str, pyramid: &Pyramid, who: As<'_>, commit: bool) {
    let (status, _, body) = send(
        app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            who,
            pyramid.batch(&[]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    if commit {
        let (status, _, body) = send(
            app,
            request(
                "PUT",
                &format!("/pyramids/{id}.dzi"),
                who,
                pyramid.dzi.to_xml(),
            ),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// Every object of a committed pyramid: manifest, committer, tiles.
async fn committed_objects(
    store: &dyn Store,
    id: &str,
    pyramid: &Pyramid,
) -> BTreeMap<String, Vec<u8>> {
    let pid = PyramidId::parse(id).unwrap();
    let mut keys = vec![Key::Dzi(pid.clone()), Key::Committer(pid.clone())];
    keys.extend(
        pyramid
            .tiles
            .iter()
            .map(|(n, _)| Key::Tile(pid.clone(), *n)),
    );
    let mut out = BTreeMap::new();
    for key in keys {
        let bytes = store
            .get(&key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} missing", key.path()));
        out.insert(key.path(), bytes.to_vec());
    }
    out
}

const TTL: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn expired_staged_uploads_are_swept_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(DiskStore::open(dir.path()).unwrap());
    let app = instance(store.clone());
    let pyramid = Pyramid::new(300, 200);
    let (kept, old, young) = (
        test_id("ttl-kept"),
        test_id("ttl-old"),
        test_id("ttl-young"),
    );
    upload(&app, &kept, &pyramid, As::Token(TOKEN_A), true).await;
    let before = committed_objects(store.as_ref(), &kept, &pyramid).await;
    upload(&app, &old, &pyramid, As::Token(TOKEN_A), false).await;
    upload(
        &app,
        &young,
        &pyramid,
        As::Session(Some("00000000000000000000000000000001")),
        false,
    )
    .await;
    // The old upload was last written two TTLs ago (file times set back; no sleeping).
    let now = SystemTime::now();
    let mut aged = 0;
    for entry in walk(&dir.path().join("staging")) {
        if entry.to_string_lossy().contains(&format!("{old}_files")) {
            let file = std::fs::File::options().write(true).open(&entry).unwrap();
            file.set_modified(now - 2 * TTL).unwrap();
            aged += 1;
        }
    }
    assert_eq!(aged, pyramid.tiles.len());

    let removed = tile_store::staging::sweep(store.as_ref(), now, TTL)
        .await
        .unwrap();
    assert_eq!(removed, pyramid.tiles.len() as u64);
    let a = As::Token(TOKEN_A);
    assert_eq!(listing(&app, &old, a).await.1, Vec::<String>::new());
    let young_session = As::Session(Some("00000000000000000000000000000001"));
    assert_eq!(
        listing(&app, &young, young_session).await.1.len(),
        pyramid.tiles.len()
    );
    assert_eq!(
        committed_objects(store.as_ref(), &kept, &pyramid).await,
        before
    );

    // A TTL later the young one goes too; the committed pyramid stays.
    let removed = tile_store::staging::sweep(store.as_ref(), now + 2 * TTL, TTL)
        .await
        .unwrap();
    assert_eq!(removed, pyramid.tiles.len() as u64);
    assert_eq!(
        listing(&app, &young, young_session).await.1,
        Vec::<String>::new()
    );
    assert_eq!(
        committed_objects(store.as_ref(), &kept, &pyramid).await,
        before
    );
}

#[tokio::test]
async fn expired_staged_uploads_are_swept_on_moto() {
    let moto = Moto::start().await;
    let store: Arc<dyn Store> = Arc::new(moto.store("ttl/"));
    let app = instance(store.clone());
    let pyramid = Pyramid::new(300, 200);
    let (kept, staged) = (test_id("ttl-kept"), test_id("ttl-staged"));
    upload(&app, &kept, &pyramid, As::Token(TOKEN_A), true).await;
    let before = committed_objects(store.as_ref(), &kept, &pyramid).await;
    upload(&app, &staged, &pyramid, As::Token(TOKEN_A), false).await;
    let a = As::Token(TOKEN_A);
    let now = SystemTime::now();

    // Younger than the TTL: kept.
    assert_eq!(
        tile_store::staging::sweep(store.as_ref(), now, TTL)
            .await
            .unwrap(),
        0
    );
    assert_eq!(listing(&app, &staged, a).await.1.len(), pyramid.tiles.len());
    // Older (as seen from two TTLs on): removed, by S3's LastModified.
    let removed = tile_store::staging::sweep(store.as_ref(), now + 2 * TTL, TTL)
        .await
        .unwrap();
    assert_eq!(removed, pyramid.tiles.len() as u64);
    assert_eq!(listing(&app, &staged, a).await.1, Vec::<String>::new());
    assert_eq!(
        committed_objects(store.as_ref(), &kept, &pyramid).await,
        before
    );
    let left = moto
        .client()
        .list_objects_v2()
        .bucket(common::moto::BUCKET)
        .prefix("ttl/staging/")
        .send()
        .await
        .unwrap();
    assert_eq!(left.key_count(), Some(0));
}

/// Two instances on one moto bucket: a commit and a delete racing never leave a
/// manifest without its tiles.
#[tokio::test]
async fn delete_racing_commit_never_leaves_a_manifest_without_tiles_on_moto() {
    let moto = Moto::start().await;
    let store: Arc<dyn Store> = Arc::new(moto.store(""));
    let (first, second) = (instance(store.clone()), instance(store.clone()));
    let pyramid = Pyramid::new(600, 400);
    let id = test_id("moto-delete-race");
    let pid = PyramidId::parse(&id).unwrap();
    let a = As::Token(TOKEN_A);
    let mut outcomes = BTreeMap::new();
    for round in 0..12 {
        upload(&first, &id, &pyramid, a, false).await;
        let deleter = if round % 2 == 0 { &second } else { &first };
        let commit = send(
            &first,
            request(
                "PUT",
                &format!("/pyramids/{id}.dzi"),
                a,
                pyramid.dzi.to_xml(),
            ),
        );
        let delete = send(
            deleter,
            request("DELETE", &format!("/pyramids/{id}"), a, ""),
        );
        let ((c, _, _), (d, _, _)) =
            tokio::time::timeout(HANG, async { tokio::join!(commit, delete) })
                .await
                .expect("no hang");
        *outcomes.entry((c.as_u16(), d.as_u16())).or_insert(0) += 1;
        if store.head(&Key::Dzi(pid.clone())).await.unwrap().is_some() {
            let tiles = store.list_tiles(&pid).await.unwrap();
            assert_eq!(
                tiles.len(),
                pyramid.tiles.len(),
                "round {round}: commit {c}, delete {d}: a manifest without its tiles"
            );
        }
        let (d, _, _) = send(&first, request("DELETE", &format!("/pyramids/{id}"), a, "")).await;
        assert_eq!(d, StatusCode::OK);
    }
    eprintln!("commit/delete outcomes on moto: {outcomes:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Without a geometry, `--max-tiles-per-pyramid` bounds what each writer stages for an
/// id: one writer at the cap does not stop another.
#[tokio::test]
async fn the_upload_cap_counts_per_writer() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::new(&AuthSettings {
        tokens: vec![TOKEN_A.into()],
        allow_anonymous_writes: true,
        ..Default::default()
    })
    .unwrap();
    let mut state = AppState::new(Arc::new(DiskStore::open(dir.path()).unwrap()), auth);
    state.limits.max_tiles_per_pyramid = 3;
    let app = app(state);
    let id = test_id("cap-per-writer");
    let pyramid = Pyramid::new(300, 200);
    let batch = |from: usize, to: usize| {
        tile_store::routes::batch::encode(
            pyramid.tiles[from..to]
                .iter()
                .map(|(n, b)| (*n, b.as_slice())),
        )
    };
    let uri = format!("/pyramids/{id}/tiles");
    let b = As::Session(Some("b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"));
    for who in [As::Token(TOKEN_A), b] {
        let (status, _, body) = send(&app, request("POST", &uri, who, batch(0, 3))).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let (status, _, body) = send(&app, request("POST", &uri, who, batch(3, 4))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(common::error_code(&body), "too_many_tiles");
    }
}
