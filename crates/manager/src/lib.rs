//! The Docker managed-plugin lifecycle, outside dockerd.
//!
//! This is the facade of pluginctl: it composes the content store, the
//! registry client, the rootfs code, the privilege computation and the
//! runtime into Docker's plugin lifecycle, and re-exports those crates as
//! modules so that a user needs one dependency.
//!
//! The plugin store (records, one metadata lock for every process sharing a
//! root, atomic writes, crash recovery), `create` from a context directory
//! or tar, `privileges`, `install`, `push` and `upgrade` through the
//! registry client, `set`, `list`, `inspect`, `remove` and `gc`, and
//! `enable`, `disable`, `restore` and the supervisor's side of a running
//! plugin (`run.rs`).
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
pub use pluginctl_oci as oci;
pub use pluginctl_privileges as privileges;
pub use pluginctl_registry as registry;
pub use pluginctl_rootfs as rootfs;
pub use pluginctl_runtime as runtime;

mod remote;
mod run;
pub mod store;

pub use remote::{InstallOptions, apply_settings, merge_settings};
pub use run::{RestoreResult, RunOptions};

use std::path::{Path, PathBuf};

use pluginctl_content::Store;
use pluginctl_oci::{
    Descriptor, Digest, Manifest, MediaType, Plugin, PluginConfig, PluginSettings, Reference,
};
use pluginctl_rootfs::layer::Compression;

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

/// How `create` builds the layer.
#[derive(Clone)]
#[non_exhaustive]
pub struct CreateOptions {
    /// gzip (the default, as Docker) or zstd.
    pub compression: Compression,
    /// Told how far the layer is.
    pub progress: Option<LayerProgress>,
    /// Stops the create (everything it wrote is removed).
    pub cancel: Option<Cancel>,
}

impl std::fmt::Debug for CreateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateOptions")
            .field("compression", &self.compression)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl CreateOptions {
    /// With this layer compression.
    pub fn compression(compression: Compression) -> CreateOptions {
        CreateOptions {
            compression,
            progress: None,
            cancel: None,
        }
    }

    /// Reporting layer bytes to `f`.
    #[must_use]
    pub fn with_progress(mut self, f: LayerProgress) -> CreateOptions {
        self.progress = Some(f);
        self
    }

    /// Stopping when `cancel` is raised.
    #[must_use]
    pub fn with_cancel(mut self, cancel: Cancel) -> CreateOptions {
        self.cancel = Some(cancel);
        self
    }
}

/// Counts what passes to the content store, for [`CreateOptions::progress`],
/// and stops the layer at [`CreateOptions::cancel`].
struct Counted<'a, W> {
    inner: W,
    done: u64,
    last: u64,
    report: Option<&'a LayerProgress>,
    cancel: Option<&'a Cancel>,
}

impl<W: std::io::Write> std::io::Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if cancelled(self.cancel) {
            // Not ErrorKind::Interrupted: write_all would retry that.
            return Err(std::io::Error::other("interrupted"));
        }
        let n = self.inner.write(buf)?;
        self.done += n as u64;
        if let Some(r) = self.report
            && self.done - self.last >= 1 << 20
        {
            self.last = self.done;
            r(self.done);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Default for CreateOptions {
    fn default() -> CreateOptions {
        CreateOptions {
            compression: Compression::GZIP,
            progress: None,
            cancel: None,
        }
    }
}

/// What `gc` freed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcSummary {
    /// Blobs deleted.
    pub blobs: usize,
    /// Stale ingests deleted.
    pub ingests: usize,
    /// Bytes freed.
    pub bytes: u64,
}

/// The content-store ingest a create writes its layer through.
fn create_ingest(id: &str) -> String {
    format!("create-{id}")
}

/// The plugin manager over one root directory.
pub struct Manager {
    layout: Layout,
    content: Store,
}

/// The media type of a plugin config blob.
pub const PLUGIN_CONFIG_TYPE: &str = "application/vnd.docker.plugin.v1+json";

