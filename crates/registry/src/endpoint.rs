//! Which hosts answer for a registry, and how each answers: the host list
//! of every registry (read once per client from the hosts configuration),
//! each host's probed endpoint (scheme, TLS, challenge), and the hosts that
//! failed to connect, skipped for the rest of the client's life (a dead
//! mirror costs one dial per command, not one per blob).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use crate::auth::{Challenge, pick_challenge};
use crate::error::{Error, Result};
use crate::hosts::{HostsConfig, RegistryHost};
use crate::transport::{Notify, TlsKey, Transport, TransportError};

/// A host, probed: where its API is and how it wants to be authenticated.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// The API root (`…/v2/`), ending in `/`.
    pub(crate) base: Url,
    /// The HTTP client with the host's TLS settings.
    pub(crate) http: reqwest::Client,
    /// The host's challenge, once it sent one.
    pub(crate) challenge: Option<Challenge>,
}

type Cell = Arc<tokio::sync::Mutex<Option<Endpoint>>>;

/// The hosts of every registry this client talked to, and their state.
pub(crate) struct Endpoints {
    config: HostsConfig,
    lists: Mutex<HashMap<String, Arc<Vec<RegistryHost>>>>,
    /// Per host URL: its endpoint once probed. The outer lock is held only
    /// to find the cell, so a slow host never blocks another.
    cells: Mutex<HashMap<String, Cell>>,
    dead: Mutex<HashSet<String>>,
}

impl Endpoints {
    pub(crate) fn new(config: HostsConfig) -> Endpoints {
        Endpoints {
            config,
            lists: Mutex::new(HashMap::new()),
            cells: Mutex::new(HashMap::new()),
            dead: Mutex::new(HashSet::new()),
        }
    }

    /// The hosts of `registry` (a reference's domain) in the order they are
    /// tried. Read once; configuration warnings are logged then.
    pub(crate) fn hosts(&self, registry: &str, api_host: &str) -> Result<Arc<Vec<RegistryHost>>> {
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(l) = lists.get(registry) {
            return Ok(Arc::clone(l));
        }
        let (hosts, warnings) = self.config.hosts(registry, api_host)?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let hosts = Arc::new(hosts);
        lists.insert(registry.to_owned(), Arc::clone(&hosts));
        Ok(hosts)
    }

    pub(crate) fn is_dead(&self, host: &RegistryHost) -> bool {
        self.dead
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(host.url.as_str())
    }

    /// Skips `host` for the rest of this client's life.
    pub(crate) fn mark_dead(&self, host: &RegistryHost) {
        self.dead
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.url.to_string());
    }

    /// A host's cell: one per URL and settings (one URL may be listed for
    /// two registries with different CAs or paths).
    fn cell(&self, host: &RegistryHost) -> Cell {
        let key = format!(
            "{} {:?} {:?} {}",
            host.url, host.tls, host.dial_timeout, host.override_path
        );
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(cells.entry(key).or_default())
    }

    /// Records the challenge `host` sent on a 401, for the next requests.
    pub(crate) async fn set_challenge(&self, host: &RegistryHost, ch: Challenge) {
        if let Some(e) = self.cell(host).lock().await.as_mut() {
            e.challenge = Some(ch);
        }
    }

    /// How `host` answers: probed (`GET /v2/`) once per client. `more`:
    /// other hosts follow, so the probe is sent once, without retries, a
    /// failure marks the host dead, and a host another request found dead
    /// while this one waited for the probe is not probed again.
    pub(crate) async fn endpoint(
        &self,
        transport: &Transport,
        notify: Notify<'_>,
        what: &str,
        host: &RegistryHost,
        more: bool,
    ) -> Result<Endpoint> {
        let cell = self.cell(host);
        let mut slot = cell.lock().await;
        if let Some(e) = &*slot {
            return Ok(e.clone());
        }
        if more && self.is_dead(host) {
            return Err(Error::Connect {
                what: what.to_owned(),
                host: host.host_port(),
                message: "failed earlier in this command; skipped".to_owned(),
            });
        }
        match probe(transport, notify, what, host, more).await {
            Ok(e) => {
                *slot = Some(e.clone());
                Ok(e)
            }
            Err(e) => {
                if more {
                    self.mark_dead(host);
                }
                Err(e)
            }
        }
    }
}

/// Finds how `host` answers. A host whose scheme is given is asked as
/// given; otherwise HTTPS, and for an insecure registry HTTPS without
/// verification and then plain HTTP, as dockerd does. A host whose path
/// is the API root (`override_path`) is not probed: its first 401 says how
/// it authenticates. `once`: no retries.
async fn probe(
    transport: &Transport,
    notify: Notify<'_>,
    what: &str,
    host: &RegistryHost,
    once: bool,
) -> Result<Endpoint> {
    let name = host.host_port();
    let insecure = !host.scheme_given && transport.is_insecure(&name);
    let mut candidates = vec![(host.url.scheme().to_owned(), insecure)];
    if insecure {
        candidates.push(("http".to_owned(), false));
    }
    let mut errors: Vec<Error> = Vec::new();
    for (scheme, skip) in candidates {
        let mut h = host.clone();
        h.url
            .set_scheme(&scheme)
            .map_err(|()| Error::Config(format!("registry host {name:?}: bad scheme")))?;
        let base = h.api_root();
        let mut key = TlsKey {
            files: host.tls.clone(),
            dial_timeout: host.dial_timeout,
        };
        key.files.skip_verify |= skip;
        let http = transport.http(&key)?;
        if host.override_path {
            return Ok(Endpoint {
                base,
                http,
                challenge: None,
            });
        }
        let mut req = http.request(Method::GET, base.clone());
        for (k, v) in &host.headers {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
                req = req.header(k, v);
            }
        }
        let req = req
            .build()
            .map_err(|e| Error::Config(format!("{base}: {e}")))?;
        // For an insecure host, HTTPS is only a probe: one try, then HTTP.
        // A host with others after it gets one try too: the next host is
        // its retry.
        let answer = if once || (insecure && scheme == "https") {
            http.execute(req).await.map_err(TransportError)
        } else {
            transport.send_plain(notify, what, &http, &req).await
        };
        match answer {
            Ok(resp) => {
                let status = resp.status();
                let challenge = pick_challenge(resp.headers());
                // Registries behind some proxies answer /v2/ oddly yet serve
                // the API; keep going without a challenge, as Docker does.
                if status.is_success()
                    || status == StatusCode::UNAUTHORIZED
                    || status == StatusCode::FORBIDDEN
                {
                    return Ok(Endpoint {
                        base,
                        http,
                        challenge: if status == StatusCode::UNAUTHORIZED {
                            challenge
                        } else {
                            None
                        },
                    });
                }
                errors.push(Error::Protocol {
                    what: what.to_owned(),
                    message: format!(
                        "{base} answered HTTP {}: not a registry (distribution API v2)",
                        status.as_u16()
                    ),
                });
            }
            Err(e) => errors.push(e.into_error(what, &name)),
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
                "{name} answers neither HTTPS ({}) nor HTTP ({})",
                strip_what(&first, what),
                strip_what(&second, what)
            ),
        }),
    }
}

/// An error's message without its leading "what: ".
fn strip_what(e: &Error, what: &str) -> String {
    let s = e.to_string();
    s.strip_prefix(what)
        .and_then(|r| r.strip_prefix(": "))
        .map_or(s.clone(), str::to_owned)
}
