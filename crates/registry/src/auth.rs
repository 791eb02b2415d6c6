//! Authentication: `WWW-Authenticate` challenges, token scopes, bearer
//! tokens, and the `Authorization` of each request (credentials come from
//! [`crate::credentials`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Url;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use serde::Deserialize;

use crate::credentials::{Credentials, SharedCredentials};

use crate::error::{Error, Result, one_line};
use crate::hosts::host_port;
use crate::transport::{Notify, Transport, describe, read_limited};

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower case: `bearer` or `basic`.
    pub scheme: String,
    /// Its parameters; names lower case, values unquoted.
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// Parses every challenge of a header value (RFC 7235 syntax, the way
    /// registries write it: `Bearer realm="…",service="…",scope="…"`).
    pub fn parse_all(header: &str) -> Vec<Challenge> {
        let mut out: Vec<Challenge> = Vec::new();
        let mut p = Parser {
            s: header.as_bytes(),
            i: 0,
        };
        loop {
            p.skip(|c| c == b' ' || c == b',' || c == b'\t');
            let Some(word) = p.token() else { break };
            p.skip(|c| c == b' ' || c == b'\t');
            if p.peek() == Some(b'=') {
                // A parameter of the current challenge.
                p.i += 1;
                p.skip(|c| c == b' ' || c == b'\t');
                let value = if p.peek() == Some(b'"') {
                    p.quoted()
                } else {
                    p.token().unwrap_or_default()
                };
                if let Some(c) = out.last_mut() {
                    c.params.insert(word.to_ascii_lowercase(), value);
                }
            } else {
                out.push(Challenge {
                    scheme: word.to_ascii_lowercase(),
                    params: HashMap::new(),
                });
            }
        }
        out
    }

    /// The parameter `name`, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|c| !matches!(c, b' ' | b'\t' | b',' | b'=' | b'"'));
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> String {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                b'"' => break,
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
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
    /// What a request with this scope needs of a host.
    pub(crate) fn need(&self) -> crate::hosts::Need {
        if self.repos.iter().any(|(_, a)| a.contains("push")) {
            crate::hosts::Need::Push
        } else {
            crate::hosts::Need::Pull
        }
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

/// The first challenge a client can answer: bearer before basic.
pub(crate) fn pick_challenge(headers: &HeaderMap) -> Option<Challenge> {
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

/// Where a request goes, for its authorization.
pub(crate) struct Target<'a> {
    /// The host contacted (`host[:port]`): the token cache's key.
    pub(crate) host: &'a str,
    /// Whose credentials: the registry's name for the registry itself
    /// (where `login` stores them), the host's own for a mirror.
    pub(crate) credentials: &'a str,
    /// Its API root.
    pub(crate) base: &'a Url,
    /// The HTTP client with its TLS settings (for its own token realm too).
    pub(crate) http: &'a reqwest::Client,
    /// Its challenge, once known.
    pub(crate) challenge: Option<&'a Challenge>,
}

/// Credentials and tokens, per host actually contacted: a mirror never
/// gets the upstream registry's.
pub(crate) struct Authenticator {
    credentials: SharedCredentials,
    creds_cache: tokio::sync::Mutex<HashMap<String, Credentials>>,
    /// Scopes a registry's challenge asked for beyond ours, per (host,
    /// our scope), so later requests ask for them up front.
    scope_hints: std::sync::Mutex<HashMap<(String, String), String>>,
    tokens: TokenCache,
    plugin_class: bool,
}

impl Authenticator {
    pub(crate) fn new(credentials: SharedCredentials, plugin_class: bool) -> Authenticator {
        Authenticator {
            credentials,
            creds_cache: tokio::sync::Mutex::new(HashMap::new()),
            scope_hints: std::sync::Mutex::new(HashMap::new()),
            tokens: TokenCache::default(),
            plugin_class,
        }
    }

    /// Forgets a token `host` refused.
    pub(crate) fn forget(&self, host: &str, key: &str) {
        self.tokens.forget(host, key);
    }

    pub(crate) async fn credentials(&self, host: &str) -> Result<Credentials> {
        let mut cache = self.creds_cache.lock().await;
        if let Some(c) = cache.get(host) {
            return Ok(c.clone());
        }
        let source = Arc::clone(&self.credentials);
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
    /// The `Authorization` value for `scope` at `at`, fetching a token
    /// when its challenge asks for one; with the token cache's key.
    pub(crate) async fn authorization(
        &self,
        transport: &Transport,
        notify: Notify<'_>,
        what: &str,
        at: &Target<'_>,
        scope: &Scope,
        extra_scope: Option<&str>,
    ) -> Result<Option<(String, String)>> {
        let Some(challenge) = at.challenge else {
            return Ok(None);
        };
        let host = at.host;
        let creds = self.credentials(at.credentials).await?;
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
                let mut scopes = scope.strings(self.plugin_class);
                let base_key = scopes.join(" ");
                let hint = self
                    .scope_hints
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&(host.to_owned(), base_key.clone()))
                    .cloned();
                if let Some(extra) = extra_scope {
                    self.scope_hints
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
                if let Some(t) = self.tokens.get(host, &key) {
                    return Ok(Some((key, format!("Bearer {t}"))));
                }
                let token =
                    fetch_token(transport, notify, what, at, challenge, &scopes, &creds).await?;
                let value = format!("Bearer {}", token.value);
                self.tokens.put(host, &key, token);
                Ok(Some((key, value)))
            }
            other => Err(Error::Auth {
                what: what.to_owned(),
                message: format!("{host} asks for the unsupported auth scheme {other:?}"),
            }),
        }
    }
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: String,
    pub(crate) valid_until: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Tokens per (host, scope set), shared by every request of a client.
#[derive(Default)]
pub(crate) struct TokenCache {
    map: std::sync::Mutex<HashMap<(String, String), Token>>,
}

impl TokenCache {
    pub(crate) fn get(&self, host: &str, scopes: &str) -> Option<String> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&(host.to_owned(), scopes.to_owned()))
            .filter(|t| t.valid_until > Instant::now())
            .map(|t| t.value.clone())
    }

    pub(crate) fn put(&self, host: &str, scopes: &str, token: Token) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert((host.to_owned(), scopes.to_owned()), token);
    }

    pub(crate) fn forget(&self, host: &str, scopes: &str) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&(host.to_owned(), scopes.to_owned()));
    }
}

