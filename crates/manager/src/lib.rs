//! The Docker managed-plugin lifecycle, outside dockerd.
//!
//! This is the facade of pluginctl: it composes the content store, the
//! registry client, the rootfs code, the privilege computation and the
//! runtime into Docker's plugin lifecycle, and re-exports those crates as
//! modules so that a user needs one dependency.
//!
//! The facade (`lib.rs`: the manager, `list`, `inspect`, `remove`, `gc`)
//! over one module per part of the lifecycle: `store.rs`, the plugin store
//! (records, one metadata lock for every process sharing a root, atomic
//! writes, crash recovery, the rootfs paths); `layered.rs`, the storage
//! driver and plugins on the layer store (`pluginctl-layers`: layers
//! shared by ChainID, mounted as the overlay's lower directories);
//! `create.rs`, `create` from a context directory or tar; `tree.rs`, a
//! flattened rootfs extracted from its layers (the flat driver);
//! `remote.rs`, `privileges`, `install`, `push` and `upgrade` through the
//! registry client (layers applied while others download), and `set`;
//! `run.rs`, `enable`, `disable`, `restore` and the supervisor's side of a
//! running plugin; `check.rs`, `check`; `usage.rs`, what `df` shows.
//!
//! ```no_run
//! use pluginctl_manager::{Manager, CreateOptions};
//!
//! let m = Manager::open(std::path::Path::new("/var/lib/pluginctl"))?;
//! let created = m.create("sample:1.0", std::path::Path::new("./context"), &CreateOptions::default())?;
//! println!("{} {}", created.id, created.familiar_name());
//! # Ok::<(), pluginctl_manager::Error>(())
//! ```

pub use pluginctl_content as content;
pub use pluginctl_layers as layers;
pub use pluginctl_oci as oci;
pub use pluginctl_privileges as privileges;
pub use pluginctl_registry as registry;
pub use pluginctl_rootfs as rootfs;
pub use pluginctl_runtime as runtime;

mod check;
mod create;
mod layered;
mod remote;
mod run;
pub mod store;
mod tree;
mod usage;

pub use check::CheckReport;
pub use create::CreateOptions;
pub use layered::{Driver, DriverChoice};
pub use remote::{InstallOptions, apply_settings, merge_settings};
pub use run::{RestoreResult, RunOptions};
pub use usage::{BlobUsage, LayerUsage, PluginUsage, Usage};

use std::path::{Path, PathBuf};

use pluginctl_content::Store;
use pluginctl_oci::{Digest, Plugin, PluginConfig, PluginSettings, Reference};

use store::Layout;
pub use store::{RECORD_FORMAT, Record, Unreadable};

