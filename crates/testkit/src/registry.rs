//! Real peers for registry tests: the CNCF distribution registry (Debian
//! package `docker-registry`) started on 127.0.0.1 with a temp storage dir
//! and stopped by PID; a token server issuing real signed JWTs; a TCP proxy
//! that cuts transfers; self-signed certificates.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::http::{Reply, Request, Server};

/// The distribution binary from Debian's `docker-registry` package.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// User and password of the htpasswd and token registries.
pub const USER: &str = "testuser";
/// See [`USER`].
pub const PASSWORD: &str = "testpass";
/// bcrypt of [`PASSWORD`] (made once with libxcrypt; distribution accepts `$2b$`).
const PASSWORD_BCRYPT: &str = "$2b$12$C/.IZbHhDKgYRrZoEHyoi.qyM7PoutxjPcSbz5rEYy9TvQ/yTXE.S";

/// A self-signed certificate and its key, for 127.0.0.1 and localhost.
pub struct Cert {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM PKCS#8 private key.
    pub key: PathBuf,
}

impl Cert {
    /// Makes one with `openssl req` in `dir`.
    pub fn generate(dir: &Path, name: &str) -> Cert {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                // A leaf that is its own trust anchor: webpki refuses a CA
                // certificate used as an end entity.
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ])
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cert { cert, key }
    }

    /// A certificate authority and a client certificate it signed (for
    /// mutual TLS): `(ca, client)`, made with `openssl` in `dir`.
    pub fn client_pair(dir: &Path, name: &str) -> (PathBuf, Cert) {
        let ca_key = dir.join(format!("{name}-ca.key"));
        let ca = dir.join(format!("{name}-ca.crt"));
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let p = |p: &Path| p.to_str().expect("UTF-8 temp path").to_owned();
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &p(&ca_key),
            "-out",
            &p(&ca),
            "-subj",
            &format!("/CN={name} test CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ]);
        let key = dir.join(format!("{name}.key"));
        let csr = dir.join(format!("{name}.csr"));
        let cert = dir.join(format!("{name}.cert"));
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &p(&key),
            "-out",
            &p(&csr),
            "-subj",
            &format!("/CN={name}"),
        ]);
        let ext = dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .expect("extensions file");
        run(&[
            "x509",
            "-req",
            "-in",
            &p(&csr),
            "-CA",
            &p(&ca),
            "-CAkey",
            &p(&ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &p(&cert),
            "-extfile",
            &p(&ext),
        ]);
        (ca, Cert { cert, key })
    }

    /// The certificate in DER (for a JWT `x5c`).
    pub fn der(&self) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&self.cert)
            .output()
            .expect("run openssl");
        assert!(out.status.success());
        out.stdout
    }
}

/// How the registry authenticates.
pub enum Auth {
    /// Anyone may pull and push.
    None,
    /// htpasswd Basic auth ([`USER`]/[`PASSWORD`]); needs TLS, as distribution
    /// refuses Basic auth in the clear.
    Htpasswd,
    /// Bearer tokens from `token` (its realm, service, issuer and certificate).
    Token(TokenConfig),
}

/// What a registry needs to trust a token server.
#[derive(Clone)]
pub struct TokenConfig {
    /// The token endpoint URL.
    pub realm: String,
    /// The `service` (the JWT audience).
    pub service: String,
    /// The JWT issuer.
    pub issuer: String,
    /// The certificate whose key signs the tokens.
    pub cert: PathBuf,
}

/// A running `docker-registry serve`; killed by PID on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The state directory (config, storage, log).
    pub dir: tempfile::TempDir,
    /// The TLS certificate, when serving HTTPS.
    pub cert: Option<Cert>,
}