/// The largest token response read (a token server returning a film is garbage).
const MAX_TOKEN_RESPONSE: usize = 1 << 20;

/// Asks the token server of a bearer challenge for a token for `scopes`.
/// Credentials of a registry reached over HTTPS never go to a plain-HTTP
/// realm; a realm on the registry's own host is reached with its TLS
/// settings (a private CA from certs.d or hosts.toml).
pub(crate) async fn fetch_token(
    transport: &Transport,
    notify: Notify<'_>,
    what: &str,
    at: &Target<'_>,
    challenge: &Challenge,
    scopes: &[String],
    credentials: &Credentials,
) -> Result<Token> {
    use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
    let fail = |message: String| Error::Auth {
        what: what.to_owned(),
        message,
    };
    let realm = challenge
        .param("realm")
        .ok_or_else(|| fail("the bearer challenge has no realm".to_owned()))?;
    let url = reqwest::Url::parse(realm)
        .map_err(|e| fail(format!("the token realm {realm:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(fail(format!("the token realm {realm} is not http(s)")));
    }
    // Credentials for an HTTPS registry never travel in clear text.
    if url.scheme() == "http"
        && at.base.scheme() == "https"
        && *credentials != Credentials::Anonymous
    {
        return Err(fail(format!(
            "the token realm {realm} is plain HTTP for an HTTPS registry; credentials are not sent there"
        )));
    }
    let service = challenge.param("service").unwrap_or_default();
    let (method, body) = if let Credentials::IdentityToken(refresh) = credentials {
        // OAuth2 refresh-token grant, as `docker login` tokens are used.
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("service", service),
            ("client_id", "pluginctl"),
        ];
        let joined = scopes.join(" ");
        if !scopes.is_empty() {
            form.push(("scope", &joined));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        (reqwest::Method::POST, Some(body))
    } else {
        (reqwest::Method::GET, None)
    };
    let mut target = url.clone();
    if body.is_none() {
        let mut q = target.query_pairs_mut();
        if !service.is_empty() {
            q.append_pair("service", service);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
        if let Credentials::Basic { username, .. } = credentials {
            q.append_pair("account", username);
        }
    }
    let http = if host_port(&target) == host_port(at.base) {
        at.http.clone()
    } else {
        transport.plain(transport.is_insecure(&host_port(&target)))
    };
    let mut req = http.request(method, target);
    if let Some(b) = &body {
        req = req
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(b.clone());
    }
    if let Credentials::Basic { username, password } = credentials {
        let raw = format!("{username}:{password}");
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        let v = HeaderValue::from_str(&v)
            .map_err(|_| fail("the user name or password cannot be sent in a header".to_owned()))?;
        req = req.header(AUTHORIZATION, v);
    }
    let req = req
        .build()
        .map_err(|e| fail(format!("token request: {}", describe(&e))))?;
    let first = transport
        .send_plain(notify, what, &http, &req)
        .await
        .map_err(|e| fail(format!("token server {realm}: {}", describe(&e.0))))?;
    // The password goes only to the realm's own origin, never where it
    // redirects.
    let token_what = format!("{what}: token server {realm}");
    let response = transport
        .follow(notify, &token_what, first, &req, (&url, &http), &[])
        .await?;
    let status = response.status().as_u16();
    let body = read_limited(response, MAX_TOKEN_RESPONSE)
        .await
        .map_err(|m| fail(format!("token server {realm}: {m}")))?;
    if status != 200 {
        let detail = crate::error::Envelope::parse(&body).map_or_else(
            || one_line(&String::from_utf8_lossy(&body), 120),
            |e| format!("{}: {}", e.code, e.message),
        );
        return Err(fail(format!(
            "token server {realm} answered HTTP {status}{}{detail}",
            if detail.is_empty() { "" } else { ": " }
        )));
    }
    let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
        fail(format!(
            "token server {realm} returned something that is not a token response: {e}"
        ))
    })?;
    let value = parsed
        .token
        .or(parsed.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| fail(format!("token server {realm} returned no token")))?;
    if value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(fail(format!(
            "token server {realm} returned a token with spaces or control characters"
        )));
    }
    // The spec's minimum lifetime is 60 s; renew a little early.
    // At least the spec's 60 s, at most a day (a hostile value must not
    // overflow the clock).
    let lifetime = parsed.expires_in.unwrap_or(60).clamp(60, 86_400);
    let valid_until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(5));
    Ok(Token { value, valid_until })
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_write_them() {
        let c = Challenge::parse_all(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(
            c[0].param("scope"),
            Some("repository:samalba/my-app:pull,push")
        );

        let two = Challenge::parse_all(r#"Basic realm="Registry Realm", Bearer realm=x,service=y"#);
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].scheme, "basic");
        assert_eq!(two[0].param("realm"), Some("Registry Realm"));
        assert_eq!(two[1].param("service"), Some("y"));

        let escaped = Challenge::parse_all(r#"Bearer realm="a\"b""#);
        assert_eq!(escaped[0].param("realm"), Some("a\"b"));
        assert!(Challenge::parse_all("").is_empty());
    }
}
