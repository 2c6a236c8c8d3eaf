//! Bearer authentication: static tokens, HS256 JWTs signed with a shared secret (the
//! way the NestJS app issues them), and RS256 / ES256 JWTs verified against a JWK set
//! (a file, or a URL fetched with the SSRF-safe [`Fetcher`], cached and fetched again
//! when a token names a key it does not hold), so an identity provider's tokens work
//! directly.
//!
//! Claims: `exp` always; `aud` and `iss` whenever `--jwt-audience` / `--jwt-issuer`
//! are set (a token without them is refused); `nbf` and `iat` must not lie in the
//! future, with `--jwt-leeway` seconds of clock skew. With `--jwt-require-scopes`, a
//! JWT needs `tiles:write` to write and `tiles:delete` to delete any pyramid (its
//! committer may delete its own). Static tokens carry every scope.
//!
//! Error bodies say which rule refused a token, never what the JWT library said.

use crate::error::{AppError, Result};
use crate::fetch::Fetcher;
use axum::http::{header, HeaderMap};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};
use reqwest::Url;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// The scope a JWT needs to upload and commit (with `--jwt-require-scopes`).
pub const SCOPE_WRITE: &str = "tiles:write";
/// The scope a JWT needs to delete any pyramid (with `--jwt-require-scopes`).
pub const SCOPE_DELETE: &str = "tiles:delete";
/// Default `--jwt-leeway`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Most keys kept from a JWK set.
const MAX_JWKS_KEYS: usize = 64;
/// Largest JWK set document fetched.
pub const MAX_JWKS_BYTES: u64 = 256 << 10;
/// A JWK set URL is fetched again for an unknown `kid` at most this often (default).
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
/// A fetched JWK set is fetched again when older than this.
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Longest subject kept (longer ones are hashed).
const MAX_SUBJECT_CHARS: usize = 128;

/// The subject of every caller without credentials.
const ANONYMOUS: &str = "anonymous";

/// Who made a request, once its credentials are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The writer's identity: `jwt:{sub}`, `token:{digest prefix}`, or `anonymous`
    /// (all anonymous writers share this one; their uploads are told apart by
    /// upload session, see [`crate::staging`]).
    pub subject: String,
    /// Whether the caller may delete any pyramid (not only its own commits).
    pub can_delete_any: bool,
}

impl Caller {
    /// Whether the caller sent no credentials (its uploads are told apart by session).
    pub fn is_anonymous(&self) -> bool {
        self.subject == ANONYMOUS
    }

    /// Every writer without a token: one shared identity, deleting only what it committed.
    pub fn anonymous() -> Self {
        Caller {
            subject: ANONYMOUS.into(),
            can_delete_any: false,
        }
    }
}

/// Where JWT signing keys for RS256 / ES256 come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A JWK set document on disk (read once, at start-up).
    File(std::path::PathBuf),
    /// A JWK set URL, fetched with the SSRF-safe client.
    Url(Url),
}

impl JwksSource {
    /// A URL when `text` starts with `http://` or `https://`, a file path otherwise.
    pub fn parse(text: &str) -> Result<Self> {
        if text.starts_with("http://") || text.starts_with("https://") {
            Url::parse(text)
                .map(JwksSource::Url)
                .map_err(|e| AppError::Config(format!("--jwt-jwks {text:?}: {e}")))
        } else {
            Ok(JwksSource::File(text.into()))
        }
    }
}

/// Settings for [`Auth::new`].
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Static bearer tokens.
    pub tokens: Vec<String>,
    /// HS256 shared secret.
    pub jwt_secret: Option<String>,
    /// Required `aud`, if any.
    pub jwt_audience: Option<String>,
    /// Required `iss`, if any.
    pub jwt_issuer: Option<String>,
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
    pub jwt_leeway: u64,
    /// JWT claim holding the scopes (`scope` by default): a space-separated string
    /// or an array of strings.
    pub jwt_scope_claim: Option<String>,
    /// JWTs need [`SCOPE_WRITE`] to write and [`SCOPE_DELETE`] to delete any pyramid.
    pub jwt_require_scopes: bool,
    /// Writes without a token are accepted.
    pub allow_anonymous_writes: bool,
    /// Reads need a token too.
    pub require_read_token: bool,
    /// Shortest time between two fetches of a JWK set URL for unknown keys
    /// (10 s when `None`).
    pub jwks_refetch_interval: Option<Duration>,
}

/// What a JWK set holds, ready to verify with.
#[derive(Default)]
struct KeySet {
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
    fetched: Option<Instant>,
}

