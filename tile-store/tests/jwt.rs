//! JWTs (issue 13): required `aud`/`iss`, `nbf`/`iat` with leeway, RS256/ES256 from a
//! JWK set served on 127.0.0.1 (and its rotation), scopes, and error bodies that never
//! carry the JWT library's messages. The test keys are in `tests/data/jwt/`.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tile_store::auth::{Auth, AuthSettings, JwksSource};
use tile_store::fetch::{FetchSettings, Fetcher};
use tile_store::store::disk::DiskStore;
use tile_store::{app, AppState};

const SECRET: &str = "jwt-matrix-secret";
const AUD: &str = "tessera-tiles";
const ISS: &str = "https://id.example";

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn jwk(name: &str) -> Value {
    serde_json::from_slice(&data(&format!("{name}.jwk.json"))).unwrap()
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::RS256 => {
            EncodingKey::from_rsa_der(&data(&format!("{}.der", kid.unwrap_or("rsa-1"))))
        }
        Algorithm::ES256 => EncodingKey::from_ec_der(&data("ec-1.der")),
        other => panic!("no test key for {other:?}"),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Valid claims, with `changes` applied (`null` removes a claim).
fn claims(changes: Value) -> Value {
    let mut c = json!({
        "sub": "user-1", "aud": AUD, "iss": ISS,
        "exp": now() + 600, "iat": now(), "nbf": now(),
        "scope": "tiles:write",
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn settings() -> AuthSettings {
    AuthSettings {
        jwt_secret: Some(SECRET.into()),
        jwt_audience: Some(AUD.into()),
        jwt_issuer: Some(ISS.into()),
        jwt_leeway: 30,
        ..AuthSettings::default()
    }
}

fn state_with(dir: &std::path::Path, auth: Auth) -> AppState {
    AppState::new(Arc::new(DiskStore::open(dir).unwrap()), auth)
}

/// `GET /pyramids/{id}/tiles` (a write-authorised route) with `token`.
async fn try_token(app: &axum::Router, token: &str) -> (StatusCode, Value) {
    let id = test_id("jwt");
    let (status, _, body) = send(
        app,
        request("GET", &format!("/pyramids/{id}/tiles"), Some(token), ""),
    )
    .await;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, body)
}

/// The library's own wording must never reach the client.
fn assert_no_library_text(body: &Value) {
    let message = body["error"]["message"].as_str().unwrap_or("");
    for leak in [
        "ExpiredSignature",
        "InvalidSignature",
        "InvalidAudience",
        "ImmatureSignature",
        "MissingRequiredClaim",
        "InvalidToken",
        "InvalidAlgorithm",
        "Base64",
        "Json",
        "Error(",
    ] {
        assert!(
            !message.contains(leak),
            "error body echoes the library: {body}"
        );
    }
}

#[tokio::test]
async fn claim_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state_with(dir.path(), Auth::new(&settings()).unwrap()));
    let hs = |changes: Value| sign(Algorithm::HS256, None, &claims(changes));
    let cases: Vec<(&str, String, bool, &str)> = vec![
        ("valid", hs(json!({})), true, ""),
        ("no aud", hs(json!({"aud": null})), false, "no aud claim"),
        ("no iss", hs(json!({"iss": null})), false, "no iss claim"),
        (
            "wrong aud",
            hs(json!({"aud": "other"})),
            false,
            "wrong audience",
        ),
        (
            "aud list with ours",
            hs(json!({"aud": ["x", AUD]})),
            true,
            "",
        ),
        (
            "wrong iss",
            hs(json!({"iss": "https://evil.example"})),
            false,
            "wrong issuer",
        ),
        ("no exp", hs(json!({"exp": null})), false, "no exp claim"),
        ("expired", hs(json!({"exp": now() - 300})), false, "expired"),
        (
            "expired within leeway",
            hs(json!({"exp": now() - 5})),
            true,
            "",
        ),
        (
            "nbf in the future",
            hs(json!({"nbf": now() + 300})),
            false,
            "not valid yet",
        ),
        ("nbf within leeway", hs(json!({"nbf": now() + 5})), true, ""),
        (
            "iat in the future",
            hs(json!({"iat": now() + 300})),
            false,
            "issued in the future",
        ),
        ("iat within leeway", hs(json!({"iat": now() + 5})), true, ""),
        (
            "iat not a number",
            hs(json!({"iat": "yesterday"})),
            false,
            "iat",
        ),
        ("no sub", hs(json!({"sub": null})), false, "no sub"),
        (
            "alg none",
            unsigned_jwt(now() + 600),
            false,
            "token refused",
        ),
        (
            "wrong secret",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims(json!({})),
                &EncodingKey::from_secret(b"another secret"),
            )
            .unwrap(),
            false,
            "token refused",
        ),
        (
            "HS512",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS512),
                &claims(json!({})),
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap(),
            false,
            "token refused",
        ),
        // RS256 with no JWK set configured.
        (
            "RS256 without --jwt-jwks",
            sign(Algorithm::RS256, Some("rsa-1"), &claims(json!({}))),
            false,
            "token refused",
        ),
        ("garbage", "not.a.jwt".into(), false, "token refused"),
    ];
    for (name, token, ok, reason) in cases {
        let (status, body) = try_token(&app, &token).await;
        if ok {
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(reason),
                "{name}: {message:?} lacks {reason:?}"
            );
            assert_no_library_text(&body);
        }
    }
}

