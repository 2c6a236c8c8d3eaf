//! `tile-store serve`: picks the store, checks the security settings, and runs the
//! service until SIGINT or SIGTERM, letting in-flight requests finish.

use crate::auth::{Auth, AuthSettings, JwksSource};
use crate::config::{Backend, ServeConfig};
use crate::error::{AppError, Result};
use crate::fetch::{FetchSettings, Fetcher};
use crate::gate::UploadGate;
use crate::store::disk::DiskStore;
use crate::store::s3::{S3Settings, S3Store};
use crate::store::Store;
use crate::tiling::board::BoardSettings;
use crate::tiling::{Tiling, TilingSettings};
use crate::{app, AppState, UploadLimits};
use axum::http::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

/// Builds the state described by `config` (store connected, auth checked).
pub async fn state_from_config(config: &ServeConfig) -> Result<AppState> {
    let jwt_secret = match &config.jwt_secret_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                AppError::Config(format!("--jwt-secret-file {}: {e}", path.display()))
            })?;
            let secret = text.trim_end_matches(['\r', '\n']).to_owned();
            if secret.is_empty() {
                return Err(AppError::Config(format!(
                    "--jwt-secret-file {} is empty",
                    path.display()
                )));
            }
            Some(secret)
        }
        None => config.jwt_secret.clone(),
    };
    let settings = AuthSettings {
        tokens: config.tokens.clone(),
        jwt_secret,
        jwt_audience: config.jwt_audience.clone(),
        jwt_issuer: config.jwt_issuer.clone(),
        jwt_leeway: config.jwt_leeway,
        jwt_scope_claim: Some(config.jwt_scope_claim.clone()),
        jwt_require_scopes: config.jwt_require_scopes,
        allow_anonymous_writes: config.allow_anonymous_writes,
        require_read_token: config.require_read_token,
        jwks_refetch_interval: None,
    };
    let auth = match config.jwt_jwks.as_deref().filter(|s| !s.is_empty()) {
        Some(source) => {
            let fetcher = Fetcher::new(&FetchSettings {
                allow: config.fetch_allow.clone(),
                max_bytes: crate::auth::MAX_JWKS_BYTES,
                connect_timeout: Duration::from_secs(config.fetch_connect_timeout),
                total_timeout: Duration::from_secs(config.fetch_connect_timeout.saturating_mul(2)),
            })?;
            Auth::with_jwks_source(&settings, &JwksSource::parse(source)?, Some(fetcher)).await?
        }
        None => Auth::new(&settings)?,
    };
    if auth.anonymous_writes()
        && !config.listen.ip().is_loopback()
        && !config.allow_anonymous_writes
    {
        return Err(AppError::Config(format!(
            "refusing to accept anonymous writes on {}: give --token or --jwt-secret, \
             --jwt-jwks, listen on a loopback address, or pass --allow-anonymous-writes",
            config.listen
        )));
    }
    let mut s3_source = None;
    let store: Arc<dyn Store> = match config.backend {
        Backend::Disk => Arc::new(DiskStore::open(&config.data_dir)?),
        Backend::S3 => {
            let bucket = config
                .s3_bucket
                .clone()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| {
                    AppError::Config("--store s3 needs AWS_S3_BUCKET_NAME (or --s3-bucket)".into())
                })?;
            if config.s3_prefix.starts_with('/') {
                return Err(AppError::Config(
                    "--s3-prefix must not start with '/'".into(),
                ));
            }
            let s3 = S3Store::from_env(S3Settings {
                bucket,
                prefix: config.s3_prefix.clone(),
                path_style: config.s3_path_style,
                timeout: Duration::from_secs(config.s3_timeout.max(1)),
            })
            .await?;
            s3_source = Some(s3.clone());
            Arc::new(s3)
        }
    };
    let mut state = AppState::new(store, auth);
    state.limits = UploadLimits {
        max_tile_bytes: config.max_tile_bytes,
        max_request_bytes: config.max_request_bytes,
        max_tiles_per_pyramid: config.max_tiles_per_pyramid,
    };
    state.cors_origins = config.cors_origin.clone();
    state.web_dir = config.web_dir.clone();
    state.cross_origin_isolation = config.cross_origin_isolation;
    state.committed = Arc::new(crate::CommittedIds::new(Duration::from_secs(
        config.committed_ttl,
    )));
    state.tiling = Arc::new(Tiling::new(&tiling_settings(config), s3_source)?);
    Ok(state)
}

fn tiling_settings(config: &ServeConfig) -> TilingSettings {
    TilingSettings {
        fetch: FetchSettings {
            allow: config.fetch_allow.clone(),
            max_bytes: config.max_source_bytes,
            connect_timeout: Duration::from_secs(config.fetch_connect_timeout),
            total_timeout: Duration::from_secs(config.fetch_timeout),
        },
        max_jobs: config.max_jobs,
        s3_source_prefixes: config.s3_source_prefix.clone(),
        max_queued_source_bytes: config.max_queued_source_bytes,
        spool_dir: config.spool_dir.clone().unwrap_or_else(std::env::temp_dir),
        board: BoardSettings {
            instance: config.instance_id.clone(),
            lease: Duration::from_secs(config.job_lease),
            retention: Duration::from_secs(config.job_retention),
        },
    }
}

pub use crate::conn::{serve_connections, ConnectionLimits};

/// The per-connection limits `config` asks for.
pub fn connection_limits(config: &ServeConfig) -> ConnectionLimits {
    ConnectionLimits {
        header_timeout: Duration::from_secs(config.header_timeout),
        idle_timeout: Duration::from_secs(config.idle_timeout),
        write_timeout: Duration::from_secs(config.write_timeout),
        max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
        shutdown_timeout: Duration::from_secs(config.shutdown_timeout),
        ..ConnectionLimits::default()
    }
}

/// The service with the limits every request is held to on the network: a total
/// time per request (body included), past which it gets a `408`.
pub fn service(state: AppState, request_timeout: Duration) -> axum::Router {
    // nosniff again outside the timeout, so that its 408 carries it too.
    crate::routes::with_nosniff(app(state).layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        request_timeout,
    )))
}

/// Runs the service until a shutdown signal.
pub async fn run(config: ServeConfig) -> Result<()> {
    let mut state = state_from_config(&config).await?;
    state.uploads = Arc::new(UploadGate::new(
        config.max_concurrent_uploads,
        crate::gate::DEFAULT_WAIT,
    ));
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(
        store = %state.store.describe(),
        anonymous_writes = state.auth.anonymous_writes(),
        web_dir = ?state.web_dir,
        "tile-store listening on http://{}",
        listener.local_addr()?
    );
    let sweeper = crate::staging::spawn_sweeper(
        Arc::clone(&state.store),
        Duration::from_secs(config.upload_ttl),
    );
    let scan = crate::tiling::runner::spawn_scan(state.clone());
    let service = service(
        state.clone(),
        Duration::from_secs(config.request_timeout.max(1)),
    );
    let finished = serve_connections(
        listener,
        service,
        &connection_limits(&config),
        shutdown_signal(),
    )
    .await;
    sweeper.abort();
    scan.abort();
    // Jobs still running here are given back, for another instance to claim at once
    // rather than after their lease (a killed instance's jobs wait for that).
    let handed = crate::tiling::runner::hand_back(&state).await;
    if handed > 0 {
        tracing::info!(jobs = handed, "running jobs handed back to the store");
    }
    tracing::info!(all_requests_finished = finished, "tile-store stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
