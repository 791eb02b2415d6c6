//! Which hosts serve a registry, and how to reach each: the configuration
//! fleets already have.
//!
//! For a registry `H:P` the first directory of `H_P_`, `H:P` and
//! `_default` that exists under a hosts root (in the roots' order; never
//! merged) says it, as containerd and dockerd read `/etc/docker/certs.d`:
//!
//! - with a `hosts.toml` (`file.rs`): its `[host."URL"]` tables in file order,
//!   then `server` (the registry itself when absent), each with its
//!   capabilities, CAs, client certificates, headers and dial timeout;
//! - without one, Docker's cert files (`certs.rs`) for the registry itself;
//! - for `docker.io` without a host list, `daemon.json`'s
//!   `registry-mirrors` in front (`daemon.rs`).
//!
//! Pure configuration: this module reads files and says what they mean;
//! the client decides when to use which host.

pub(crate) mod certs;
pub(crate) mod daemon;
pub(crate) mod file;
mod pattern;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::error::{Error, Result};
pub(crate) use pattern::{HostPattern, is_loopback};

/// What a host may be asked for (containerd's `capabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// Fetch blobs and manifests by digest.
    pub pull: bool,
    /// Resolve a tag to a digest.
    pub resolve: bool,
    /// Push blobs and manifests, mount across repositories.
    pub push: bool,
}

impl Capabilities {
    /// All three.
    pub const ALL: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: true,
    };
    /// A mirror's: pull and resolve.
    pub const MIRROR: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: false,
    };

    /// Whether these include what `need` asks for.
    pub(crate) fn allow(self, need: Need) -> bool {
        match need {
            Need::Pull => self.pull,
            Need::Resolve => self.resolve,
            Need::Push => self.push,
        }
    }
}

/// What a request needs of the host it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// A blob, or a manifest by digest.
    Pull,
    /// A manifest by tag.
    Resolve,
    /// Anything that writes.
    Push,
}

/// How to verify a host and prove who we are to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsFiles {
    /// CA certificates (PEM) trusted beside the system's.
    pub ca: Vec<PathBuf>,
    /// The client certificate (PEM) and its key (PEM; the same file when it
    /// holds both).
    pub client: Option<(PathBuf, PathBuf)>,
    /// Accept any certificate (containerd's `skip_verify`).
    pub skip_verify: bool,
}

/// Where a host's settings came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nothing configured: the registry itself, as its name says.
    Default,
    /// A `hosts.toml` (its path).
    HostsFile(PathBuf),
    /// `daemon.json`'s `registry-mirrors` (the file's path).
    DaemonJson(PathBuf),
}

/// One host that serves a registry.
#[derive(Debug, Clone)]
pub struct RegistryHost {
    /// The host's URL; its path is where the API lives (`/v2` is appended
    /// unless `override_path`).
    pub url: Url,
    /// Whether the scheme is given (a hosts file, a mirror URL). When it is
    /// not, the client tries HTTPS and, for an insecure registry, HTTP.
    pub scheme_given: bool,
    /// Whether this host is the registry itself (`server`), not a mirror.
    pub is_server: bool,
    /// What it may be asked for.
    pub capabilities: Capabilities,
    /// Its TLS settings.
    pub tls: TlsFiles,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// The URL's path is the API root itself (no `/v2` appended).
    pub override_path: bool,
    /// How long a connection may take.
    pub dial_timeout: Option<Duration>,
    /// Where this came from.
    pub origin: Origin,
}

impl RegistryHost {
    /// The registry `api_host` itself, with nothing configured.
    pub(crate) fn default_for(api_host: &str) -> Result<RegistryHost> {
        let url = Url::parse(&format!("https://{api_host}/"))
            .map_err(|e| Error::Config(format!("registry host {api_host:?}: {e}")))?;
        Ok(RegistryHost {
            url,
            scheme_given: false,
            is_server: true,
            capabilities: Capabilities::ALL,
            tls: TlsFiles::default(),
            headers: Vec::new(),
            override_path: false,
            dial_timeout: None,
            origin: Origin::Default,
        })
    }

    /// The API root: `URL/v2/`, or the URL itself with `override_path`;
    /// always ending in `/` so that `join("repo/…")` stays under it.
    pub fn api_root(&self) -> Url {
        let mut u = self.url.clone();
        let mut path = u.path().trim_end_matches('/').to_owned();
        // containerd appends /v2 unless the path already ends with it.
        if !self.override_path && !path.ends_with("/v2") {
            path.push_str("/v2");
        }
        path.push('/');
        u.set_path(&path);
        u.set_query(None);
        u.set_fragment(None);
        u
    }