impl KeySet {
    fn parse(json: &[u8]) -> Result<Self> {
        let set: JwkSet = serde_json::from_slice(json)
            .map_err(|e| AppError::Config(format!("JWK set is not valid JSON: {e}")))?;
        let mut keys = Vec::new();
        for jwk in set.keys.iter().take(MAX_JWKS_KEYS) {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                // Other key types and curves are not accepted, and skipped.
                _ => continue,
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => keys.push((jwk.common.key_id.clone(), alg, key)),
                Err(e) => tracing::warn!(kid = ?jwk.common.key_id, error = %e, "JWK skipped"),
            }
        }
        Ok(KeySet {
            keys,
            fetched: Some(Instant::now()),
        })
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Vec<&DecodingKey> {
        self.keys
            .iter()
            .filter(|(k, a, _)| *a == alg && (kid.is_none() || k.as_deref() == kid))
            .map(|(_, _, key)| key)
            .collect()
    }
}

struct Jwks {
    url: Option<(Url, Fetcher)>,
    keys: RwLock<KeySet>,
    min_refetch: Duration,
}

impl Jwks {
    async fn refetch(&self, force: bool) {
        let Some((url, fetcher)) = &self.url else {
            return;
        };
        {
            let keys = self.keys.read().await;
            let age = keys.fetched.map(|at| at.elapsed());
            let due = match age {
                None => true,
                Some(age) if force => age >= self.min_refetch,
                Some(age) => age >= JWKS_MAX_AGE,
            };
            if !due {
                return;
            }
        }
        let mut keys = self.keys.write().await;
        // Another request may have fetched while this one waited for the lock.
        if keys
            .fetched
            .is_some_and(|at| at.elapsed() < self.min_refetch)
        {
            return;
        }
        match fetcher
            .fetch(url, |_, _| {})
            .await
            .and_then(|b| KeySet::parse(&b))
        {
            Ok(fresh) => {
                tracing::info!(%url, keys = fresh.keys.len(), "JWK set fetched");
                *keys = fresh;
            }
            Err(e) => {
                // Kept: the old keys go on working while the provider is unreachable;
                // the time is set so that a failing URL is not hammered.
                tracing::warn!(%url, error = %e, "JWK set fetch failed");
                keys.fetched = Some(Instant::now());
            }
        }
    }
}

/// Who may read and write.
pub struct Auth {
    /// SHA-256 of each static token; compared by digest so that timing reveals nothing.
    token_digests: Vec<[u8; 32]>,
    secret: Option<DecodingKey>,
    jwks: Option<Jwks>,
    audience: Option<String>,
    issuer: Option<String>,
    leeway: u64,
    scope_claim: String,
    require_scopes: bool,
    anonymous_writes: bool,
    has_credentials: bool,
    require_read_token: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.token_digests.len())
            .field("jwt_secret", &self.secret.is_some())
            .field("jwks", &self.jwks.is_some())
            .field("anonymous_writes", &self.anonymous_writes)
            .field("require_read_token", &self.require_read_token)
            .finish_non_exhaustive()
    }
}

/// Which permission a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Write,
}

impl Auth {
    /// Builds the verifier. With no tokens, no secret and no JWK set, writes are
    /// anonymous (the caller refuses that on non-loopback addresses unless allowed).
    pub fn new(settings: &AuthSettings) -> Result<Self> {
        Self::with_jwks(settings, None)
    }