/// What can go wrong managing plugins. Each names the plugin, reference,
/// digest or path at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No plugin by that name or ID.
    #[error("plugin {0:?} not found")]
    NotFound(String),
    /// An ID prefix matches several plugins.
    #[error("{what:?} matches several plugins: {candidates}")]
    Ambiguous {
        /// The prefix.
        what: String,
        /// The plugins it matches.
        candidates: String,
    },
    /// A plugin by that name exists.
    #[error("plugin {0} already exists")]
    Exists(String),
    /// The request cannot be done in this state (enabled plugin…).
    #[error("{0}")]
    State(String),
    /// Bad input: a name, a config, a context.
    #[error("{0}")]
    Invalid(String),
    /// The caller's cancel flag was raised; what the operation had started
    /// was undone. The message says what was interrupted.
    #[error("{0}: interrupted")]
    Interrupted(String),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] pluginctl_content::Error),
    /// Layer or rootfs handling failed.
    #[error(transparent)]
    Rootfs(#[from] pluginctl_rootfs::Error),
    /// Applying a layer to the layer store failed.
    #[error("layer {layer}: {source}")]
    Layer {
        /// The layer's (compressed) digest.
        layer: Digest,
        /// Why.
        #[source]
        source: pluginctl_layers::Error,
    },
    /// The registry failed (its message names the reference or digest).
    /// Kept typed: a caller can tell "unauthorized" from "not found".
    #[error(transparent)]
    Registry(#[from] pluginctl_registry::Error),
    /// A file operation failed; the message names the path.
    #[error("{0}")]
    Fs(std::io::Error),
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Called with the layer bytes written so far (at most once per MiB).
pub type LayerProgress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// A flag the caller raises (from a signal handler, say) to stop a long
/// operation: it then fails with [`Error::Interrupted`] after undoing what
/// it started.
pub type Cancel = std::sync::Arc<std::sync::atomic::AtomicBool>;

pub(crate) fn cancelled(cancel: Option<&Cancel>) -> bool {
    cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
}

/// What `gc` freed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcSummary {
    /// Blobs deleted.
    pub blobs: usize,
    /// Stale ingests deleted.
    pub ingests: usize,
    /// Bytes of blobs freed.
    pub bytes: u64,
    /// Layers deleted from the layer store; `None` when it was left alone
    /// because another operation was in flight.
    pub layers: Option<usize>,
}

/// The plugin manager over one root directory.
pub struct Manager {
    layout: Layout,
    content: Store,
    layers: pluginctl_layers::Store,
    driver: std::sync::OnceLock<DriverChoice>,
}

/// The media type of a plugin config blob.
pub const PLUGIN_CONFIG_TYPE: &str = "application/vnd.docker.plugin.v1+json";

impl Manager {
    /// Opens (creating) the root, and rolls back whatever a crashed
    /// command left half done.
    pub fn open(root: &Path) -> Result<Manager> {
        let layout = Layout::open(root)?;
        let content = Store::open(&root.join("content"))?;
        let layers = pluginctl_layers::Store::open(&root.join("layers"))
            .map_err(|e| Error::State(format!("the layer store: {e}")))?;
        let m = Manager {
            layout,
            content,
            layers,
            driver: std::sync::OnceLock::new(),
        };
        if let Some(quiet) = m.layout.quiescent()? {
            let lock = m.layout.lock()?;
            for id in m.layout.recover(&lock, &quiet)? {
                // A killed create's layer ingest goes with its record.
                let _ = m.content.abort(&create::ingest_name(&id));
                tracing::info!(%id, "rolled back what a crashed command left");
            }
        }
        Ok(m)
    }

    /// The content store.
    pub fn content(&self) -> &Store {
        &self.content
    }

    /// Parses a local plugin name the way `docker plugin create` does:
    /// normalised, tagged `latest` when untagged; digests refused.
    pub fn parse_name(name: &str) -> Result<Reference> {
        let r = Reference::parse(name).map_err(|e| {
            // Said once: the reference error repeats the name.
            let why = match e {
                pluginctl_oci::Error::InvalidReference { reason, .. } => reason,
                other => other.to_string(),
            };
            Error::Invalid(format!("invalid plugin name {name:?}: {why}"))
        })?;
        if r.digest().is_some() {
            return Err(Error::Invalid(format!(
                "invalid plugin name {name:?}: a canonical (digest) reference cannot name a local plugin"
            )));
        }
        Ok(r)
    }

    /// The plugin records that cannot be read (a damaged file, or one of a
    /// later format): [`Manager::list`] leaves them out, `gc` refuses to
    /// run while there are any, [`Manager::remove_unreadable`] removes one.
    pub fn unreadable(&self) -> Result<Vec<Unreadable>> {
        let lock = self.layout.lock()?;
        Ok(self.layout.scan(&lock)?.1)
    }

    /// Removes the plugin whose record cannot be read, by its ID (the
    /// directory's name) or a unique prefix of it; returns the ID. What it
    /// mounted is unmounted first, nothing is deleted across a mount.
    pub fn remove_unreadable(&self, what: &str) -> Result<String> {
        let _op = self.layout.operation()?;
        let lock = self.layout.lock()?;
        let (records, unreadable) = self.layout.scan(&lock)?;
        // At least 12 hex digits (what `ls` shows), unique among every
        // plugin, readable or not: `rm -f ab` must not take a stranger.
        let hex = what.len() >= 12 && what.bytes().all(|b| b.is_ascii_hexdigit());
        let matching: Vec<&Unreadable> = unreadable
            .iter()
            .filter(|u| hex && u.id.starts_with(what))
            .collect();
        let [u] = matching.as_slice() else {
            return Err(Error::NotFound(what.to_owned()));
        };
        if records.iter().any(|r| r.id.starts_with(what)) {
            return Err(Error::Ambiguous {
                what: what.to_owned(),
                candidates: u.id.clone(),
            });
        }
        // Its record cannot say where it runs; what runs has its rootfs
        // mounted under its directory.
        let dir = self.layout.plugin_dir(&u.id);
        if let Some(m) = pluginctl_runtime::mounts::mount_points_under(&dir).first() {
            return Err(Error::State(format!(
                "plugin {} seems to run ({} is mounted); disable or stop it first",
                u.id,
                m.display()
            )));
        }
        self.layout.discard(&lock, &u.id)?;
        tracing::info!(id = %u.id, "removed a plugin whose record could not be read");
        Ok(u.id.clone())
    }

    /// Every complete plugin, by name.
    pub fn list(&self) -> Result<Vec<Record>> {
        let lock = self.layout.lock()?;
        Ok(self
            .layout
            .records(&lock)?
            .into_iter()
            .filter(|r| !r.incomplete)
            .collect())
    }

    /// The plugin named (name, ID or unique ID prefix).
    pub fn get(&self, what: &str) -> Result<Record> {
        let lock = self.layout.lock()?;
        self.layout.find(&lock, what)
    }

    /// The plugin as `docker plugin inspect` shows it.
    pub fn inspect(&self, what: &str) -> Result<Plugin> {
        Ok(to_plugin(&self.get(what)?))
    }

    /// Removes a plugin (`force` also removes an enabled one), then its
    /// blobs no other plugin uses.
    pub fn remove(&self, what: &str, force: bool) -> Result<Record> {
        let op = self.layout.operation()?;
        let lock = self.layout.lock()?;
        let record = self.layout.find(&lock, what)?;
        if !force {
            self.refuse_running(&record, "removing it, or use --force")?;
        } else if let Some(pid) = self.running(&record) {
            // Never delete a rootfs a plugin runs on.
            return Err(Error::State(format!(
                "plugin {} still runs (supervisor pid {pid}); disable it first",
                record.familiar_name()
            )));
        }
        self.layout.discard(&lock, &record.id)?;
        if let Err(e) = self.forget_run(&record) {
            tracing::warn!(plugin = %record.familiar_name(), "{e}");
        }
        tracing::info!(plugin = %record.familiar_name(), id = %record.id, "removed");
        drop(lock);
        // Its own operation would keep gc off the layer store.
        drop(op);
        // The plugin is gone; blobs left behind are the next gc's.
        if let Err(e) = self.gc() {
            tracing::warn!("{e}");
        }
        Ok(record)
    }

    /// Deletes blobs and layers that no plugin record references, and ingests idle
    /// for a day (a download that may yet be resumed is kept until then).
    pub fn gc(&self) -> Result<GcSummary> {
        self.gc_idle(std::time::Duration::from_secs(24 * 3600))
    }

    /// [`Manager::gc`], and every ingest that no live operation holds,
    /// however recent.
    pub fn gc_all(&self) -> Result<GcSummary> {
        self.gc_idle(std::time::Duration::ZERO)
    }

    fn gc_idle(&self, ingest_max_age: std::time::Duration) -> Result<GcSummary> {
        let lock = self.layout.lock()?;
        let (records, unreadable) = self.layout.scan(&lock)?;
        if let Some(u) = unreadable.first() {
            // Its blobs cannot be told from garbage.
            return Err(Error::State(format!(
                "not collecting garbage while {} cannot be read ({}): fix it, or remove that plugin with `rm -f {}`",
                u.path.display(),
                u.error,
                u.id
            )));
        }
        let mut roots: Vec<Digest> = Vec::new();
        for r in &records {
            roots.extend(r.roots());
        }
        let layers = self.gc_layers(&records)?;
        let report = self.content.gc(&roots, ingest_max_age)?;
        Ok(GcSummary {
            blobs: report.removed.len(),
            ingests: report.removed_ingests.len(),
            bytes: report.freed_bytes,
            layers: layers.map(|l| l.len()),
        })
    }
}

/// Interface types Docker's plugin consumers know; a plugin declaring
/// another is accepted, with a warning (it may work with another engine).
pub const KNOWN_CAPABILITIES: &[&str] = &[
    "volumedriver",
    "networkdriver",
    "ipamdriver",
    "authz",
    "logdriver",
    "metricscollector",
    "csicontroller",
    "csinode",
];

/// The interface types of `config` no Docker consumer knows.
pub fn unknown_types(config: &PluginConfig) -> Vec<String> {
    config
        .interface
        .types
        .iter()
        .flatten()
        .filter(|t| t.prefix != "docker" || !KNOWN_CAPABILITIES.contains(&t.capability.as_str()))
        .map(ToString::to_string)
        .collect()
}

/// The settings a fresh plugin starts with: the config's env values, args,
/// mounts and devices, as Docker fills `Settings`.
pub fn default_settings(config: &PluginConfig) -> PluginSettings {
    PluginSettings {
        args: Some(config.args.value.clone().unwrap_or_default()),
        devices: Some(config.linux.devices.clone().unwrap_or_default()),
        env: Some(
            config
                .env
                .iter()
                .flatten()
                .filter_map(|e| e.value.as_ref().map(|v| format!("{}={v}", e.name)))
                .collect(),
        ),
        mounts: Some(config.mounts.clone().unwrap_or_default()),
    }
}

/// An error and its sources, `outer: inner: innermost`, for errors that
/// become a message of this crate's.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let c = cause.to_string();
        if !s.ends_with(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        next = cause.source();
    }
    s
}

/// A record as Docker's `Plugin` object.
pub fn to_plugin(r: &Record) -> Plugin {
    Plugin {
        config: r.config.clone(),
        enabled: r.enabled,
        id: r.id.clone(),
        name: r.familiar_name(),
        plugin_reference: r.reference.clone(),
        settings: r.settings.clone(),
    }
}