    /// `host[:port]` of this host, as credentials and messages name it.
    pub fn host_port(&self) -> String {
        host_port(&self.url)
    }
}

/// Where the per-registry directories are, and `daemon.json`'s settings.
#[derive(Debug, Clone, Default)]
pub struct HostsConfig {
    roots: Vec<PathBuf>,
    mirrors: Vec<Url>,
    mirrors_from: Option<PathBuf>,
    insecure: Vec<String>,
}

impl HostsConfig {
    /// No directories, no mirrors: every registry is its own only host.
    pub fn none() -> HostsConfig {
        HostsConfig::default()
    }

    /// Per-registry directories under `roots`, searched in order.
    pub fn with_roots(roots: Vec<PathBuf>) -> HostsConfig {
        HostsConfig {
            roots,
            ..HostsConfig::default()
        }
    }

    /// The default roots: `/etc/docker/certs.d` for root (`as_root`), else
    /// `$XDG_CONFIG_HOME/docker/certs.d` (`~/.config/docker/certs.d`).
    pub fn default_roots(as_root: bool) -> Vec<PathBuf> {
        if as_root {
            return vec![PathBuf::from("/etc/docker/certs.d")];
        }
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        config
            .map(|c| vec![c.join("docker/certs.d")])
            .unwrap_or_default()
    }

    /// Adds `daemon.json`'s `registry-mirrors` and `insecure-registries`
    /// (read from `path`).
    pub fn daemon_json(mut self, path: &Path) -> Result<HostsConfig> {
        let d = daemon::DaemonJson::load(path)?;
        self.mirrors = d.mirrors;
        self.mirrors_from = Some(path.to_owned());
        self.insecure = d.insecure;
        Ok(self)
    }

    /// `daemon.json`'s insecure registries (host, `host:port` or CIDR),
    /// for the client's insecure list.
    pub fn insecure_registries(&self) -> &[String] {
        &self.insecure
    }

    /// The hosts directory for `registry` (a reference's domain, e.g.
    /// `docker.io` or `reg:5000`), if any.
    pub fn directory(&self, registry: &str) -> Option<PathBuf> {
        let registry = if registry == "index.docker.io" {
            "docker.io"
        } else {
            registry
        };
        let mut names = Vec::new();
        if let Some((h, p)) = registry.rsplit_once(':')
            && !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
        {
            names.push(format!("{h}_{p}_"));
        }
        names.push(registry.to_owned());
        names.push("_default".to_owned());
        self.roots
            .iter()
            .find_map(|root| names.iter().map(|n| root.join(n)).find(|d| d.is_dir()))
    }

    /// The hosts that serve `registry`, in the order they are tried, with
    /// warnings about the configuration (unknown keys). `api_host` is where
    /// the registry's API lives (`registry-1.docker.io` for `docker.io`).
    pub fn hosts(
        &self,
        registry: &str,
        api_host: &str,
    ) -> Result<(Vec<RegistryHost>, Vec<String>)> {
        let dir = self.directory(registry);
        if let Some(dir) = &dir {
            let file = dir.join("hosts.toml");
            match std::fs::read_to_string(&file) {
                Ok(text) => return file::parse(&file, &text, api_host),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Config(format!("{}: {e}", file.display())));
                }
            }
        }
        let mut server = RegistryHost::default_for(api_host)?;
        if let Some(dir) = &dir {
            server.tls = certs::load(dir)?;
        }
        let mut out = Vec::new();
        if registry == "docker.io" || registry == "index.docker.io" {
            for m in &self.mirrors {
                out.push(self.mirror(m)?);
            }
        }
        out.push(server);
        Ok((out, Vec::new()))
    }

    /// A `registry-mirrors` entry, with the cert files of its own host.
    fn mirror(&self, url: &Url) -> Result<RegistryHost> {
        let host = host_port(url);
        let mut tls = match self.directory(&host) {
            Some(d) => certs::load(&d)?,
            None => TlsFiles::default(),
        };
        // An insecure mirror is reached without verification, as dockerd
        // does (its scheme is given, so it is not probed over plain HTTP).
        for p in &self.insecure {
            if HostPattern::parse(p)?.matches(&host) {
                tls.skip_verify = true;
            }
        }
        Ok(RegistryHost {
            url: url.clone(),
            scheme_given: true,
            is_server: false,
            capabilities: Capabilities::MIRROR,
            tls,
            headers: Vec::new(),
            override_path: false,
            dial_timeout: None,
            origin: Origin::DaemonJson(self.mirrors_from.clone().unwrap_or_default()),
        })
    }
}