    /// [`Auth::new`] with RS256 / ES256 keys from `jwks`; a URL is fetched with
    /// `fetcher` now (start-up fails if it cannot be) and again when needed.
    pub async fn with_jwks_source(
        settings: &AuthSettings,
        jwks: &JwksSource,
        fetcher: Option<Fetcher>,
    ) -> Result<Self> {
        let min_refetch = settings.jwks_refetch_interval.unwrap_or(JWKS_MIN_REFETCH);
        let jwks = match jwks {
            JwksSource::File(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| AppError::Config(format!("--jwt-jwks {}: {e}", path.display())))?;
                Jwks {
                    url: None,
                    keys: RwLock::new(KeySet::parse(&bytes)?),
                    min_refetch,
                }
            }
            JwksSource::Url(url) => {
                let fetcher = fetcher.ok_or_else(|| {
                    AppError::Config("--jwt-jwks URL needs an HTTP client".into())
                })?;
                fetcher.check(url.as_str()).map_err(|e| {
                    AppError::Config(format!(
                        "--jwt-jwks {url}: {e} (loopback or private hosts need --fetch-allow)"
                    ))
                })?;
                let bytes = fetcher
                    .fetch(url, |_, _| {})
                    .await
                    .map_err(|e| AppError::Config(format!("--jwt-jwks {url}: {e}")))?;
                Jwks {
                    keys: RwLock::new(KeySet::parse(&bytes)?),
                    url: Some((url.clone(), fetcher)),
                    min_refetch,
                }
            }
        };
        Self::with_jwks(settings, Some(jwks))
    }

    fn with_jwks(settings: &AuthSettings, jwks: Option<Jwks>) -> Result<Self> {
        let token_digests: Vec<[u8; 32]> = settings
            .tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(|t| Sha256::digest(t.as_bytes()).into())
            .collect();
        let secret = settings
            .jwt_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| DecodingKey::from_secret(s.as_bytes()));
        let has_credentials = !token_digests.is_empty() || secret.is_some() || jwks.is_some();
        if settings.require_read_token && !has_credentials {
            return Err(AppError::Config(
                "--require-read-token needs --token, --jwt-secret or --jwt-jwks".into(),
            ));
        }
        Ok(Auth {
            anonymous_writes: settings.allow_anonymous_writes || !has_credentials,
            has_credentials,
            token_digests,
            secret,
            jwks,
            audience: settings.jwt_audience.clone().filter(|s| !s.is_empty()),
            issuer: settings.jwt_issuer.clone().filter(|s| !s.is_empty()),
            leeway: settings.jwt_leeway,
            scope_claim: settings
                .jwt_scope_claim
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "scope".into()),
            require_scopes: settings.jwt_require_scopes,
            require_read_token: settings.require_read_token,
        })
    }

    /// Whether writes are accepted without a token.
    pub fn anonymous_writes(&self) -> bool {
        self.anonymous_writes
    }

    /// Whether reads need a token (`--require-read-token`).
    pub fn reads_need_token(&self) -> bool {
        self.require_read_token
    }

    /// Checks the credentials of a write request; the caller's identity.
    ///
    /// With `--allow-anonymous-writes` next to credentials, a request that does carry
    /// a token is still checked (so its writes are its own); one without is
    /// `anonymous`. With no credentials configured at all, every writer is anonymous.
    pub async fn authorize_write(&self, headers: &HeaderMap) -> Result<Caller> {
        if !self.has_credentials {
            // No credentials at all (a loopback or explicitly open server): every
            // writer is the same anonymous one, which may also delete.
            return Ok(Caller {
                can_delete_any: true,
                ..Caller::anonymous()
            });
        }
        if self.anonymous_writes && !headers.contains_key(header::AUTHORIZATION) {
            return Ok(Caller::anonymous());
        }
        self.verify(headers, Need::Write).await
    }

    /// Checks the credentials of a read request.
    pub async fn authorize_read(&self, headers: &HeaderMap) -> Result<()> {
        if !self.require_read_token {
            return Ok(());
        }
        self.verify(headers, Need::Read).await.map(|_| ())
    }

    async fn verify(&self, headers: &HeaderMap, need: Need) -> Result<Caller> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| AppError::Unauthorized("missing bearer token".into()))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AppError::Unauthorized("expected `Authorization: Bearer <token>`".into())
            })?;

        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if self.token_digests.contains(&digest) {
            return Ok(Caller {
                subject: format!("token:{}", hex::encode(&digest[..8])),
                can_delete_any: true,
            });
        }
        if self.secret.is_none() && self.jwks.is_none() {
            return Err(AppError::Unauthorized("token refused".into()));
        }
        let claims = self.verify_jwt(token).await?;
        self.caller_from(&claims, need)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        // Pinned to the one algorithm of the key: a token naming any other, `none`
        // included, is refused before its signature is looked at.
        let mut validation = Validation::new(alg);
        let mut required = vec!["exp"];
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        validation
    }

    async fn verify_jwt(&self, token: &str) -> Result<serde_json::Value> {
        let refused = || AppError::Unauthorized("token refused".into());
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused())?;
        let claims = match header.alg {
            Algorithm::HS256 => {
                let key = self.secret.as_ref().ok_or_else(refused)?;
                decode(token, key, &self.validation(Algorithm::HS256))?
            }
            alg @ (Algorithm::RS256 | Algorithm::ES256) => {
                let jwks = self.jwks.as_ref().ok_or_else(refused)?;
                jwks.refetch(false).await;
                let kid = header.kid.as_deref();
                let mut found = self.try_keys(jwks, token, kid, alg).await;
                if found.is_none() {
                    // A key the provider added since the last fetch (rotation).
                    jwks.refetch(true).await;
                    found = self.try_keys(jwks, token, kid, alg).await;
                }
                found.ok_or_else(|| {
                    AppError::Unauthorized("token signed by an unknown key".into())
                })??
            }
            _ => return Err(refused()),
        };
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_u64().ok_or_else(|| {
                AppError::Unauthorized("token refused: iat is not a number of seconds".into())
            })?;
            if iat > now.saturating_add(self.leeway) {
                return Err(AppError::Unauthorized(
                    "token refused: issued in the future".into(),
                ));
            }
        }
        Ok(claims)
    }

    /// Verifies with the keys matching `kid` and `alg`: `None` when there are none.
    async fn try_keys(
        &self,
        jwks: &Jwks,
        token: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Option<Result<serde_json::Value>> {
        let keys = jwks.keys.read().await;
        let candidates = keys.find(kid, alg);
        let mut last = None;
        for key in candidates {
            match decode(token, key, &self.validation(alg)) {
                Ok(claims) => return Some(Ok(claims)),
                Err(e) => last = Some(Err(e)),
            }
        }
        last
    }

    fn caller_from(&self, claims: &serde_json::Value, need: Need) -> Result<Caller> {
        let scopes: HashSet<&str> = match claims.get(&self.scope_claim) {
            Some(serde_json::Value::String(s)) => s.split_whitespace().collect(),
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(serde_json::Value::as_str).collect()
            }
            _ => HashSet::new(),
        };
        if self.require_scopes && need == Need::Write && !scopes.contains(SCOPE_WRITE) {
            return Err(AppError::Forbidden {
                code: "insufficient_scope",
                message: format!("the token lacks the {SCOPE_WRITE} scope"),
            });
        }
        let sub = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AppError::Unauthorized("token refused: no sub claim".into()))?;
        let subject = if sub.chars().count() <= MAX_SUBJECT_CHARS
            && sub.chars().all(|c| c.is_ascii_graphic())
        {
            format!("jwt:{sub}")
        } else {
            format!("jwt#{}", hex::encode(&Sha256::digest(sub.as_bytes())[..16]))
        };
        Ok(Caller {
            subject,
            can_delete_any: !self.require_scopes || scopes.contains(SCOPE_DELETE),
        })
    }
}