/// Whether the distribution registry is installed.
pub fn available() -> bool {
    Path::new(REGISTRY_BIN).exists()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// How a registry is started, beyond its auth.
#[derive(Default, Clone)]
pub struct Options {
    /// Serve HTTPS with a fresh self-signed certificate.
    pub tls: bool,
    /// Require a client certificate signed by this CA (mutual TLS; needs
    /// `tls`).
    pub client_ca: Option<PathBuf>,
    /// Be a pull-through cache of this registry URL (distribution's
    /// `proxy: remoteurl:`).
    pub proxy: Option<String>,
    /// Log every request (method and path) to the registry log.
    pub access_log: bool,
}

impl Registry {
    /// A plain-HTTP registry without auth.
    pub fn plain() -> Registry {
        Registry::start(&Auth::None, false)
    }

    /// Starts one; `tls` serves HTTPS with a fresh self-signed certificate.
    pub fn start(auth: &Auth, tls: bool) -> Registry {
        Registry::start_with(
            auth,
            &Options {
                tls,
                ..Options::default()
            },
        )
    }

    /// Starts one with `options`.
    pub fn start_with(auth: &Auth, options: &Options) -> Registry {
        // The free port can be taken by another test between the probe and
        // the registry's bind: try again on a new one.
        for _ in 0..5 {
            if let Some(r) = Registry::try_start(auth, options) {
                return r;
            }
        }
        panic!("docker-registry could not bind a port in 5 tries");
    }

    fn try_start(auth: &Auth, options: &Options) -> Option<Registry> {
        let tls = options.tls;
        assert!(
            available(),
            "{REGISTRY_BIN} is missing: `cargo xtask test` installs docker-registry"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = tls.then(|| Cert::generate(dir.path(), "registry"));
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {host}\n  secret: pluginctl-test-secret\n",
            !options.access_log,
            dir.path().join("storage").display()
        );
        if let Some(c) = &cert {
            let _ = write!(
                config,
                "  tls:\n    certificate: {}\n    key: {}\n",
                c.cert.display(),
                c.key.display()
            );
            if let Some(ca) = &options.client_ca {
                let _ = write!(config, "    clientcas:\n      - {}\n", ca.display());
            }
        }
        if let Some(remote) = &options.proxy {
            let _ = write!(config, "proxy:\n  remoteurl: {remote}\n");
        }
        match auth {
            Auth::None => {}
            Auth::Htpasswd => {
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{USER}:{PASSWORD_BCRYPT}\n")).expect("htpasswd");
                let _ = write!(
                    config,
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    path.display()
                );
            }
            Auth::Token(t) => {
                let _ = write!(
                    config,
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    t.realm,
                    t.service,
                    t.issuer,
                    t.cert.display()
                );
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut reg = Registry {
            child,
            host,
            dir,
            cert,
        };
        reg.wait_ready().then_some(reg)
    }

    /// Waits for the log line saying it listens on our address; `false`
    /// when the address was taken.
    fn wait_ready(&mut self) -> bool {
        let want = format!("listening on {}", self.host);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let log = self.log();
            if log.contains(&want) {
                return true;
            }
            if log.contains("address already in use") {
                return false;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}): {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("docker-registry did not listen in 20 s: {}", self.log());
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The PEM of its certificate (to trust it).
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.cert.as_ref().expect("a TLS registry").cert).expect("cert")
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token server for distribution's `auth.token`: `GET /token` with Basic
/// credentials (or a `POST` refresh-token grant) returns an RS256 JWT with
/// the `x5c` of its certificate, granting what was asked to [`USER`] and
/// only `pull` to anonymous callers.
pub struct TokenServer {
    server: Server,
    /// What the registry needs to trust it.
    pub config: TokenConfig,
    _dir: tempfile::TempDir,
    issued: Arc<AtomicUsize>,
}

/// The refresh token [`TokenServer`] accepts for [`USER`].
pub const REFRESH_TOKEN: &str = "refresh-token-of-testuser";

impl TokenServer {
    /// Starts one on 127.0.0.1.
    pub fn start() -> TokenServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = Cert::generate(dir.path(), "token");
        let der = cert.der();
        let key = cert.key.clone();
        let service = "pluginctl-test-registry".to_owned();
        let issuer = "pluginctl-test-issuer".to_owned();
        let issued = Arc::new(AtomicUsize::new(0));
        let counter = AtomicU64::new(0);
        let (svc, iss, n) = (service.clone(), issuer.clone(), Arc::clone(&issued));
        let server = Server::start(move |req: &Request| {
            let user = match who(req) {
                Ok(u) => u,
                Err(r) => return r,
            };
            let scopes = if req.method == "POST" {
                form(&req.body, "scope")
                    .map(|s| s.split(' ').map(str::to_owned).collect())
                    .unwrap_or_default()
            } else {
                req.query_all("scope")
            };
            let access: Vec<serde_json::Value> = scopes
                .iter()
                .filter_map(|s| {
                    let (ty, rest) = s.split_once(':')?;
                    let (name, actions) = rest.rsplit_once(':')?;
                    let ty = ty.split('(').next().unwrap_or(ty);
                    let actions: Vec<&str> = actions
                        .split(',')
                        .filter(|a| user.is_some() || *a == "pull")
                        .collect();
                    Some(serde_json::json!({"type": ty, "name": name, "actions": actions}))
                })
                .collect();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            let header = serde_json::json!({
                "typ": "JWT", "alg": "RS256",
                "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)]
            });
            let claims = serde_json::json!({
                "iss": iss, "sub": user.clone().unwrap_or_default(), "aud": svc,
                "exp": now + 300, "nbf": now - 10, "iat": now,
                "jti": format!("jti-{}", counter.fetch_add(1, Ordering::SeqCst)),
                "access": access,
            });
            let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
            let signing_input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let sig = sign_rs256(&key, signing_input.as_bytes());
            let jwt = format!("{signing_input}.{}", b64(&sig));
            n.fetch_add(1, Ordering::SeqCst);
            let body = serde_json::json!({
                "token": jwt, "access_token": jwt, "expires_in": 300,
                "issued_at": "2026-01-01T00:00:00Z"
            });
            Reply::new(200, body.to_string()).header("Content-Type", "application/json")
        });
        let config = TokenConfig {
            realm: format!("{}/token", server.url()),
            service,
            issuer,
            cert: cert.cert.clone(),
        };
        TokenServer {
            server,
            config,
            _dir: dir,
            issued,
        }
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    /// Every request the token server saw.
    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }
}

/// The caller of a token request: `Ok(Some(user))`, `Ok(None)` (anonymous),
/// or the reply refusing bad credentials.
fn who(req: &Request) -> Result<Option<String>, Reply> {
    if req.method == "POST" {
        let grant = form(&req.body, "grant_type").unwrap_or_default();
        let token = form(&req.body, "refresh_token").unwrap_or_default();
        return if grant == "refresh_token" && token == REFRESH_TOKEN {
            Ok(Some(USER.to_owned()))
        } else {
            Err(Reply::new(401, r#"{"error":"invalid_grant"}"#))
        };
    }
    let Some(auth) = req.header("authorization") else {
        return Ok(None);
    };
    let decoded = auth
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    if decoded == format!("{USER}:{PASSWORD}") {
        Ok(Some(USER.to_owned()))
    } else {
        Err(Reply::error(401, "UNAUTHORIZED", "bad credentials"))
    }
}

fn form(body: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| crate::http::percent_decode(v))
}

/// RSASSA-PKCS1-v1_5 with SHA-256, by `openssl dgst` (the JWS RS256 signature).
fn sign_rs256(key: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    let out = child.wait_with_output().expect("openssl");
    assert!(out.status.success(), "openssl dgst -sign failed");
    out.stdout
}

/// A TCP proxy to `upstream` that cuts connections: each of the first
/// `cuts` connections is closed once `after` bytes went from upstream to the
/// client (so a blob transfer breaks mid-body); later ones pass untouched.
pub struct CutProxy {
    /// `127.0.0.1:PORT` of the proxy.
    pub host: String,
    cuts_done: Arc<AtomicUsize>,
    patches: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl CutProxy {
    /// Starts it.
    pub fn start(upstream: &str, after: u64, cuts: usize) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = listener.local_addr().expect("addr").to_string();
        let cuts_done = Arc::new(AtomicUsize::new(0));
        let patches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let upstream = upstream.to_owned();
        let (cd, st, pa) = (
            Arc::clone(&cuts_done),
            Arc::clone(&stop),
            Arc::clone(&patches),
        );
        let budget = Arc::new(Mutex::new(cuts));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (cd, budget, pa) = (Arc::clone(&cd), Arc::clone(&budget), Arc::clone(&pa));
                std::thread::spawn(move || pipe_pair(client, server, after, &budget, &cd, &pa));
            }
        });
        CutProxy {
            host,
            cuts_done,
            patches,
            stop,
        }
    }

    /// `PATCH` requests seen going upstream (chunked uploads), counted by
    /// request lines at the start of a read.
    pub fn patches(&self) -> usize {
        self.patches.load(Ordering::SeqCst)
    }

    /// How many connections were cut.
    pub fn cuts(&self) -> usize {
        self.cuts_done.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

fn pipe_pair(
    client: TcpStream,
    server: TcpStream,
    after: u64,
    budget: &Mutex<usize>,
    cuts_done: &AtomicUsize,
    patches: &Arc<AtomicUsize>,
) {
    let (mut c_read, mut s_write) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let patches = Arc::clone(patches);
    let up = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if buf[..n].starts_with(b"PATCH ") {
                patches.fetch_add(1, Ordering::SeqCst);
            }
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut sent = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if sent + n as u64 > after {
            let mut b = budget.lock().expect("budget");
            if *b > 0 {
                *b -= 1;
                drop(b);
                let keep = usize::try_from(after - sent).unwrap_or(0);
                let _ = c_write.write_all(&buf[..keep]);
                cuts_done.fetch_add(1, Ordering::SeqCst);
                let _ = c_write.shutdown(Shutdown::Both);
                let _ = s_read.shutdown(Shutdown::Both);
                break;
            }
        }
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = up.join();
}