/// `host[:port]` of a URL, as credentials, cert directories and messages
/// name a host.
pub(crate) fn host_port(u: &Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_chosen_like_containerd() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir(b.path().join("reg_5000_")).unwrap();
        std::fs::create_dir(a.path().join("_default")).unwrap();
        std::fs::create_dir(b.path().join("docker.io")).unwrap();
        let c = HostsConfig::with_roots(vec![a.path().into(), b.path().into()]);
        // The first root's _default wins over the second root's exact name:
        // roots are searched in order, never merged.
        assert_eq!(c.directory("reg:5000"), Some(a.path().join("_default")));
        std::fs::create_dir(a.path().join("reg:5000")).unwrap();
        assert_eq!(c.directory("reg:5000"), Some(a.path().join("reg:5000")));
        std::fs::create_dir(a.path().join("reg_5000_")).unwrap();
        assert_eq!(c.directory("reg:5000"), Some(a.path().join("reg_5000_")));
        let only_b = HostsConfig::with_roots(vec![b.path().into()]);
        assert_eq!(
            only_b.directory("index.docker.io"),
            Some(b.path().join("docker.io"))
        );
        assert_eq!(only_b.directory("other"), None);
    }

    #[test]
    fn daemon_json_mirrors_front_docker_hub_only_without_a_hosts_file() {
        let d = tempfile::tempdir().unwrap();
        let daemon = d.path().join("daemon.json");
        std::fs::write(
            &daemon,
            r#"{"registry-mirrors": ["https://m1.example/hub", "http://m2.example:5000"], "insecure-registries": ["m2.example:5000"]}"#,
        )
        .unwrap();
        let roots = d.path().join("certs.d");
        std::fs::create_dir_all(roots.join("m1.example")).unwrap();
        std::fs::write(roots.join("m1.example/ca.crt"), "x").unwrap();
        let c = HostsConfig::with_roots(vec![roots.clone()])
            .daemon_json(&daemon)
            .unwrap();
        assert_eq!(c.insecure_registries(), ["m2.example:5000"]);
        let (hub, _) = c.hosts("docker.io", "registry-1.docker.io").unwrap();
        let urls: Vec<String> = hub.iter().map(|h| h.api_root().to_string()).collect();
        assert_eq!(
            urls,
            [
                "https://m1.example/hub/v2/",
                "http://m2.example:5000/v2/",
                "https://registry-1.docker.io/v2/"
            ]
        );
        assert_eq!(hub[0].capabilities, Capabilities::MIRROR);
        assert_eq!(hub[0].tls.ca, [roots.join("m1.example/ca.crt")]);
        assert!(
            !hub[0].tls.skip_verify && hub[1].tls.skip_verify,
            "m2 is insecure"
        );
        assert!(hub[2].is_server && hub[2].capabilities.push);
        // Another registry gets no Hub mirror.
        let (other, _) = c.hosts("reg:5000", "reg:5000").unwrap();
        assert_eq!(other.len(), 1);
        // A hosts.toml for docker.io replaces the daemon.json mirrors.
        std::fs::create_dir_all(roots.join("docker.io")).unwrap();
        std::fs::write(
            roots.join("docker.io/hosts.toml"),
            "[host.\"https://only.example\"]\n",
        )
        .unwrap();
        let (hub, _) = c.hosts("docker.io", "registry-1.docker.io").unwrap();
        let urls: Vec<&str> = hub.iter().map(|h| h.url.as_str()).collect();
        assert_eq!(
            urls,
            ["https://only.example/", "https://registry-1.docker.io/"]
        );
    }

    #[test]
    fn api_roots_keep_the_path() {
        let mut h = RegistryHost::default_for("reg:5000").unwrap();
        assert_eq!(h.api_root().as_str(), "https://reg:5000/v2/");
        h.url = Url::parse("https://m.example/cache/hub").unwrap();
        assert_eq!(h.api_root().as_str(), "https://m.example/cache/hub/v2/");
        h.url = Url::parse("https://m.example/cache/v2").unwrap();
        assert_eq!(h.api_root().as_str(), "https://m.example/cache/v2/");
        h.url = Url::parse("https://m.example/cache/hub").unwrap();
        h.override_path = true;
        assert_eq!(h.api_root().as_str(), "https://m.example/cache/hub/");
    }
}
