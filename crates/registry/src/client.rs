//! The client: endpoints (HTTPS, insecure hosts), authentication, retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio::sync::Semaphore;

use crate::auth::{Challenge, CredentialSource, Credentials, SharedCredentials, TokenCache};
use crate::error::{Envelope, Error, Result};
use crate::hosts::{HostPattern, is_loopback};
use crate::progress::{Event, ProgressFn};
pub use crate::retry::RetryPolicy;
use crate::retry::{retry_after, retryable_status};

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

    /// Builds the client. Fails only on an unusable CA certificate.
    pub fn build(self) -> Result<Client> {
        let make = |skip_verify: bool| -> Result<reqwest::Client> {
            let mut b = reqwest::Client::builder()
                .user_agent(self.user_agent.clone())
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(self.connect_timeout)
                .read_timeout(self.read_timeout)
                .tcp_nodelay(true)
                .pool_max_idle_per_host(8);
            for pem in &self.ca_certs {
                let certs = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
                if certs.is_empty() {
                    return Err(Error::Config(
                        "CA certificate bundle holds no certificate".to_owned(),
                    ));
                }
                for c in certs {
                    b = b.add_root_certificate(c);
                }
            }
            if skip_verify {
                b = b.danger_accept_invalid_certs(true);
            }
            b.build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))
        };
        let mut insecure = Vec::new();
        for h in &self.insecure {
            insecure.push(HostPattern::parse(h)?);
        }
        Ok(Client {
            inner: Arc::new(Inner {
                verified: make(false)?,
                unverified: make(true)?,
                insecure,
                credentials: self
                    .credentials
                    .unwrap_or_else(|| Arc::new(crate::auth::StaticCredentials::new())),
                creds_cache: tokio::sync::Mutex::new(HashMap::new()),
                hosts: std::sync::Mutex::new(HashMap::new()),
                scope_hints: std::sync::Mutex::new(HashMap::new()),
                tokens: TokenCache::default(),
                transfers: Semaphore::new(self.max_concurrent),
                retry: self.retry,
                chunk_size: self.chunk_size,
                plugin_class: self.plugin_class,
                loopback_insecure: self.loopback_insecure,
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
    verified: reqwest::Client,
    unverified: reqwest::Client,
    insecure: Vec<HostPattern>,
    credentials: SharedCredentials,
    creds_cache: tokio::sync::Mutex<HashMap<String, Credentials>>,
    /// Per host: its endpoint once probed. The outer lock is held only to
    /// find the host's cell, so a slow host never blocks another.
    hosts: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Endpoint>>>>>,
    /// Scopes a registry's challenge asked for beyond ours, per (host,
    /// our scope), so later requests ask for them up front.
    scope_hints: std::sync::Mutex<HashMap<(String, String), String>>,
    tokens: TokenCache,
    pub(crate) transfers: Semaphore,
    pub(crate) retry: RetryPolicy,
    pub(crate) chunk_size: Option<u64>,
    plugin_class: bool,
    loopback_insecure: bool,
    pub(crate) manifest_limit: usize,
}

/// Where a registry host answers, and how it wants to be authenticated.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) base: Url,
    pub(crate) skip_verify: bool,
    challenge: Option<Challenge>,
}

/// The access a request needs, as token scopes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    /// (repository path, actions) pairs.
    pub(crate) repos: Vec<(String, &'static str)>,
}

impl Scope {
    pub(crate) fn pull(repo: &str) -> Scope {
        Scope {
            repos: vec![(repo.to_owned(), "pull")],
        }
    }
    pub(crate) fn push(repo: &str) -> Scope {
        Scope {
            repos: vec![(repo.to_owned(), "pull,push")],
        }
    }
    pub(crate) fn and_pull(mut self, repo: &str) -> Scope {
        if !self.repos.iter().any(|(r, _)| r == repo) {
            self.repos.push((repo.to_owned(), "pull"));
        }
        self
    }
    fn strings(&self, plugin_class: bool) -> Vec<String> {
        let class = if plugin_class {
            "repository(plugin)"
        } else {
            "repository"
        };
        self.repos
            .iter()
            .map(|(r, a)| format!("{class}:{r}:{a}"))
            .collect()
    }
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
            .credentials(crate::auth::DockerConfig::load_default()?)
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

    pub(crate) fn is_insecure(&self, host: &str) -> bool {
        (self.inner.loopback_insecure && is_loopback(host))
            || self.inner.insecure.iter().any(|p| p.matches(host))
    }

    pub(crate) fn http(&self, skip_verify: bool) -> &reqwest::Client {
        if skip_verify {
            &self.inner.unverified
        } else {
            &self.inner.verified
        }
    }

    /// Finds how `host` answers (`GET /v2/`): HTTPS, or for an insecure host
    /// HTTPS without verification and then plain HTTP. Cached per client.
    pub(crate) async fn endpoint(&self, what: What<'_>, host: &str) -> Result<Endpoint> {
        let cell = self.host_cell(host);
        let mut slot = cell.lock().await;
        if let Some(e) = &*slot {
            return Ok(e.clone());
        }
        let e = self.probe(what, host).await?;
        *slot = Some(e.clone());
        Ok(e)
    }

    fn host_cell(&self, host: &str) -> Arc<tokio::sync::Mutex<Option<Endpoint>>> {
        let mut hosts = self
            .inner
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(hosts.entry(host.to_owned()).or_default())
    }

    async fn probe(&self, what: What<'_>, host: &str) -> Result<Endpoint> {
        let insecure = self.is_insecure(host);
        let mut candidates = vec![("https", insecure)];
        if insecure {
            candidates.push(("http", false));
        }
        let mut errors: Vec<Error> = Vec::new();
        for (scheme, skip_verify) in candidates {
            let base = Url::parse(&format!("{scheme}://{host}/"))
                .map_err(|e| Error::Config(format!("registry host {host:?}: {e}")))?;
            let url = base.join("v2/").expect("static path");
            // For an insecure host, HTTPS is only a probe: one try, then HTTP.
            let probe = if insecure && scheme == "https" {
                self.http(skip_verify)
                    .get(url)
                    .send()
                    .await
                    .map_err(TransportError)
            } else {
                self.send_retrying(what, self.http(skip_verify).get(url))
                    .await
            };
            match probe {
                Ok(resp) => {
                    let status = resp.status();
                    let challenge = pick_challenge(resp.headers());
                    if status == StatusCode::OK || status == StatusCode::UNAUTHORIZED {
                        return Ok(Endpoint {
                            base,
                            skip_verify,
                            challenge: if status == StatusCode::UNAUTHORIZED {
                                challenge
                            } else {
                                None
                            },
                        });
                    }
                    // Registries behind some proxies answer /v2/ oddly yet serve
                    // the API; keep going without a challenge, as Docker does.
                    if status.is_success() || status == StatusCode::FORBIDDEN {
                        return Ok(Endpoint {
                            base,
                            skip_verify,
                            challenge: None,
                        });
                    }
                    errors.push(Error::Protocol {
                        what: what.to_owned(),
                        message: format!(
                            "{scheme}://{host}/v2/ answered HTTP {}: not a registry (distribution API v2)",
                            status.as_u16()
                        ),
                    });
                }
                Err(e) => errors.push(e.into_error(what, host)),
            }
        }
        // An insecure host failed both ways: say both, HTTPS first (the
        // HTTP answer alone can hide the real HTTPS failure).
        let mut it = errors.into_iter();
        let first = it.next().expect("at least one candidate");
        match it.next() {
            None => Err(first),
            Some(second) => Err(Error::Protocol {
                what: what.to_owned(),
                message: format!(
                    "{host} answers neither HTTPS ({}) nor HTTP ({})",
                    strip_what(&first, what),
                    strip_what(&second, what)
                ),
            }),
        }
    }

    async fn credentials(&self, host: &str) -> Result<Credentials> {
        let mut cache = self.inner.creds_cache.lock().await;
        if let Some(c) = cache.get(host) {
            return Ok(c.clone());
        }
        let source = Arc::clone(&self.inner.credentials);
        let key = if host == "registry-1.docker.io" {
            "docker.io".to_owned()
        } else {
            host.to_owned()
        };
        // Credential helpers are processes: keep them off the async threads.
        let creds = tokio::task::spawn_blocking(move || source.credentials(&key))
            .await
            .map_err(|e| Error::Credentials {
                host: host.to_owned(),
                message: e.to_string(),
            })??;
        cache.insert(host.to_owned(), creds.clone());
        Ok(creds)
    }

    /// The `Authorization` value for `scope` at `endpoint`, fetching a token
    /// when the registry's challenge asks for one.
    async fn authorization(
        &self,
        what: What<'_>,
        host: &str,
        endpoint: &Endpoint,
        scope: &Scope,
        extra_scope: Option<&str>,
    ) -> Result<Option<(String, String)>> {
        let Some(challenge) = &endpoint.challenge else {
            return Ok(None);
        };
        let creds = self.credentials(host).await?;
        match challenge.scheme.as_str() {
            "basic" => match &creds {
                Credentials::Basic { username, password } => {
                    use base64::Engine as _;
                    let raw = format!("{username}:{password}");
                    Ok(Some((
                        String::new(),
                        format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode(raw)
                        ),
                    )))
                }
                _ => Err(Error::Auth {
                    what: what.to_owned(),
                    message: format!(
                        "{host} asks for a user name and password, and none is configured for it"
                    ),
                }),
            },
            "bearer" => {
                if let Credentials::RegistryToken(t) = &creds {
                    return Ok(Some((String::new(), format!("Bearer {t}"))));
                }
                let mut scopes = scope.strings(self.inner.plugin_class);
                let base_key = scopes.join(" ");
                let hint = self
                    .inner
                    .scope_hints
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&(host.to_owned(), base_key.clone()))
                    .cloned();
                if let Some(extra) = extra_scope {
                    self.inner
                        .scope_hints
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert((host.to_owned(), base_key), extra.to_owned());
                }
                if let Some(extra) = extra_scope.or(hint.as_deref()) {
                    for s in extra.split(' ') {
                        if !s.is_empty() && !scopes.iter().any(|x| x == s) {
                            scopes.push(s.to_owned());
                        }
                    }
                }
                let key = scopes.join(" ");
                if let Some(t) = self.inner.tokens.get(host, &key) {
                    return Ok(Some((key, format!("Bearer {t}"))));
                }
                let token =
                    crate::auth::fetch_token(self, what, endpoint, challenge, &scopes, &creds)
                        .await?;
                let value = format!("Bearer {}", token.value);
                self.inner.tokens.put(host, &key, token);
                Ok(Some((key, value)))
            }
            other => Err(Error::Auth {
                what: what.to_owned(),
                message: format!("{host} asks for the unsupported auth scheme {other:?}"),
            }),
        }
    }

    /// Sends a request to the registry at `host`, authenticated for `scope`,
    /// retried on connection errors, 5xx and 429, re-authenticated once on 401.
    /// `build` makes the request from the client and the endpoint's base URL;
    /// it is called again for each attempt. `retry` false sends once (uploads
    /// whose session a failed attempt may have spent). Redirects of `GET` and
    /// `HEAD` are followed; credentials never go to another host.
    pub(crate) async fn send(
        &self,
        what: What<'_>,
        host: &str,
        scope: &Scope,
        retry: bool,
        build: &(dyn Fn(&reqwest::Client, &Url) -> Result<RequestBuilder> + Send + Sync),
    ) -> Result<Response> {
        let mut attempt = 0u32;
        let mut extra_scope: Option<String> = None;
        let mut reauthed = false;
        loop {
            let endpoint = self.endpoint(what, host).await?;
            let auth = self
                .authorization(what, host, &endpoint, scope, extra_scope.as_deref())
                .await?;
            let http = self.http(endpoint.skip_verify);
            let mut request =
                build(http, &endpoint.base)?
                    .build()
                    .map_err(|e| Error::Protocol {
                        what: what.to_owned(),
                        message: format!("cannot build the request: {}", describe(&e)),
                    })?;
            // The request may point elsewhere (an upload Location on another
            // host): credentials only go to the registry's own origin.
            if let Some((_, value)) = &auth
                && same_origin(request.url(), &endpoint.base)
            {
                let v = reqwest::header::HeaderValue::from_str(value).map_err(|_| Error::Auth {
                    what: what.to_owned(),
                    message: "the token is not a valid header value".to_owned(),
                })?;
                request.headers_mut().insert(AUTHORIZATION, v);
            }
            let method = request.method().clone();
            let headers = request.headers().clone();
            tracing::debug!(%method, url = %request.url(), "request");
            let result = http.execute(request).await;
            if let Ok(resp) = &result {
                tracing::debug!(%method, url = %resp.url(), status = resp.status().as_u16(), "response");
            }
            let retry_left = retry && attempt < self.inner.retry.max_retries;
            match result {
                Err(e) => {
                    let err = TransportError(e);
                    if retry && attempt < err.retries(self.inner.retry.max_retries) {
                        self.back_off(what, &mut attempt, describe(&err.0), None)
                            .await;
                        continue;
                    }
                    return Err(err.into_error(what, host));
                }
                Ok(resp) => {
                    let status = resp.status();
                    // Only the registry's own 401 re-authenticates: a challenge
                    // from elsewhere (an upload Location on another host)
                    // must not pick where credentials go.
                    if status == StatusCode::UNAUTHORIZED
                        && !reauthed
                        && same_origin(resp.url(), &endpoint.base)
                        && let Some(ch) = pick_challenge(resp.headers())
                    {
                        reauthed = true;
                        if let Some((key, _)) = &auth {
                            // The token was refused: never offer it again.
                            self.inner.tokens.forget(host, key);
                        }
                        extra_scope = ch.param("scope").map(str::to_owned);
                        if let Some(e) = self.host_cell(host).lock().await.as_mut() {
                            e.challenge = Some(ch);
                        }
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
                    if status.is_redirection()
                        && status != StatusCode::NOT_MODIFIED
                        && (method == Method::GET || method == Method::HEAD)
                    {
                        return self
                            .follow(what, &endpoint.base, method, resp, headers)
                            .await;
                    }
                    return Ok(resp);
                }
            }
        }
    }

    /// Sends a request that needs no registry auth (a redirect target),
    /// retrying connection errors.
    async fn send_retrying(
        &self,
        what: What<'_>,
        req: RequestBuilder,
    ) -> std::result::Result<Response, TransportError> {
        let mut attempt = 0;
        loop {
            let r = req.try_clone().expect("bodiless request").send().await;
            match r {
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    let err = TransportError(e);
                    if attempt < err.retries(self.inner.retry.max_retries) {
                        self.back_off(what, &mut attempt, describe(&err.0), None)
                            .await;
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// Follows redirects (to a storage backend, usually): the registry's
    /// `Authorization` goes only to the registry's own origin.
    async fn follow(
        &self,
        what: What<'_>,
        registry: &Url,
        method: Method,
        mut resp: Response,
        headers: HeaderMap,
    ) -> Result<Response> {
        let mut hops = 0;
        while resp.status().is_redirection() && resp.status() != StatusCode::NOT_MODIFIED {
            hops += 1;
            if hops > 5 {
                return Err(Error::Protocol {
                    what: what.to_owned(),
                    message: "more than 5 redirects".to_owned(),
                });
            }
            let to = location(what, &resp, "redirect", false)?;
            let target = host_port(&to);
            let mut h = headers.clone();
            if !same_origin(&to, registry) {
                h.remove(AUTHORIZATION);
            }
            let req = self
                .http(self.is_insecure(&target))
                .request(method.clone(), to)
                .headers(h);
            resp = self
                .send_retrying(what, req)
                .await
                .map_err(|e| e.into_error(what, &target))?;
        }
        Ok(resp)
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

/// The `Location` of `resp`, resolved against its URL: a redirect's target
/// or an upload session's next URL (`kind` says which, for messages). Only
/// http(s); with `no_downgrade`, not from HTTPS down to plain HTTP.
pub(crate) fn location(
    what: What<'_>,
    resp: &Response,
    kind: &str,
    no_downgrade: bool,
) -> Result<Url> {
    let fail = |message: String| Error::Protocol {
        what: what.to_owned(),
        message,
    };
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            fail(format!(
                "HTTP {} without a Location",
                resp.status().as_u16()
            ))
        })?;
    let from = resp.url();
    let to = from
        .join(loc)
        .map_err(|e| fail(format!("{kind} {loc:?}: {e}")))?;
    if !matches!(to.scheme(), "http" | "https")
        || (no_downgrade && from.scheme() == "https" && to.scheme() == "http")
    {
        return Err(fail(format!("{kind} to {to} is refused (scheme)")));
    }
    Ok(to)
}

/// An error's message without its leading "what: ".
fn strip_what(e: &Error, what: &str) -> String {
    let s = e.to_string();
    s.strip_prefix(what)
        .and_then(|r| r.strip_prefix(": "))
        .map_or(s.clone(), str::to_owned)
}

/// The first challenge a client can answer: bearer before basic.
fn pick_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let mut all = Vec::new();
    for v in headers.get_all(WWW_AUTHENTICATE) {
        if let Ok(s) = v.to_str() {
            all.extend(Challenge::parse_all(s));
        }
    }
    all.iter()
        .find(|c| c.scheme == "bearer")
        .or_else(|| all.iter().find(|c| c.scheme == "basic"))
        .or(all.first())
        .cloned()
}

pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

pub(crate) fn host_port(u: &Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

/// A transport failure, classified.
pub(crate) struct TransportError(pub(crate) reqwest::Error);

impl TransportError {
    pub(crate) fn is_tls(&self) -> bool {
        tls_message(&self.0).is_some()
    }

    /// How many retries this failure deserves, of `max`: none for TLS,
    /// a malformed request or a redirect loop; none for a refused
    /// connection to this very host (nothing listens: waiting will not
    /// start it) and one elsewhere; one for a name that does not resolve;
    /// `max` for the rest (resets, timeouts).
    pub(crate) fn retries(&self, max: u32) -> u32 {
        if self.is_tls() || self.0.is_builder() || self.0.is_redirect() {
            return 0;
        }
        if self.refused() {
            let local = self.0.url().is_some_and(|u| is_loopback(&host_port(u)));
            return if local { 0 } else { max.min(1) };
        }
        if self.unresolved() {
            return max.min(1);
        }
        max
    }

    fn causes(&self) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
        std::iter::successors(Some(&self.0 as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
    }

    fn refused(&self) -> bool {
        self.causes().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        })
    }

    fn unresolved(&self) -> bool {
        // The resolver's error reaches us as text only.
        self.causes().any(|e| {
            let t = e.to_string();
            t.contains("dns error") || t.contains("failed to lookup address")
        })
    }

    pub(crate) fn into_error(self, what: What<'_>, host: &str) -> Error {
        if let Some(message) = tls_message(&self.0) {
            return Error::Tls {
                what: what.to_owned(),
                host: host.to_owned(),
                message,
            };
        }
        Error::Connect {
            what: what.to_owned(),
            host: host.to_owned(),
            message: describe(&self.0),
        }
    }
}

/// The rustls error somewhere in the chain, described.
fn tls_message(e: &reqwest::Error) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(t) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(t.to_string());
        }
        let text = err.to_string();
        if text.contains("InvalidContentType") || text.contains("corrupt message") {
            return Some("the server does not speak TLS on this port".to_owned());
        }
        // When the rustls error is not reachable as a type (wrapped by a
        // layer that kept only its text), its wording still says it.
        for marker in [
            "invalid peer certificate",
            "peer is incompatible",
            "peer misbehaved",
            "received fatal alert",
            "tls handshake",
        ] {
            if let Some(i) = text.find(marker) {
                return Some(text[i..].to_owned());
            }
        }
        cur = err.source();
    }
    None
}

/// A reqwest error with its causes, on one line, without the URL noise.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    // hyper's wrappers ("client error (Connect)", "tcp connect error") say
    // nothing the innermost cause does not.
    parts.retain(|p| p != "client error (Connect)" && p != "tcp connect error");
    if parts.is_empty() {
        e.without_url_ref()
    } else {
        parts.join(": ")
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let s = self.to_string();
        match s.split_once(" for url (") {
            Some((head, _)) => head.to_owned(),
            None => s,
        }
    }
}