#[tokio::test]
async fn scopes_are_required_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::new(&AuthSettings {
        jwt_require_scopes: true,
        jwt_scope_claim: Some("scp".into()),
        ..settings()
    })
    .unwrap();
    let app = app(state_with(dir.path(), auth));
    let hs = |changes: Value| sign(Algorithm::HS256, None, &claims(changes));
    for (name, token, status) in [
        (
            "no scope claim",
            hs(json!({"scope": null})),
            StatusCode::FORBIDDEN,
        ),
        // `scope` is not the configured claim here.
        (
            "scope in the wrong claim",
            hs(json!({})),
            StatusCode::FORBIDDEN,
        ),
        (
            "read scope only",
            hs(json!({"scp": "tiles:read"})),
            StatusCode::FORBIDDEN,
        ),
        (
            "string",
            hs(json!({"scp": "openid tiles:write"})),
            StatusCode::OK,
        ),
        ("array", hs(json!({"scp": ["tiles:write"]})), StatusCode::OK),
    ] {
        let (got, body) = try_token(&app, &token).await;
        assert_eq!(got, status, "{name}: {body}");
        if got == StatusCode::FORBIDDEN {
            assert_eq!(body["error"]["code"], "insufficient_scope", "{name}");
            assert!(body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("tiles:write"));
        }
    }
}

/// A JWK set on 127.0.0.1 whose document can be swapped, counting fetches.
struct JwksServer {
    url: String,
    doc: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server(keys: &[&str]) -> JwksServer {
    let doc = Arc::new(Mutex::new(
        json!({ "keys": keys.iter().map(|k| jwk(k)).collect::<Vec<_>>() }),
    ));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (d, f) = (Arc::clone(&doc), Arc::clone(&fetches));
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (d, f) = (Arc::clone(&d), Arc::clone(&f));
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                let body = d.lock().unwrap().to_string();
                ([("content-type", "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    JwksServer {
        url: format!("http://{addr}/jwks.json"),
        doc,
        fetches,
    }
}

async fn jwks_auth(url: &str, allow: &[&str], refetch: Duration) -> tile_store::Result<Auth> {
    let fetcher = Fetcher::new(&FetchSettings {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        max_bytes: tile_store::auth::MAX_JWKS_BYTES,
        ..FetchSettings::default()
    })
    .unwrap();
    Auth::with_jwks_source(
        &AuthSettings {
            jwt_secret: None,
            jwks_refetch_interval: Some(refetch),
            ..settings()
        },
        &JwksSource::parse(url).unwrap(),
        Some(fetcher),
    )
    .await
}

#[tokio::test]
async fn rs256_and_es256_from_a_jwks_url_with_rotation() {
    let server = jwks_server(&["rsa-1", "ec-1"]).await;
    // Loopback is refused unless allowed, like any source URL.
    let refused = jwks_auth(&server.url, &[], Duration::from_millis(200)).await;
    assert!(
        refused.is_err(),
        "a loopback JWK set URL was fetched without --fetch-allow"
    );
    assert_eq!(server.fetches.load(Ordering::SeqCst), 0);

    let auth = jwks_auth(&server.url, &["127.0.0.1"], Duration::from_millis(200))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = app(state_with(dir.path(), auth));
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);

    let rs1 = sign(Algorithm::RS256, Some("rsa-1"), &claims(json!({})));
    let es1 = sign(Algorithm::ES256, Some("ec-1"), &claims(json!({})));
    for token in [&rs1, &es1] {
        let (status, body) = try_token(&app, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        1,
        "known keys are cached"
    );

    // Claims are checked for RS256 too.
    let (status, body) = try_token(
        &app,
        &sign(
            Algorithm::RS256,
            Some("rsa-1"),
            &claims(json!({"aud": null})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // An HS256 token when only a JWK set is configured (alg confusion with a public key).
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(jwk("rsa-1")["n"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    let (status, body) = try_token(&app, &confused).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_no_library_text(&body);
    // An RS256 token naming the EC key's kid: no RS256 key has that kid.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("ec-1".into());
    let mislabelled = jsonwebtoken::encode(
        &header,
        &claims(json!({})),
        &EncodingKey::from_rsa_der(&data("rsa-1.der")),
    )
    .unwrap();
    let (status, _) = try_token(&app, &mislabelled).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_rotation = server.fetches.load(Ordering::SeqCst);

    // Rotation: rsa-2 is unknown, and the set does not have it yet.
    let rs2 = sign(Algorithm::RS256, Some("rsa-2"), &claims(json!({})));
    let (status, body) = try_token(&app, &rs2).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown key"));
    let after_miss = server.fetches.load(Ordering::SeqCst);
    assert_eq!(
        after_miss,
        before_rotation + 1,
        "an unknown kid fetches the set again"
    );
    // Unknown kids do not make every request fetch: within the interval, no fetch.
    let (status, _) = try_token(&app, &rs2).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.fetches.load(Ordering::SeqCst), after_miss);

    // The provider publishes rsa-2 (and retires rsa-1).
    *server.doc.lock().unwrap() = json!({ "keys": [jwk("rsa-2"), jwk("ec-1")] });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = try_token(&app, &rs2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.fetches.load(Ordering::SeqCst), after_miss + 1);
    let (status, _) = try_token(&app, &rs1).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a retired key still verifies"
    );
}

#[tokio::test]
async fn jwks_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({ "keys": [jwk("ec-1")] }).to_string()).unwrap();
    let auth = Auth::with_jwks_source(
        &AuthSettings {
            jwt_secret: None,
            ..settings()
        },
        &JwksSource::parse(path.to_str().unwrap()).unwrap(),
        None,
    )
    .await
    .unwrap();
    let app = app(state_with(&dir.path().join("data"), auth));
    let (status, body) = try_token(
        &app,
        &sign(Algorithm::ES256, Some("ec-1"), &claims(json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same claims signed by a key not in the file.
    let (status, _) = try_token(
        &app,
        &sign(Algorithm::RS256, Some("rsa-1"), &claims(json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