/// Decodes with `key`, mapping the library's error to a fixed message.
fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<serde_json::Value> {
    jsonwebtoken::decode::<serde_json::Value>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| {
            tracing::debug!(error = %e, "JWT refused");
            let reason = match e.kind() {
                ErrorKind::ExpiredSignature => "token refused: expired",
                ErrorKind::ImmatureSignature => "token refused: not valid yet (nbf)",
                ErrorKind::InvalidAudience => "token refused: wrong audience",
                ErrorKind::InvalidIssuer => "token refused: wrong issuer",
                ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                    "exp" => "token refused: no exp claim",
                    "aud" => "token refused: no aud claim",
                    "iss" => "token refused: no iss claim",
                    _ => "token refused: a required claim is missing",
                },
                _ => "token refused",
            };
            AppError::Unauthorized(reason.into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(auth).expect("ascii"),
        );
        h
    }

    #[tokio::test]
    async fn static_tokens() {
        let auth = Auth::new(&AuthSettings {
            tokens: vec!["s3cret".into()],
            ..Default::default()
        })
        .expect("valid");
        assert!(!auth.anonymous_writes());
        let caller = auth
            .authorize_write(&headers("Bearer s3cret"))
            .await
            .expect("valid token");
        assert!(caller.subject.starts_with("token:"));
        assert!(auth
            .authorize_write(&headers("bearer s3cret"))
            .await
            .is_ok());
        assert!(auth
            .authorize_write(&headers("Bearer s3cre"))
            .await
            .is_err());
        assert!(auth
            .authorize_write(&headers("Basic s3cret"))
            .await
            .is_err());
        assert!(auth.authorize_write(&HeaderMap::new()).await.is_err());
        assert!(auth.authorize_read(&HeaderMap::new()).await.is_ok());
    }

    #[tokio::test]
    async fn no_credentials_means_anonymous_writes_and_no_read_tokens() {
        let auth = Auth::new(&AuthSettings::default()).expect("valid");
        assert!(auth.anonymous_writes());
        let caller = auth
            .authorize_write(&HeaderMap::new())
            .await
            .expect("anonymous");
        assert_eq!(caller.subject, Caller::anonymous().subject);
        // Anonymous next to credentials deletes only its own commits.
        let mixed = Auth::new(&AuthSettings {
            tokens: vec!["t".into()],
            allow_anonymous_writes: true,
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(
            mixed
                .authorize_write(&HeaderMap::new())
                .await
                .expect("anonymous"),
            Caller::anonymous()
        );
        assert!(Auth::new(&AuthSettings {
            require_read_token: true,
            ..Default::default()
        })
        .is_err());
    }
}
