//! The global options (`--root`, `--exec-root`, registry hosts, …) and
//! what they make: the manager, its run options, the registry client.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args as ClapArgs;
use pluginctl_manager::Manager;
use pluginctl_manager::registry::{Client, DockerConfig, HostsConfig};

/// Global options every store command takes.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Global {
    /// Root of pluginctl's state (default /var/lib/pluginctl as root,
    /// else $XDG_DATA_HOME/pluginctl; or $PLUGINCTL_ROOT)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// Registries to reach over plain HTTP or unverified TLS, HOST[:PORT]
    /// or a CIDR (localhost and 127.0.0.0/8 always are, as in Docker)
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub(crate) insecure: Vec<String>,
    /// Per-registry host directories (mirrors, CAs, client certificates:
    /// hosts.toml or Docker's cert files), colon-separated, searched in
    /// order (default /etc/docker/certs.d as root, else
    /// $XDG_CONFIG_HOME/docker/certs.d; or $PLUGINCTL_HOSTS_DIR)
    #[arg(long, global = true, value_name = "PATHLIST")]
    pub(crate) hosts_dir: Option<String>,
    /// dockerd's configuration, for its registry-mirrors and
    /// insecure-registries (default /etc/docker/daemon.json when it
    /// exists; "" for none)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) daemon_config: Option<PathBuf>,
    /// How new plugins' rootfs are stored: overlay (layers shared in the
    /// layer store; needs root) or flat (a copy per plugin). Default:
    /// overlay where it works, else flat ($PLUGINCTL_STORAGE_DRIVER)
    #[arg(long, global = true, value_name = "DRIVER")]
    pub(crate) storage_driver: Option<String>,
    /// No progress output
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Where running plugins' bundles and sockets live (default
    /// /run/pluginctl as root, else $XDG_RUNTIME_DIR/pluginctl)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) exec_root: Option<PathBuf>,
    /// The OCI runtime that runs plugins
    #[arg(long, global = true, value_name = "PATH|NAME", default_value = "runc")]
    pub(crate) runtime: String,
    /// Where engines look for legacy plugins' sockets (`enable --publish`)
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/run/docker/plugins"
    )]
    pub(crate) publish_dir: PathBuf,
    /// Where a volume driver enabled with --publish is registered for
    /// podman, as a containers.conf drop-in (default
    /// /etc/containers/containers.conf.d as root, else
    /// $XDG_CONFIG_HOME/containers/containers.conf.d; "" for nowhere)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) podman_conf_dir: Option<PathBuf>,
    /// Diagnostics on stderr: error, warn (default), info, debug, trace
    #[arg(long, global = true, value_name = "LEVEL", default_value = "warn")]
    pub(crate) log_level: tracing::Level,
}

