//! How requests travel: one HTTP client per TLS configuration, the retry
//! loop of requests that carry no registry credentials, the one redirect
//! follower, and how transport failures are classified and told.
//!
//! Knows nothing of registries, hosts files or tokens: [`crate::client`]
//! and [`crate::auth`] stand on it.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderName, LOCATION};
use reqwest::{Request, Response, StatusCode, Url};

use crate::error::{Error, Result};
use crate::hosts::{HostPattern, TlsFiles, host_port, is_loopback};
use crate::progress::Event;
use crate::retry::RetryPolicy;

/// Where progress and retry events go.
pub(crate) type Notify<'a> = &'a (dyn Fn(&Event) + Sync);

/// What one HTTP client is built with, beside the shared settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct TlsKey {
    pub(crate) files: TlsFiles,
    pub(crate) dial_timeout: Option<Duration>,
}

/// Settings every HTTP client shares.
pub(crate) struct Settings {
    pub(crate) user_agent: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    /// CA certificates (PEM) the caller added for every host.
    pub(crate) ca_pems: Vec<Vec<u8>>,
}

/// The HTTP clients, the insecure-registry list and the retry policy.
pub(crate) struct Transport {
    settings: Settings,
    clients: std::sync::Mutex<HashMap<TlsKey, reqwest::Client>>,
    insecure: Vec<HostPattern>,
    loopback_insecure: bool,
    pub(crate) retry: RetryPolicy,
}

impl Transport {
    pub(crate) fn new(
        settings: Settings,
        insecure: Vec<HostPattern>,
        loopback_insecure: bool,
        retry: RetryPolicy,
    ) -> Result<Transport> {
        let t = Transport {
            settings,
            clients: std::sync::Mutex::new(HashMap::new()),
            insecure,
            loopback_insecure,
            retry,
        };
        // A bad CA the caller gave fails the build, not the first request.
        t.http(&TlsKey::default())?;
        Ok(t)
    }

    /// Whether `host[:port]` is an insecure registry: this machine (when
    /// allowed) or one the caller listed.
    pub(crate) fn is_insecure(&self, host: &str) -> bool {
        (self.loopback_insecure && is_loopback(host))
            || self.insecure.iter().any(|p| p.matches(host))
    }

    /// The HTTP client with the default TLS settings, verifying or not.
    pub(crate) fn plain(&self, skip_verify: bool) -> reqwest::Client {
        let key = TlsKey {
            files: TlsFiles {
                skip_verify,
                ..TlsFiles::default()
            },
            dial_timeout: None,
        };
        // Reads no file: it cannot fail once the default was built.
        self.http(&key).expect("the default HTTP client builds")
    }

    /// The HTTP client for `key`, built on first use (reading its files).
    pub(crate) fn http(&self, key: &TlsKey) -> Result<reqwest::Client> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(key) {
            return Ok(c.clone());
        }
        let c = self.build(key)?;
        clients.insert(key.clone(), c.clone());
        Ok(c)
    }

    fn build(&self, key: &TlsKey) -> Result<reqwest::Client> {
        let s = &self.settings;
        let mut b = reqwest::Client::builder()
            .user_agent(s.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(key.dial_timeout.unwrap_or(s.connect_timeout))
            .read_timeout(s.read_timeout)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(8);
        let mut cas: Vec<(String, Vec<u8>)> = s
            .ca_pems
            .iter()
            .map(|p| ("CA certificate".to_owned(), p.clone()))
            .collect();
        for path in &key.files.ca {
            cas.push((path.display().to_string(), read(path)?));
        }
        for (name, pem) in &cas {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Config(format!("{name}: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Config(format!("{name}: holds no PEM certificate")));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some((cert, k)) = &key.files.client {
            let mut pem = read(cert)?;
            if k != cert {
                pem.push(b'\n');
                pem.extend(read(k)?);
            }
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "client certificate {} with key {}: {e}",
                    cert.display(),
                    k.display()
                ))
            })?;
            b = b.identity(id);
        }
        if key.files.skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        b.build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))
    }

    /// Sends a request that carries no registry credentials (a probe, a
    /// redirect target, a token request), retrying connection errors as
    /// the policy says.
    pub(crate) async fn send_plain(
        &self,
        notify: Notify<'_>,
        what: &str,
        http: &reqwest::Client,
        req: &Request,
    ) -> std::result::Result<Response, TransportError> {
        let mut attempt = 0;
        loop {
            let r = req.try_clone().expect("a request without a streamed body");
            match http.execute(r).await {
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    let err = TransportError(e);
                    if attempt < err.retries(self.retry.max_retries) {
                        self.retry
                            .back_off(notify, what, &mut attempt, describe(&err.0), None)
                            .await;
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// Follows `resp`'s redirects (at most 5), sending `request` again to
    /// each target. `own` is the origin the request was for and its HTTP
    /// client (with that host's TLS settings): a hop to the same origin
    /// keeps everything; a hop elsewhere goes with the default client and
    /// without `Authorization` and the `private` headers (a hosts.toml's
    /// `header`s), and a request with a body (a token request carrying a
    /// refresh token) is not sent there at all. The one redirect follower
    /// of the client.
    pub(crate) async fn follow(
        &self,
        notify: Notify<'_>,
        what: &str,
        mut resp: Response,
        request: &Request,
        own: (&Url, &reqwest::Client),
        private: &[HeaderName],
    ) -> Result<Response> {
        let (origin, own_http) = own;
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
            let mut next = request
                .try_clone()
                .expect("a request without a streamed body");
            *next.url_mut() = to.clone();
            let http = if same_origin(&to, origin) {
                own_http.clone()
            } else {
                if next.body().is_some() {
                    return Err(Error::Protocol {
                        what: what.to_owned(),
                        message: format!(
                            "redirected to {target}: a request with a body is not sent to another host"
                        ),
                    });
                }
                next.headers_mut().remove(AUTHORIZATION);
                for h in private {
                    next.headers_mut().remove(h);
                }
                self.plain(self.is_insecure(&target))
            };
            resp = self
                .send_plain(notify, what, &http, &next)
                .await
                .map_err(|e| e.into_error(what, &target))?;
        }
        Ok(resp)
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// The `Location` of `resp`, resolved against its URL: a redirect's target
/// or an upload session's next URL (`kind` says which, for messages). Only
/// http(s); with `no_downgrade`, not from HTTPS down to plain HTTP.
pub(crate) fn location(what: &str, resp: &Response, kind: &str, no_downgrade: bool) -> Result<Url> {
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

pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
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

    pub(crate) fn into_error(self, what: &str, host: &str) -> Error {
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