impl Manager {
    /// Opens (creating) the root, and rolls back whatever a crashed
    /// command left half done.
    pub fn open(root: &Path) -> Result<Manager> {
        let layout = Layout::open(root)?;
        let content = Store::open(&root.join("content"))?;
        let m = Manager { layout, content };
        if let Some(quiet) = m.layout.quiescent()? {
            let lock = m.layout.lock()?;
            for id in m.layout.recover(&lock, &quiet)? {
                // A killed create's layer ingest goes with its record.
                let _ = m.content.abort(&create_ingest(&id));
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

    /// `docker plugin create NAME CONTEXT`: CONTEXT is a directory holding
    /// `config.json` and `rootfs/`, or a tar of one (a file, or `-` for
    /// stdin). Builds the layer (deterministic), the config blob (with the
    /// uncompressed `diff_ids`) and the schema2 manifest, extracts the
    /// rootfs from the layer, and records the plugin, disabled.
    pub fn create(&self, name: &str, context: &Path, options: &CreateOptions) -> Result<Record> {
        let reference = Manager::parse_name(name)?;
        let full = reference.to_string();
        let id = store::new_id()?;
        let dir = self.layout.plugin_dir(&id);
        // Reserve the name: an incomplete record under the metadata lock.
        {
            let lock = self.layout.lock()?;
            if self.layout.find(&lock, &full).is_ok() {
                return Err(Error::Exists(reference.familiar()));
            }
            if self.layout.records(&lock)?.iter().any(|r| r.name == full) {
                return Err(Error::State(format!(
                    "plugin {} is being created or installed by another command",
                    reference.familiar()
                )));
            }
        }
        let op = self.layout.operation()?;
        let result = self.create_in(&reference, &id, &dir, context, options);
        if result.is_err() {
            // Its layer's ingest: nobody resumes a create.
            let _ = self.content.abort(&create_ingest(&id));
        }
        self.finish(op, &id, &reference, result)
    }

    /// Ends a create or install under the metadata lock: the record is
    /// completed, unless the operation failed or a racing one finished the
    /// same name first — then everything it wrote is discarded.
    pub(crate) fn finish(
        &self,
        op: store::OpsGuard,
        id: &str,
        name: &Reference,
        result: Result<Record>,
    ) -> Result<Record> {
        let lock = self.layout.lock()?;
        let full = name.to_string();
        let outcome = match result {
            Ok(mut record) => {
                if self
                    .layout
                    .records(&lock)?
                    .iter()
                    .any(|r| r.name == full && r.id != id && !r.incomplete)
                {
                    Err(Error::Exists(name.familiar()))
                } else {
                    record.incomplete = false;
                    self.layout.save(&lock, &record)?;
                    tracing::info!(plugin = %record.familiar_name(), id = %record.id, "recorded");
                    return Ok(record);
                }
            }
            Err(e) => Err(e),
        };
        drop(op);
        self.layout.discard(&lock, id)?;
        outcome
    }

    fn create_in(
        &self,
        reference: &Reference,
        id: &str,
        dir: &Path,
        context: &Path,
        options: &CreateOptions,
    ) -> Result<Record> {
        let staging = tempfile::Builder::new()
            .prefix("create-")
            .tempdir_in(self.layout.tmp())
            .map_err(|e| Error::io(&self.layout.tmp(), e))?;
        // The context: a directory, or a tar unpacked into staging.
        let (config_bytes, rootfs_dir) = if context.is_dir() {
            let c = pluginctl_rootfs::context::from_dir(context)?;
            (c.config, c.rootfs)
        } else {
            let input: Box<dyn std::io::Read + Send> = if context == Path::new("-") {
                Box::new(std::io::stdin())
            } else {
                Box::new(std::fs::File::open(context).map_err(|e| Error::io(context, e))?)
            };
            // unpack_tar puts the rootfs/ entries straight into `dest`.
            let dest = staging.path().join("rootfs");
            std::fs::create_dir(&dest).map_err(|e| Error::io(&dest, e))?;
            let opts = pluginctl_rootfs::extract::Options::default();
            let (config, _) = pluginctl_rootfs::context::unpack_tar(input, &dest, &opts)?;
            (config, dest)
        };
        let config_name = context.join("config.json");
        let mut config = PluginConfig::from_slice(&config_bytes)
            .map_err(|e| Error::Invalid(format!("{}: {}", config_name.display(), chain(&e))))?;
        config
            .check_socket()
            .map_err(|e| Error::Invalid(format!("{}: {e}", config_name.display())))?;
        // The layer, straight into the content store; the same tar stream,
        // uncompressed, is extracted into the rootfs on another thread (no
        // decompression pass, and the rootfs is exactly the layer).
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let staging_rootfs = dir.join("rootfs.staging");
        store::remove_tree(&staging_rootfs)?;
        std::fs::create_dir(&staging_rootfs).map_err(|e| Error::io(&staging_rootfs, e))?;
        let mut w = self.content.writer(&create_ingest(id))?;
        let (reader, mut writer) = std::io::pipe().map_err(|e| Error::io(dir, e))?;
        let (written, extracted) = std::thread::scope(|s| {
            let target = &staging_rootfs;
            let extraction = s.spawn(move || {
                let opts = pluginctl_rootfs::extract::Options::default();
                // Returning drops the reader: a failed extraction shows
                // the writer a broken pipe rather than a hang.
                pluginctl_rootfs::extract::apply_layer(target, reader, &opts)
            });
            let counted = Counted {
                inner: &mut w,
                done: 0,
                last: 0,
                report: options.progress.as_ref(),
                cancel: options.cancel.as_ref(),
            };
            let written = pluginctl_rootfs::layer::write_layer_tee(
                &rootfs_dir,
                counted,
                options.compression,
                threads,
                Some(&mut writer),
            );
            drop(writer);
            (written, extraction.join())
        });
        if cancelled(options.cancel.as_ref()) {
            return Err(Error::Interrupted(format!("creating {reference}")));
        }
        let extracted =
            extracted.map_err(|_| Error::State("the extraction thread panicked".to_owned()))?;
        // An extraction failure explains a broken pipe on the writing side.
        extracted?;
        let info = written?;
        let layer_digest = w.commit(Some(info.size), Some(&info.digest))?;
        let layer = Descriptor::new(options.compression.media_type(), layer_digest, info.size);
        // The config blob: the context's config plus the rootfs diff_ids.
        config.rootfs = Some(pluginctl_oci::plugin::PluginRootfs {
            diff_ids: Some(vec![info.diff_id.clone()]),
            kind: "layers".to_owned(),
        });
        let config_blob = config.to_vec();
        if config_blob.len() > PluginConfig::MAX_BYTES {
            // Install reads no more than this: a plugin nobody could install.
            return Err(Error::Invalid(format!(
                "{}: the plugin config would be {} bytes with its rootfs, over the limit of {}",
                config_name.display(),
                config_blob.len(),
                PluginConfig::MAX_BYTES
            )));
        }
        let config_digest = self.content.write_blob(&config_blob, None)?;
        let config_desc = Descriptor::new(
            MediaType::parse(PLUGIN_CONFIG_TYPE),
            config_digest.clone(),
            config_blob.len() as u64,
        );
        let manifest = Manifest::docker(config_desc, vec![layer.clone()]);
        let manifest_bytes = manifest.to_vec();
        let manifest_digest = self.content.write_blob(&manifest_bytes, None)?;
        let manifest_desc = Descriptor::new(
            manifest
                .media_type
                .clone()
                .unwrap_or(MediaType::DockerManifest),
            manifest_digest,
            manifest_bytes.len() as u64,
        );
        let record = Record {
            format: store::RECORD_FORMAT,
            id: id.to_owned(),
            name: reference.to_string(),
            // Docker shows a created plugin's own name as its reference,
            // in its familiar form (`sample:latest`).
            reference: reference.familiar(),
            manifest: manifest_desc,
            config_digest,
            layers: vec![layer],
            settings: default_settings(&config),
            // The user built it: what its config asks for is theirs.
            granted: pluginctl_privileges::compute(&config, None),
            config,
            enabled: false,
            failed: None,
            publish: false,
            run: None,
            created: store::now_rfc3339(),
            incomplete: true,
        };
        {
            let lock = self.layout.lock()?;
            self.layout.save(&lock, &record)?;
        }
        let target = dir.join("rootfs");
        std::fs::rename(&staging_rootfs, &target).map_err(|e| Error::io(&target, e))?;
        Ok(record)
    }

    /// Applies the record's layers, in manifest order, into `staging`
    /// (made afresh).
    fn extract_into(&self, record: &Record, staging: &Path) -> Result<()> {
        store::remove_tree(staging)?;
        std::fs::create_dir(staging).map_err(|e| Error::io(staging, e))?;
        let opts = pluginctl_rootfs::extract::Options::default();
        let mut readers = Vec::new();
        for l in &record.layers {
            readers.push(self.content.open_blob(&l.digest)?);
        }
        pluginctl_rootfs::extract::apply_layers(staging, readers, &opts)?;
        Ok(())
    }

    /// Applies the record's layers, in manifest order, into a staging
    /// directory beside the plugin's, then renames it to `rootfs/`.
    fn extract_rootfs(&self, record: &Record, dir: &Path) -> Result<()> {
        let staging = dir.join("rootfs.staging");
        self.extract_into(record, &staging)?;
        let target = dir.join("rootfs");
        store::remove_tree(&target)?;
        std::fs::rename(&staging, &target).map_err(|e| Error::io(&target, e))
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
        let _op = self.layout.operation()?;
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
        // The plugin is gone; blobs left behind are the next gc's.
        if let Err(e) = self.gc() {
            tracing::warn!("{e}");
        }
        Ok(record)
    }

    /// Deletes blobs that no plugin record references, and ingests idle
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
        for r in records {
            roots.extend(r.roots());
        }
        let report = self.content.gc(&roots, ingest_max_age)?;
        Ok(GcSummary {
            blobs: report.removed.len(),
            ingests: report.removed_ingests.len(),
            bytes: report.freed_bytes,
        })
    }

    /// Where a plugin's rootfs is.
    pub fn rootfs(&self, record: &Record) -> PathBuf {
        self.layout.plugin_dir(&record.id).join("rootfs")
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
