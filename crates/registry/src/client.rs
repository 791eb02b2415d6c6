//! The client: its builder, and how one request reaches a registry (which
//! host, authenticated, retried, redirected). The parts live beside it:
//! hosts and their configuration in [`crate::hosts`] and
//! [`crate::endpoint`], credentials and tokens in [`crate::auth`], HTTP,
//! redirects and transport errors in [`crate::transport`], the retry policy
//! in [`crate::retry`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio::sync::Semaphore;

use crate::auth::{Authenticator, Scope, Target, pick_challenge};
use crate::credentials::{CredentialSource, SharedCredentials};
use crate::endpoint::Endpoints;
use crate::error::{Envelope, Error, Result};
use crate::hosts::{HostPattern, HostsConfig, Need, RegistryHost};
use crate::progress::{Event, ProgressFn};
pub use crate::retry::RetryPolicy;
use crate::retry::{retry_after, retryable_status};
use crate::transport::{Settings, Transport, TransportError, describe, read_limited, same_origin};

/// Builds a [`Client`].
pub struct ClientBuilder {
    insecure: Vec<String>,
    ca_certs: Vec<Vec<u8>>,
    credentials: Option<SharedCredentials>,
    retry: RetryPolicy,
    max_concurrent: usize,
    chunk_size: Option<u64>,
    user_agent: String,
    plugin_class: bool,
    manifest_limit: usize,
    connect_timeout: Duration,
    read_timeout: Duration,
    loopback_insecure: bool,
    hosts: HostsConfig,
}

impl Default for ClientBuilder {
    fn default() -> ClientBuilder {
        ClientBuilder {
            insecure: Vec::new(),
            ca_certs: Vec::new(),
            credentials: None,
            retry: RetryPolicy::default(),
            max_concurrent: 3,
            chunk_size: None,
            user_agent: format!("pluginctl/{}", env!("CARGO_PKG_VERSION")),
            plugin_class: false,
            manifest_limit: pluginctl_oci::MAX_MANIFEST_BYTES,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            loopback_insecure: true,
            hosts: HostsConfig::none(),
        }
    }
}

impl ClientBuilder {
    /// Marks a registry insecure, as Docker's `--insecure-registry`: a
    /// `host[:port]` (no port matches every port) or an IPv4/IPv6 CIDR.
    /// HTTPS is tried first without certificate checks, then plain HTTP.
    /// `localhost` and `127.0.0.0/8` are always insecure, as in Docker.
    #[must_use]
    pub fn insecure(mut self, host: &str) -> ClientBuilder {
        self.insecure.push(host.to_ascii_lowercase());
        self
    }

    /// Whether `localhost` and loopback addresses are insecure registries
    /// (Docker's rule, the default). Off: they get full TLS verification
    /// like any other host.
    #[must_use]
    pub fn loopback_insecure(mut self, on: bool) -> ClientBuilder {
        self.loopback_insecure = on;
        self
    }

    /// Trusts the CA certificates of a PEM bundle in addition to the system ones.
    #[must_use]
    pub fn ca_certificate_pem(mut self, pem: &[u8]) -> ClientBuilder {
        self.ca_certs.push(pem.to_vec());
        self
    }

    /// Where credentials come from; default: none (anonymous).
    #[must_use]
    pub fn credentials(mut self, source: impl CredentialSource + 'static) -> ClientBuilder {
        self.credentials = Some(Arc::new(source));
        self
    }

