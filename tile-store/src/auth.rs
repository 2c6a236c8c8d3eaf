//! Bearer authentication: static tokens and HS256 JWTs signed with a shared secret,
//! the way the NestJS app issues them.

use crate::error::{AppError, Result};
use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

/// Who may read and write.
pub struct Auth {
    /// SHA-256 of each static token; compared by digest so that timing reveals nothing.
    token_digests: Vec<[u8; 32]>,
    jwt: Option<(DecodingKey, Validation)>,
    anonymous_writes: bool,
    require_read_token: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.token_digests.len())
            .field("jwt", &self.jwt.is_some())
            .field("anonymous_writes", &self.anonymous_writes)
            .field("require_read_token", &self.require_read_token)
            .finish()
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
    /// Writes without a token are accepted.
    pub allow_anonymous_writes: bool,
    /// Reads need a token too.
    pub require_read_token: bool,
}

impl Auth {
    /// Builds the verifier. With no tokens and no secret, writes are anonymous
    /// (the caller refuses that on non-loopback addresses unless allowed).
    pub fn new(settings: &AuthSettings) -> Result<Self> {
        let token_digests: Vec<[u8; 32]> = settings
            .tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(|t| Sha256::digest(t.as_bytes()).into())
            .collect();
        let jwt = match settings.jwt_secret.as_deref() {
            Some(secret) if !secret.is_empty() => {
                // Pinned to HS256: a token naming any other algorithm, `none`
                // included, is refused before its signature is looked at.
                let mut validation = Validation::new(Algorithm::HS256);
                validation.set_required_spec_claims(&["exp"]);
                validation.validate_exp = true;
                match &settings.jwt_audience {
                    Some(aud) => validation.set_audience(&[aud]),
                    None => validation.validate_aud = false,
                }
                if let Some(iss) = &settings.jwt_issuer {
                    validation.set_issuer(&[iss]);
                }
                Some((DecodingKey::from_secret(secret.as_bytes()), validation))
            }
            _ => None,
        };
        let has_credentials = !token_digests.is_empty() || jwt.is_some();
        if settings.require_read_token && !has_credentials {
            return Err(AppError::Config(
                "--require-read-token needs --token or --jwt-secret".into(),
            ));
        }
        Ok(Auth {
            anonymous_writes: settings.allow_anonymous_writes || !has_credentials,
            token_digests,
            jwt,
            require_read_token: settings.require_read_token,
        })
    }

    /// Whether writes are accepted without a token.
    pub fn anonymous_writes(&self) -> bool {
        self.anonymous_writes
    }

    /// Checks the credentials of a write request.
    pub fn authorize_write(&self, headers: &HeaderMap) -> Result<()> {
        if self.anonymous_writes {
            return Ok(());
        }
        self.verify(headers)
    }

    /// Checks the credentials of a read request.
    pub fn authorize_read(&self, headers: &HeaderMap) -> Result<()> {
        if !self.require_read_token {
            return Ok(());
        }
        self.verify(headers)
    }

    fn verify(&self, headers: &HeaderMap) -> Result<()> {
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
            return Ok(());
        }
        if let Some((key, validation)) = &self.jwt {
            return match jsonwebtoken::decode::<serde_json::Value>(token, key, validation) {
                Ok(_) => Ok(()),
                Err(e) => {
                    tracing::debug!(error = %e, "JWT refused");
                    Err(AppError::Unauthorized(format!("token refused: {e}")))
                }
            };
        }
        Err(AppError::Unauthorized("token refused".into()))
    }
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

    #[test]
    fn static_tokens() {
        let auth = Auth::new(&AuthSettings {
            tokens: vec!["s3cret".into()],
            ..Default::default()
        })
        .expect("valid");
        assert!(!auth.anonymous_writes());
        assert!(auth.authorize_write(&headers("Bearer s3cret")).is_ok());
        assert!(auth.authorize_write(&headers("bearer s3cret")).is_ok());
        assert!(auth.authorize_write(&headers("Bearer s3cre")).is_err());
        assert!(auth.authorize_write(&headers("Basic s3cret")).is_err());
        assert!(auth.authorize_write(&HeaderMap::new()).is_err());
        assert!(auth.authorize_read(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn no_credentials_means_anonymous_writes_and_no_read_tokens() {
        let auth = Auth::new(&AuthSettings::default()).expect("valid");
        assert!(auth.anonymous_writes());
        assert!(Auth::new(&AuthSettings {
            require_read_token: true,
            ..Default::default()
        })
        .is_err());
    }
}
