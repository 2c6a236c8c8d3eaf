//! Command-line flags, each with an environment fallback.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use tiler_wasm::TileFormat;

/// `tile-store`: Deep Zoom pyramids on local disk or S3, and a native tiler.
#[derive(Debug, Parser)]
#[command(name = "tile-store", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve pyramids over HTTP (and the web app at `/`).
    Serve(Box<ServeConfig>),
    /// Tile an image into `<out-prefix>.dzi` and `<out-prefix>_files/`, as `vips dzsave` does.
    Tile(TileArgs),
}

/// Which store keeps the pyramids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Files under `--data-dir`.
    Disk,
    /// Objects in the bucket `AWS_S3_BUCKET_NAME`.
    S3,
}

/// Settings of `tile-store serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "TILE_STORE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where pyramids are kept.
    #[arg(long = "store", env = "TILE_STORE_BACKEND", value_enum, default_value_t = Backend::Disk)]
    pub backend: Backend,

    /// Folder of the disk store.
    #[arg(long, env = "TILE_STORE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Bucket of the S3 store. Region, keys and endpoint come from the SDK's own
    /// settings: `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`.
    #[arg(long, env = "AWS_S3_BUCKET_NAME")]
    pub s3_bucket: Option<String>,

    /// Path-style S3 addressing (`http://host/bucket/key`), for S3-compatible servers.
    #[arg(long, env = "TILE_STORE_S3_PATH_STYLE", action = clap::ArgAction::Set,
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub s3_path_style: bool,

    /// Prefix of every S3 key, trailing slash included (e.g. `pyramids/`).
    #[arg(long, env = "TILE_STORE_S3_PREFIX", default_value = "")]
    pub s3_prefix: String,

    /// Key prefix (e.g. `uploads/`) that `POST /pyramids {"s3Key": …}` may read from;
    /// repeatable (comma-separated in the environment). None: `s3Key` is refused.
    #[arg(long, env = "TILE_STORE_S3_SOURCE_PREFIX", value_delimiter = ',')]
    pub s3_source_prefix: Vec<String>,

    /// The built web app, served at `/` (unknown paths get its `index.html`).
    #[arg(long, env = "TILE_STORE_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// Send `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy:
    /// require-corp` with the web app (`--web-dir`), so its page is cross-origin isolated and
    /// its tiler workers share `SharedArrayBuffer`s; `false` for an app that embeds resources of
    /// other origins that send neither CORS nor `Cross-Origin-Resource-Policy` headers.
    #[arg(long, env = "TILE_STORE_CROSS_ORIGIN_ISOLATION", action = clap::ArgAction::Set,
          default_value_t = true, num_args = 0..=1, default_missing_value = "true")]
    pub cross_origin_isolation: bool,

    /// Origins allowed by CORS (comma-separated, or `*`); none by default.
    #[arg(long, env = "TILE_STORE_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,

    /// Static bearer tokens accepted for writes (comma-separated in the environment).
    #[arg(
        long = "token",
        env = "TILE_STORE_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,

    /// Shared secret of HS256 JWTs accepted as bearer tokens (`exp` required).
    /// Prefer `--jwt-secret-file`: the environment is visible to more processes.
    #[arg(long, env = "TILE_STORE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// File holding the HS256 secret (trailing newline ignored), instead of `--jwt-secret`.
    #[arg(
        long,
        env = "TILE_STORE_JWT_SECRET_FILE",
        conflicts_with = "jwt_secret"
    )]
    pub jwt_secret_file: Option<PathBuf>,

    /// JWK set for RS256 / ES256 JWTs: a file path, or an `https://` URL fetched with
    /// the same SSRF-safe client as sources (loopback/private hosts need --fetch-allow),
    /// cached, and fetched again when a token names an unknown key.
    #[arg(long, env = "TILE_STORE_JWT_JWKS")]
    pub jwt_jwks: Option<String>,

    /// Seconds of clock skew allowed on JWT `exp`, `nbf` and `iat`.
    #[arg(long, env = "TILE_STORE_JWT_LEEWAY", default_value_t = crate::auth::DEFAULT_LEEWAY_SECS,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub jwt_leeway: u64,

    /// JWTs need the `tiles:write` scope to write and `tiles:delete` to delete
    /// pyramids they did not commit.
    #[arg(long, env = "TILE_STORE_JWT_REQUIRE_SCOPES", action = clap::ArgAction::Set,
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub jwt_require_scopes: bool,

    /// JWT claim holding the scopes (a space-separated string or an array).
    #[arg(long, env = "TILE_STORE_JWT_SCOPE_CLAIM", default_value = "scope")]
    pub jwt_scope_claim: String,

    /// Required `aud` claim of JWTs, if any.
    #[arg(long, env = "TILE_STORE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Required `iss` claim of JWTs, if any.
    #[arg(long, env = "TILE_STORE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Accept writes without a token even on a non-loopback address.
    #[arg(long, env = "TILE_STORE_ALLOW_ANONYMOUS_WRITES", action = clap::ArgAction::Set,
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub allow_anonymous_writes: bool,

    /// Require a bearer token for reads too.
    #[arg(long, env = "TILE_STORE_REQUIRE_READ_TOKEN", action = clap::ArgAction::Set,
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub require_read_token: bool,

    /// Largest tile accepted, in bytes.
    #[arg(long, env = "TILE_STORE_MAX_TILE_BYTES", default_value_t = 4 << 20)]
    pub max_tile_bytes: usize,

    /// Largest upload request body accepted, in bytes.
    #[arg(long, env = "TILE_STORE_MAX_REQUEST_BYTES", default_value_t = 32 << 20)]
    pub max_request_bytes: usize,

    /// Most tiles one pyramid may have (checked on commit, on every tile upload and
    /// before a server-side tiling job does any work).
    #[arg(long, env = "TILE_STORE_MAX_TILES_PER_PYRAMID", default_value_t = crate::DEFAULT_MAX_TILES_PER_PYRAMID,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tiles_per_pyramid: u64,

    /// Hosts, addresses or CIDR networks `POST /pyramids` may fetch from although they are
    /// loopback, private, link-local or otherwise special (comma-separated).
    #[arg(long, env = "TILE_STORE_FETCH_ALLOW", value_delimiter = ',')]
    pub fetch_allow: Vec<String>,

    /// Largest source image `POST /pyramids` takes (URL, S3 object or body), in bytes.
    #[arg(long, env = "TILE_STORE_MAX_SOURCE_BYTES", default_value_t = 256 << 20)]
    pub max_source_bytes: u64,

    /// Bytes of source images held at once by tiling jobs (bodies of `POST /pyramids`
    /// in memory, fetched images in --spool-dir); past it, `503` for bodies, and
    /// fetching jobs wait.
    #[arg(long, env = "TILE_STORE_MAX_QUEUED_SOURCE_BYTES",
          default_value_t = crate::tiling::DEFAULT_MAX_QUEUED_SOURCE_BYTES)]
    pub max_queued_source_bytes: u64,

    /// Folder fetched sources (URLs, S3 objects) are written to while their jobs run,
    /// rather than memory: a TIFF/BigTIFF or non-interlaced PNG then tiles in memory bounded
    /// by its width.
    /// Default: the system's temporary folder.
    #[arg(long, env = "TILE_STORE_SPOOL_DIR")]
    pub spool_dir: Option<std::path::PathBuf>,

    /// Seconds allowed to connect to a source URL.
    #[arg(long, env = "TILE_STORE_FETCH_CONNECT_TIMEOUT", default_value_t = 10)]
    pub fetch_connect_timeout: u64,

    /// Seconds allowed for a whole source download.
    #[arg(long, env = "TILE_STORE_FETCH_TIMEOUT", default_value_t = 120)]
    pub fetch_timeout: u64,

    /// Most unfinished tiling jobs; more are answered 503 with Retry-After.
    #[arg(long, env = "TILE_STORE_MAX_JOBS", default_value_t = 16)]
    pub max_jobs: usize,
    /// Uploads (tile PUTs and batches) handled at once; more wait, then get a 503.
    /// Bounds the memory held by upload bodies to this × `--max-request-bytes`.
    #[arg(long, env = "TILE_STORE_MAX_CONCURRENT_UPLOADS", default_value_t = 16)]
    pub max_concurrent_uploads: usize,

    /// Seconds a request may take in all, body included (408 past it).
    #[arg(long, env = "TILE_STORE_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout: u64,

    /// Seconds from accepting a connection to the end of its first request's headers
    /// (protocol detection included); also each later HTTP/1 request's headers.
    #[arg(long, env = "TILE_STORE_HEADER_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,

    /// Seconds a connection may stay open with no request in flight (HTTP/1
    /// keep-alive and HTTP/2, which also gets keep-alive pings).
    #[arg(long, env = "TILE_STORE_IDLE_TIMEOUT", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub idle_timeout: u64,

    /// Seconds one write may wait for a client that does not read (slow readers);
    /// past it the connection is closed.
    #[arg(long, env = "TILE_STORE_WRITE_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub write_timeout: u64,

    /// Connections served at once; past it, new ones are accepted and closed.
    #[arg(long, env = "TILE_STORE_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Seconds in-flight requests get after SIGTERM / SIGINT; then the process exits 0.
    #[arg(long, env = "TILE_STORE_SHUTDOWN_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout: u64,

    /// Seconds staged uploads (tiles of pyramids not committed yet) are kept after
    /// their last write; older ones are removed by a background sweep.
    #[arg(long, env = "TILE_STORE_UPLOAD_TTL", default_value_t = crate::staging::DEFAULT_UPLOAD_TTL_SECS,
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub upload_ttl: u64,

    /// This instance's name in job records (`instance` in job answers); unique among
    /// instances sharing a store.
    #[arg(long, env = "TILE_STORE_INSTANCE_ID", default_value_t = crate::tiling::board::default_instance_id())]
    pub instance_id: String,

    /// Seconds a running job's record may go unrenewed before another instance on the
    /// same store takes the job over (renewed every third of it).
    #[arg(long, env = "TILE_STORE_JOB_LEASE", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub job_lease: u64,

    /// Seconds ended jobs (`GET /jobs/{job}`) stay readable.
    #[arg(long, env = "TILE_STORE_JOB_RETENTION", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub job_retention: u64,

    /// Seconds a pyramid seen committed is remembered, so that its tile reads need no
    /// manifest lookup; a `DELETE` through another instance is seen within this. 0:
    /// every tile read asks the store.
    #[arg(long, env = "TILE_STORE_COMMITTED_TTL", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub committed_ttl: u64,

    /// Seconds one S3 call may take, retries included (503 past it).
    #[arg(long, env = "TILE_STORE_S3_TIMEOUT", default_value_t = 20)]
    pub s3_timeout: u64,
}