    /// The retry policy.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> ClientBuilder {
        self.retry = policy;
        self
    }

    /// How many blobs move at once (default 3, as Docker).
    #[must_use]
    pub fn max_concurrent_transfers(mut self, n: usize) -> ClientBuilder {
        self.max_concurrent = n.max(1);
        self
    }

    /// Uploads blobs larger than `bytes` in chunks of that size (`PATCH`
    /// with `Content-Range`); `None` (the default) uploads in one `PUT`.
    #[must_use]
    pub fn chunk_size(mut self, bytes: Option<u64>) -> ClientBuilder {
        self.chunk_size = bytes.filter(|&b| b > 0);
        self
    }

    /// Asks tokens for `repository(plugin):NAME:…` scopes, as Docker does
    /// for plugins. Off by default; a challenge naming the class always wins.
    #[must_use]
    pub fn plugin_scope_class(mut self, on: bool) -> ClientBuilder {
        self.plugin_class = on;
        self
    }

    /// The largest manifest accepted (default 4 MiB).
    #[must_use]
    pub fn manifest_limit(mut self, bytes: usize) -> ClientBuilder {
        self.manifest_limit = bytes;
        self
    }

    /// The `User-Agent` header.
    #[must_use]
    pub fn user_agent(mut self, ua: &str) -> ClientBuilder {
        ua.clone_into(&mut self.user_agent);
        self
    }

    /// Gives up on a connection attempt after this long (default 30 s).
    #[must_use]
    pub fn connect_timeout(mut self, t: Duration) -> ClientBuilder {
        self.connect_timeout = t;
        self
    }

    /// Gives up on a response that stays silent this long (default 60 s).
    #[must_use]
    pub fn read_timeout(mut self, t: Duration) -> ClientBuilder {
        self.read_timeout = t;
        self
    }

    /// Which hosts serve each registry: mirrors, CAs, client
    /// certificates ([`HostsConfig`]). Default: none, every registry is its
    /// own only host. `daemon.json`'s insecure registries join the
    /// builder's.
    #[must_use]
    pub fn hosts(mut self, config: HostsConfig) -> ClientBuilder {
        self.insecure.extend(
            config
                .insecure_registries()
                .iter()
                .map(|h| h.to_ascii_lowercase()),
        );
        self.hosts = config;
        self
    }

    /// Builds the client. Fails only on an unusable CA certificate or
    /// insecure-registry pattern.
    pub fn build(self) -> Result<Client> {
        let mut insecure = Vec::new();
        for h in &self.insecure {
            insecure.push(HostPattern::parse(h)?);
        }
        let transport = Transport::new(
            Settings {
                user_agent: self.user_agent,
                connect_timeout: self.connect_timeout,
                read_timeout: self.read_timeout,
                ca_pems: self.ca_certs,
            },
            insecure,
            self.loopback_insecure,
            self.retry,
        )?;
        let credentials = self
            .credentials
            .unwrap_or_else(|| Arc::new(crate::credentials::StaticCredentials::new()));
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                auth: Authenticator::new(credentials, self.plugin_class),
                endpoints: Endpoints::new(self.hosts),
                transfers: Semaphore::new(self.max_concurrent),
                chunk_size: self.chunk_size,
                manifest_limit: self.manifest_limit,
            }),
            progress: None,
        })
    }
}

/// A registry client. Cheap to clone; clones share connections, tokens and
/// the transfer limit.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    pub(crate) progress: Option<ProgressFn>,
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) auth: Authenticator,
    pub(crate) endpoints: Endpoints,
    pub(crate) transfers: Semaphore,
    pub(crate) chunk_size: Option<u64>,
    pub(crate) manifest_limit: usize,
}

/// What a request is for, for errors: `GET manifest 127.0.0.1:5000/a/b:1.0`.
pub(crate) type What<'a> = &'a str;

impl Client {
    /// A builder with Docker's defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client with Docker's defaults and credentials from the Docker config
    /// file (`$DOCKER_CONFIG` or `~/.docker/config.json`).
    pub fn from_docker_config() -> Result<Client> {
        ClientBuilder::default()
            .credentials(crate::credentials::DockerConfig::load_default()?)
            .build()
    }

