//! `tile-store serve`: picks the store, checks the security settings, and runs the
//! service until SIGINT or SIGTERM, letting in-flight requests finish.

use crate::auth::{Auth, AuthSettings};
use crate::config::{Backend, ServeConfig};
use crate::error::{AppError, Result};
use crate::fetch::FetchSettings;
use crate::gate::UploadGate;
use crate::pipeline::{Tiling, TilingSettings};
use crate::store::disk::DiskStore;
use crate::store::s3::{S3Settings, S3Store};
use crate::store::Store;
use crate::{app, AppState, UploadLimits};
use axum::body::Body;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

/// Builds the state described by `config` (store connected, auth checked).
pub async fn state_from_config(config: &ServeConfig) -> Result<AppState> {
    let auth = Auth::new(&AuthSettings {
        tokens: config.tokens.clone(),
        jwt_secret: config.jwt_secret.clone(),
        jwt_audience: config.jwt_audience.clone(),
        jwt_issuer: config.jwt_issuer.clone(),
        allow_anonymous_writes: config.allow_anonymous_writes,
        require_read_token: config.require_read_token,
    })?;
    if auth.anonymous_writes()
        && !config.listen.ip().is_loopback()
        && !config.allow_anonymous_writes
    {
        return Err(AppError::Config(format!(
            "refusing to accept anonymous writes on {}: give --token or --jwt-secret, \
             listen on a loopback address, or pass --allow-anonymous-writes",
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
    };
    state.cors_origins = config.cors_origin.clone();
    state.web_dir = config.web_dir.clone();
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
    }
}

/// Limits on each connection, enforced before a request reaches the router.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest a client may take to send a request's headers (the connection is
    /// closed past it), so trickled headers cannot hold a connection for ever.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers); past it, `431`.
    pub max_header_bytes: usize,
    /// Most header fields in one request; past it, `431`.
    pub max_headers: usize,
    /// Connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 << 10,
            max_headers: 100,
            max_connections: 4096,
        }
    }
}

/// Longest graceful shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The service with the limits every request is held to on the network: a total
/// time per request (body included), past which it gets a `408`.
pub fn service(state: AppState, request_timeout: Duration) -> axum::Router {
    app(state).layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        request_timeout,
    ))
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
    let service = service(state, Duration::from_secs(config.request_timeout.max(1)));
    serve_connections(
        listener,
        service,
        &ConnectionLimits::default(),
        shutdown_signal(),
    )
    .await;
    tracing::info!("tile-store stopped");
    Ok(())
}

/// Accepts connections until `shutdown` resolves, then lets in-flight requests finish.
///
/// Written out rather than `axum::serve`, which sets no header-read timeout: a client
/// trickling its headers could otherwise hold a connection for ever.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    service: axum::Router,
    limits: &ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let Ok(slot) = connections.clone().acquire_owned().await else {
            break;
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, usually: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let hyper_service = TowerToHyperService::new(
            service
                .clone()
                .map_request(|request: axum::http::Request<Incoming>| request.map(Body::new)),
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), hyper_service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: gave up waiting for in-flight requests");
    }
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