/// Reads a whole (small) body, failing beyond `limit` bytes.
pub(crate) async fn read_limited(
    resp: Response,
    limit: usize,
) -> std::result::Result<Vec<u8>, String> {
    read_bounded(resp, limit).await.map_err(|e| match e {
        Bounded::Over {
            seen,
            announced: true,
        } => {
            format!("response of {seen} bytes is over the limit of {limit}")
        }
        Bounded::Over { .. } => format!("response is over the limit of {limit} bytes"),
        Bounded::Transport(m) => m,
    })
}

/// Why a bounded read stopped.
pub(crate) enum Bounded {
    /// More than the limit: `seen` bytes announced, or received so far.
    Over { seen: u64, announced: bool },
    /// The transfer failed.
    Transport(String),
}

/// Reads a whole (small) body, stopping as soon as it passes `limit`.
pub(crate) async fn read_bounded(
    mut resp: Response,
    limit: usize,
) -> std::result::Result<Vec<u8>, Bounded> {
    if let Some(n) = resp.content_length()
        && n > limit as u64
    {
        return Err(Bounded::Over {
            seen: n,
            announced: true,
        });
    }
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > limit {
                    return Err(Bounded::Over {
                        seen: (out.len() + c.len()) as u64,
                        announced: false,
                    });
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(Bounded::Transport(describe(&e))),
        }
    }
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