    /// This client, reporting per-blob progress to `f`.
    #[must_use]
    pub fn with_progress(&self, f: impl Fn(&Event) + Send + Sync + 'static) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            progress: Some(Arc::new(f)),
        }
    }

    pub(crate) fn emit(&self, e: &Event) {
        if let Some(p) = &self.progress {
            p(e);
        }
    }

    /// The API host for a reference domain (Docker Hub's API lives elsewhere).
    pub(crate) fn api_host(domain: &str) -> &str {
        if domain == "docker.io" {
            "registry-1.docker.io"
        } else {
            domain
        }
    }

    #[cfg(test)]
    pub(crate) fn is_insecure(&self, host: &str) -> bool {
        self.inner.transport.is_insecure(host)
    }

    /// Says why, waits and counts (the retry policy's one backoff), with
    /// this client's progress callback.
    pub(crate) async fn back_off(
        &self,
        what: What<'_>,
        attempt: &mut u32,
        reason: String,
        hint: Option<Duration>,
    ) {
        self.inner
            .transport
            .retry
            .back_off(&|e| self.emit(e), what, attempt, reason, hint)
            .await;
    }

    /// The retry policy.
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.inner.transport.retry
    }

    /// Sends a request to the registry `domain` (a reference's domain),
    /// to the first of its hosts that may serve `need` and answers: the
    /// next host is tried on a connection or TLS error, a 404, or another
    /// error status after authentication, and a host that failed to connect
    /// is skipped from then on. Pushes go only to the first host that may
    /// push. See [`Client::send_to`] for one host.
    pub(crate) async fn send(
        &self,
        what: What<'_>,
        domain: &str,
        need: Need,
        scope: &Scope,
        retry: bool,
        build: &Build<'_>,
    ) -> Result<Response> {
        let api_host = Client::api_host(domain);
        let hosts = self.inner.endpoints.hosts(domain, api_host)?;
        let mut able: Vec<&RegistryHost> = hosts
            .iter()
            .filter(|h| h.capabilities.allow(need))
            .collect();
        if need == Need::Push {
            able.truncate(1);
        }
        let Some(last) = able.last().copied() else {
            return Err(Error::Config(format!(
                "{what}: no host of {domain} may be asked to {} (see its hosts.toml capabilities)",
                match need {
                    Need::Pull => "pull",
                    Need::Resolve => "resolve",
                    Need::Push => "push",
                }
            )));
        };
        let mut live: Vec<&RegistryHost> = able
            .into_iter()
            .filter(|h| !self.inner.endpoints.is_dead(h))
            .collect();
        if live.is_empty() {
            // Everything failed before: ask the last one again, for a real
            // error.
            live.push(last);
        }
        let n = live.len();
        for (i, host) in live.into_iter().enumerate() {
            let more = i + 1 < n;
            let result = self
                .send_to(what, domain, host, scope, (retry && !more, more), build)
                .await;
            let reason = match result {
                Ok(resp) if more && falls_back(resp.status()) => {
                    format!("HTTP {}", resp.status().as_u16())
                }
                Ok(resp) => {
                    tracing::debug!("{what}: served by {}", host.url);
                    if !host.is_server && need == Need::Resolve {
                        self.emit(&Event::Served {
                            what: what.to_owned(),
                            host: host.url.to_string(),
                        });
                    }
                    return Ok(resp);
                }
                Err(e) if more => e.to_string(),
                Err(e) => return Err(e),
            };
            // A mirror without the content is routine; anything else is
            // worth a warning naming the host.
            if reason == "HTTP 404" {
                tracing::debug!(
                    "{what}: {} answered HTTP 404; trying the next host",
                    host.url
                );
            } else {
                tracing::warn!("{}: {reason}; trying the next host", host.url);
            }
            self.emit(&Event::HostFailed {
                what: what.to_owned(),
                host: host.url.to_string(),
                reason,
            });
        }
        unreachable!("the last host returns")
    }

    /// Sends a request to one host, authenticated for `scope`, retried on
    /// connection errors, 5xx and 429 when `retry`, re-authenticated once on
    /// 401. `build` makes the request from the host's HTTP client and API
    /// root (`…/v2/`); it is called again for each attempt. Redirects of
    /// `GET` and `HEAD` are followed; credentials never go to another host.
    /// `more`: other hosts follow, so a connection failure marks this one
    /// dead.
    async fn send_to(
        &self,
        what: What<'_>,
        domain: &str,
        host: &RegistryHost,
        scope: &Scope,
        (retry, more): (bool, bool),
        build: &Build<'_>,
    ) -> Result<Response> {
        let notify = |e: &Event| self.emit(e);
        let name = host.host_port();
        // The registry's own credentials are filed under its name (where
        // `login` puts them); a mirror's under its own host.
        let cred_key = if host.is_server {
            domain
        } else {
            name.as_str()
        };
        let inner = &self.inner;
        let private: Vec<HeaderName> = host
            .headers
            .iter()
            .filter_map(|(k, _)| HeaderName::try_from(k.as_str()).ok())
            .collect();
        let mut attempt = 0u32;
        let mut extra_scope: Option<String> = None;
        let mut reauthed = false;
        loop {
            let endpoint = inner
                .endpoints
                .endpoint(&inner.transport, &notify, what, host, more)
                .await?;
            let target = Target {
                host: &name,
                credentials: cred_key,
                base: &endpoint.base,
                http: &endpoint.http,
                challenge: endpoint.challenge.as_ref(),
            };
            let auth = inner
                .auth
                .authorization(
                    &inner.transport,
                    &notify,
                    what,
                    &target,
                    scope,
                    extra_scope.as_deref(),
                )
                .await?;
            let http = &endpoint.http;
            let mut request =
                build(http, &endpoint.base)?
                    .build()
                    .map_err(|e| Error::Protocol {
                        what: what.to_owned(),
                        message: format!("cannot build the request: {}", describe(&e)),
                    })?;
            // The request may point elsewhere (an upload Location on another
            // host): credentials and the host's headers only go to the
            // host's own origin.
            if same_origin(request.url(), &endpoint.base) {
                add_headers(
                    what,
                    &mut request,
                    host,
                    auth.as_ref().map(|(_, v)| v.as_str()),
                )?;
                // A mirror is told which registry is meant, as containerd
                // does: one cache may front several registries.
                if !host.is_server {
                    request
                        .url_mut()
                        .query_pairs_mut()
                        .append_pair("ns", domain);
                }
            }
            let method = request.method().clone();
            let template = if method == Method::GET || method == Method::HEAD {
                request.try_clone()
            } else {
                None
            };
            tracing::debug!(%method, url = %request.url(), "request");
            let result = http.execute(request).await;
            if let Ok(resp) = &result {
                tracing::debug!(%method, url = %resp.url(), status = resp.status().as_u16(), "response");
            }
            let retry_left = retry && attempt < inner.transport.retry.max_retries;
            let resp = match result {
                Err(e) => {
                    let err = TransportError(e);
                    if more && (err.0.is_connect() || err.is_tls()) {
                        inner.endpoints.mark_dead(host);
                    }
                    if retry && attempt < err.retries(inner.transport.retry.max_retries) {
                        self.back_off(what, &mut attempt, describe(&err.0), None)
                            .await;
                        continue;
                    }
                    return Err(err.into_error(what, &name));
                }
                Ok(resp) => resp,
            };
            let status = resp.status();
            // Only the host's own 401 re-authenticates: a challenge from
            // elsewhere (an upload Location on another host) must not pick
            // where credentials go.
            if status == StatusCode::UNAUTHORIZED
                && !reauthed
                && same_origin(resp.url(), &endpoint.base)
                && let Some(ch) = pick_challenge(resp.headers())
            {
                reauthed = true;
                if let Some((key, _)) = &auth {
                    // The token was refused: never offer it again.
                    inner.auth.forget(&name, key);
                }
                extra_scope = ch.param("scope").map(str::to_owned);
                inner.endpoints.set_challenge(host, ch).await;
                continue;
            }
            if retry_left && retryable_status(status.as_u16()) {
                let hint = retry_after(resp.headers());
                self.back_off(
                    what,
                    &mut attempt,
                    format!("HTTP {}", status.as_u16()),
                    hint,
                )
                .await;
                continue;
            }
            if let Some(template) = template
                && status.is_redirection()
                && status != StatusCode::NOT_MODIFIED
            {
                return inner
                    .transport
                    .follow(
                        &notify,
                        what,
                        resp,
                        &template,
                        (&endpoint.base, &endpoint.http),
                        &private,
                    )
                    .await;
            }
            return Ok(resp);
        }
    }

    /// Reads an error response into an [`Error::Registry`].
    pub(crate) async fn status_error(what: What<'_>, resp: Response) -> Error {
        let status = resp.status().as_u16();
        let body = read_limited(resp, 64 << 10).await.unwrap_or_default();
        Error::Registry {
            what: what.to_owned(),
            status,
            envelope: Envelope::parse(&body),
        }
    }
}