impl Global {
    pub(crate) fn root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return r.clone();
        }
        if let Some(r) = std::env::var_os("PLUGINCTL_ROOT") {
            return PathBuf::from(r);
        }
        if is_root() {
            return PathBuf::from("/var/lib/pluginctl");
        }
        let data = std::env::var_os("XDG_DATA_HOME").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share"),
            PathBuf::from,
        );
        data.join("pluginctl")
    }

    /// Where running plugins and mounted layers are kept track of (tmpfs).
    pub(crate) fn exec_root(&self) -> PathBuf {
        self.exec_root.clone().unwrap_or_else(|| {
            if is_root() {
                PathBuf::from("/run/pluginctl")
            } else {
                std::env::var_os("XDG_RUNTIME_DIR")
                    .map_or_else(std::env::temp_dir, PathBuf::from)
                    .join("pluginctl")
            }
        })
    }

    pub(crate) fn run_options(&self) -> pluginctl_manager::RunOptions {
        let exec_root = self.exec_root();
        let mut o = pluginctl_manager::RunOptions::new(&exec_root);
        o.runtime.clone_from(&self.runtime);
        o.publish_dir.clone_from(&self.publish_dir);
        o.podman_conf_dir = match &self.podman_conf_dir {
            Some(d) if d.as_os_str().is_empty() => None,
            Some(d) => Some(d.clone()),
            None if is_root() => Some(PathBuf::from("/etc/containers/containers.conf.d")),
            None => Some(
                std::env::var_os("XDG_CONFIG_HOME")
                    .map_or_else(
                        || {
                            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                                .join(".config")
                        },
                        PathBuf::from,
                    )
                    .join("containers/containers.conf.d"),
            ),
        };
        // The supervisor is this very binary (`pluginctl supervise`).
        if let Ok(exe) = std::env::current_exe() {
            o.supervisor = vec![exe.into(), "supervise".into()];
        }
        o
    }

    /// A registry client for plugins: Docker's credentials, the plugin
    /// scope class, the insecure registries given.
    pub(crate) fn client(&self) -> Result<Client> {
        self.client_with(DockerConfig::load_default()?)
    }

    /// A registry client as [`Global::client`], with these credentials.
    pub(crate) fn client_with(
        &self,
        credentials: impl pluginctl_manager::registry::CredentialSource + 'static,
    ) -> Result<Client> {
        let mut b = Client::builder()
            .credentials(credentials)
            .plugin_scope_class(true)
            .hosts(self.hosts_config()?);
        for h in &self.insecure {
            b = b.insecure(h);
        }
        let client = b.build()?;
        Ok(if self.quiet {
            client
        } else {
            crate::progress::attach(&client)
        })
    }

    /// Where registries' hosts are configured: `--hosts-dir` (or
    /// `$PLUGINCTL_HOSTS_DIR`, or Docker's default) and `daemon.json`.
    pub(crate) fn hosts_config(&self) -> Result<HostsConfig> {
        let list = self
            .hosts_dir
            .clone()
            .or_else(|| std::env::var("PLUGINCTL_HOSTS_DIR").ok());
        let roots = match list {
            Some(l) => l
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => HostsConfig::default_roots(is_root()),
        };
        let config = HostsConfig::with_roots(roots);
        let daemon = match &self.daemon_config {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p.clone()),
            None => {
                let p = PathBuf::from("/etc/docker/daemon.json");
                p.exists().then_some(p)
            }
        };
        Ok(match daemon {
            Some(p) => config.daemon_json(&p)?,
            None => config,
        })
    }

    /// The manager over an existing root. A root named by `--root` or
    /// `$PLUGINCTL_ROOT` that does not exist is an error (a typo must not
    /// grow a state tree); the default one is made on first use.
    pub(crate) fn manager(&self) -> Result<Manager> {
        let root = self.root();
        let named = self.root.is_some() || std::env::var_os("PLUGINCTL_ROOT").is_some();
        if named && !root.exists() {
            bail!(
                "pluginctl root {} does not exist (create and install make one)",
                root.display()
            );
        }
        self.manager_new()
    }

    /// Says, before a plugin is stored, that it gets a flattened copy
    /// because overlay cannot be used here (not when asked for).
    pub(crate) fn say_driver(&self, m: &Manager) {
        let d = m.driver();
        if d.driver == pluginctl_manager::Driver::Flat && !d.asked && !self.quiet {
            eprintln!(
                "pluginctl: storage driver flat: {} (each plugin gets its own copy of its rootfs)",
                d.why
            );
        }
    }

    /// The manager, making the root when it is missing (`create`,
    /// `install`).
    pub(crate) fn manager_new(&self) -> Result<Manager> {
        let root = self.root();
        let m = Manager::open(&root).with_context(|| format!("opening {}", root.display()))?;
        let asked = (self.storage_driver.clone())
            .or_else(|| std::env::var("PLUGINCTL_STORAGE_DRIVER").ok());
        match asked.as_deref() {
            None | Some("") => Ok(m),
            Some(d) => Ok(m.with_driver(pluginctl_manager::Driver::parse(d)?)?),
        }
    }
}

pub(crate) fn is_root() -> bool {
    // The owner of /proc/self is this process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