/// Arguments of `tile-store tile`.
#[derive(Debug, Clone, Args)]
pub struct TileArgs {
    /// Source image (JPEG, PNG, WebP or TIFF).
    pub image: PathBuf,
    /// Output prefix: writes `<out-prefix>.dzi` and `<out-prefix>_files/`.
    pub out_prefix: PathBuf,
    /// Tile format; PNG for images with alpha and JPEG otherwise by default.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<TileFormat>,
    /// JPEG / WebP quality, 1..=100.
    #[arg(long, default_value_t = tiler_wasm::DEFAULT_QUALITY)]
    pub quality: u8,
    /// Tile size in pixels, overlap excluded.
    #[arg(long, default_value_t = tiler_wasm::layout::DEFAULT_TILE_SIZE)]
    pub tile_size: u32,
    /// Overlap in pixels on each side of a tile.
    #[arg(long, default_value_t = tiler_wasm::layout::DEFAULT_OVERLAP)]
    pub overlap: u32,
    /// `fs`: a `.dzi` beside a `_files` folder; `szi`: one `.szi` archive, as vips's `--container
    /// szi` (also chosen by an output name ending in `.szi`).
    #[arg(long, value_enum, default_value_t = Container::Fs)]
    pub container: Container,
}

/// How `tile-store tile` stores a pyramid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Container {
    /// A `.dzi` file and a `_files` folder of tiles.
    Fs,
    /// One `.szi` (ZIP) archive holding both.
    Szi,
}

fn parse_format(text: &str) -> Result<TileFormat, String> {
    text.parse::<TileFormat>().map_err(|e| e.to_string())
}