/// Makes a request from a host's HTTP client and API root.
pub(crate) type Build<'a> =
    dyn Fn(&reqwest::Client, &Url) -> Result<RequestBuilder> + Send + Sync + 'a;

/// Whether a host's answer sends the request to the next host: a 404 (a
/// mirror without the content) or another error after authentication.
fn falls_back(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

/// Adds the host's configured headers and the authorization.
fn add_headers(
    what: What<'_>,
    request: &mut reqwest::Request,
    host: &RegistryHost,
    authorization: Option<&str>,
) -> Result<()> {
    let bad = |m: String| Error::Config(format!("{what}: {m}"));
    for (k, v) in &host.headers {
        let name = HeaderName::try_from(k.as_str())
            .map_err(|_| bad(format!("header name {k:?} of {}", host.url)))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| bad(format!("header {k} value of {}", host.url)))?;
        request.headers_mut().append(name, value);
    }
    if let Some(v) = authorization {
        let v = HeaderValue::from_str(v).map_err(|_| Error::Auth {
            what: what.to_owned(),
            message: "the token is not a valid header value".to_owned(),
        })?;
        request.headers_mut().insert(AUTHORIZATION, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_patterns_match_like_docker() {
        let c = Client::builder()
            .insecure("reg.example")
            .insecure("other.example:5000")
            .insecure("10.1.0.0/16")
            .build()
            .unwrap();
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("127.0.0.7:80"));
        assert!(c.is_insecure("[::1]:5000"));
        assert!(c.is_insecure("reg.example:443"));
        assert!(c.is_insecure("other.example:5000"));
        assert!(!c.is_insecure("other.example:5001"));
        assert!(c.is_insecure("10.1.200.3:5000"));
        assert!(!c.is_insecure("10.2.0.1"));
        assert!(!c.is_insecure("docker.io"));
        assert!(Client::builder().insecure("10.0.0.0/99").build().is_err());
    }
}
