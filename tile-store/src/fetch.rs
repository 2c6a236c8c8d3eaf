//! Fetching a source image by URL without becoming a way into the private network.
//!
//! Built on `reqwest` (rustls with the ring provider and the system's roots — the
//! same hyper/rustls stack aws-sdk-s3 already brings in) because it exposes the two
//! hooks this needs: a DNS resolver ([`reqwest::dns::Resolve`]) that sees every
//! address a name resolves to before a connection is made, and a redirect policy
//! that sees every hop. Names are checked in the resolver, so the address checked is
//! the address connected to (no time-of-check/time-of-use gap for DNS rebinding);
//! hosts written as IP literals never reach a resolver, so they are checked here,
//! on the first URL and on every redirect. Proxies from the environment are ignored,
//! since a proxy would resolve names on our behalf.

pub mod policy;

use crate::error::{AppError, Result};
use bytes::Bytes;
use policy::{AddressPolicy, Refused};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Most redirects followed.
const MAX_REDIRECTS: usize = 5;

/// How source images are fetched.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Hosts, addresses and CIDR networks allowed besides public addresses.
    pub allow: Vec<String>,
    /// Largest source accepted, in bytes.
    pub max_bytes: u64,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for the whole fetch, body included.
    pub total_timeout: Duration,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            allow: Vec::new(),
            max_bytes: 256 << 20,
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(120),
        }
    }
}

/// Fetches `http`/`https` URLs whose every address passes the [`AddressPolicy`].
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    max_bytes: u64,
}

impl Fetcher {
    /// A fetcher with `settings`; fails on a malformed allow-list.
    pub fn new(settings: &FetchSettings) -> Result<Self> {
        let policy = Arc::new(AddressPolicy::new(&settings.allow).map_err(AppError::Config)?);
        let redirect_policy = Arc::clone(&policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver(Arc::clone(&policy))))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(TooManyRedirects);
                }
                match check_url(&redirect_policy, attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            }))
            .no_proxy()
            .referer(false)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.total_timeout)
            .user_agent(concat!("tessera-tile-store/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AppError::Config(format!("HTTP client: {e}")))?;
        Ok(Fetcher {
            client,
            policy,
            max_bytes: settings.max_bytes,
        })
    }

    /// The largest source accepted, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Parses `src` and checks what can be checked before connecting: the scheme,
    /// and the host when it is an IP literal.
    pub fn check(&self, src: &str) -> Result<Url> {
        let url = Url::parse(src).map_err(|e| {
            AppError::bad_request("invalid_src", format!("src is not a URL ({e}): {src:?}"))
        })?;
        check_url(&self.policy, &url).map_err(into_app_error)?;
        Ok(url)
    }

    /// Downloads `url` whole into memory; see [`Fetcher::fetch_into`].
    pub async fn fetch(&self, url: &Url, progress: impl Fn(u64, Option<u64>)) -> Result<Bytes> {
        let mut body = Vec::new();
        self.fetch_into(url, progress, &mut body).await?;
        Ok(Bytes::from(body))
    }

    /// Downloads `url` into `sink`, at most [`Fetcher::max_bytes`] (413 past it, from
    /// the `Content-Length` or while streaming); `progress(received, expected)` is
    /// called as bytes arrive. Returns the length.
    pub async fn fetch_into(
        &self,
        url: &Url,
        progress: impl Fn(u64, Option<u64>),
        sink: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64> {
        check_url(&self.policy, url).map_err(into_app_error)?;
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| request_error(url, &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(AppError::Upstream {
                code: "fetch_status",
                message: format!("{} answered {status}", response.url()),
            });
        }
        let expected = response.content_length();
        let too_large = |size: String| {
            AppError::PayloadTooLarge(format!(
                "the source at {url} is {size}, over the {}-byte limit",
                self.max_bytes
            ))
        };
        if let Some(n) = expected.filter(|&n| n > self.max_bytes) {
            return Err(too_large(format!("{n} bytes")));
        }
        let mut received: u64 = 0;
        progress(0, expected);
        while let Some(chunk) = response.chunk().await.map_err(|e| request_error(url, &e))? {
            received = received
                .checked_add(chunk.len() as u64)
                .filter(|&n| n <= self.max_bytes)
                .ok_or_else(|| too_large("larger than that".into()))?;
            sink.write_all(&chunk).await.map_err(sink_error)?;
            progress(received, expected);
        }
        Ok(received)
    }
}

/// A source that could not be kept as it arrived (the spool folder full, say).
pub(crate) fn sink_error(e: std::io::Error) -> AppError {
    AppError::Internal(format!("keeping the source as it arrives: {e}"))
}

/// Only `http` and `https`; IP-literal hosts checked against the policy.
fn check_url(policy: &AddressPolicy, url: &Url) -> std::result::Result<(), UrlRefused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Scheme(url.scheme().to_owned()));
    }
    match url.host() {
        None => Err(UrlRefused::NoHost),
        Some(url::Host::Ipv4(v4)) => Ok(policy.check(&v4.to_string(), IpAddr::V4(v4))?),
        Some(url::Host::Ipv6(v6)) => Ok(policy.check(&format!("[{v6}]"), IpAddr::V6(v6))?),
        Some(url::Host::Domain(_)) => Ok(()),
    }
}

/// Why a URL (the first or a redirect target) is not fetched.
#[derive(Debug, thiserror::Error)]
enum UrlRefused {
    #[error("only http and https sources are fetched, not {0}:")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error(transparent)]
    Address(#[from] Refused),
}

#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
struct TooManyRedirects;

fn into_app_error(e: UrlRefused) -> AppError {
    match e {
        UrlRefused::Address(refused) => AppError::Forbidden {
            code: "address_refused",
            message: refused.to_string(),
        },
        other => AppError::bad_request("invalid_src", other.to_string()),
    }
}

/// Maps a failed request to a refusal (our policy said no, at any hop) or an upstream failure.
fn request_error(url: &Url, e: &reqwest::Error) -> AppError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return AppError::Forbidden {
                code: "address_refused",
                message: refused.to_string(),
            };
        }
        if let Some(refused) = err.downcast_ref::<UrlRefused>() {
            let hop = e
                .url()
                .map_or_else(String::new, |u| format!(" (redirected to {u})"));
            let message = format!("{refused}{hop}");
            return match refused {
                UrlRefused::Address(_) => AppError::Forbidden {
                    code: "address_refused",
                    message,
                },
                _ => AppError::bad_request("invalid_src", message),
            };
        }
        if err.is::<TooManyRedirects>() {
            return AppError::Upstream {
                code: "fetch_redirects",
                message: format!("{url}: {err}"),
            };
        }
        source = err.source();
    }
    let (code, what) = if e.is_timeout() {
        ("fetch_timeout", "timed out")
    } else if e.is_connect() {
        ("fetch_connect", "cannot connect")
    } else {
        ("fetch_failed", "failed")
    };
    AppError::Upstream {
        code,
        message: format!("fetching {url} {what}: {}", error_chain(e)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// Resolves names with the system resolver and refuses the name if any of its
/// addresses is refused (a name pointing partly inside is not trusted at all).
struct CheckedResolver(Arc<AddressPolicy>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                policy.check(&host, addr.ip())?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}
