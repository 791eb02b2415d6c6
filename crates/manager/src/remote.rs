//! The commands that talk to a registry: `privileges`, `install`, `push`;
//! and `set` (the settings grammar is shared with `install KEY=VALUE`).
//!
//! The registry client is async; the store, the content store and rootfs
//! extraction are sync and run on `spawn_blocking` where they take long.

// Two-armed matches with long arms read better than if-let-else here.
#![allow(clippy::single_match_else)]

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pluginctl_content::Store;
use pluginctl_oci::{
    Descriptor, Digest, Digester, Manifest, MediaType, Platform, PluginConfig, PluginPrivilege,
    PluginSettings, Reference,
};
use pluginctl_registry::{BlobSinks, BlobSource, Client, FileSource};

use crate::store;
use crate::{Error, Manager, PLUGIN_CONFIG_TYPE, Record, default_settings};

/// How `install` runs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InstallOptions {
    /// The local name (default: the reference's name and tag).
    pub alias: Option<String>,
    /// The platform to pick from an index (default: this host).
    pub platform: Option<Platform>,
    /// `KEY=VALUE` settings applied before the privileges are computed.
    pub settings: Vec<String>,
}

impl InstallOptions {
    /// Options with these `KEY=VALUE` settings and alias.
    pub fn new(alias: Option<String>, settings: Vec<String>) -> InstallOptions {
        InstallOptions {
            alias,
            platform: None,
            settings,
        }
    }
}

/// The content store as the registry client's blob sinks: one ingest per
/// blob (`pull-<digest>`), resumed from what an interrupted run left. Each
/// blob in the store is told to `ready`.
struct ContentSinks {
    content: Store,
    ready: Arc<Ready>,
}

/// The blobs an install has in the content store, for the thread that
/// applies each layer as soon as it and its parent are there (so that
/// downloading and extracting overlap).
#[derive(Default)]
struct Ready {
    /// The blobs there, and whether the fetch is over.
    state: std::sync::Mutex<(std::collections::HashSet<Digest>, bool)>,
    changed: std::sync::Condvar,
}

impl Ready {
    fn update(&self, f: impl FnOnce(&mut (std::collections::HashSet<Digest>, bool))) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut s);
        self.changed.notify_all();
    }

    /// Waits until `d` is there (`true`) or the fetch is over without it.
    fn wait(&self, d: &Digest) -> bool {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if s.0.contains(d) {
                return true;
            }
            if s.1 {
                return false;
            }
            s = self
                .changed
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

impl BlobSinks for ContentSinks {
    type Sink = Ingest;

    async fn open(&self, desc: &Descriptor) -> io::Result<Option<(Ingest, Option<Digester>)>> {
        let content = self.content.clone();
        let d = desc.clone();
        // Waiting for another writer of the blob is a blocking lock.
        let opened = tokio::task::spawn_blocking(move || open_ingest(&content, &d))
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)?;
        if opened.is_none() {
            self.ready.update(|s| {
                s.0.insert(desc.digest.clone());
            });
        }
        Ok(opened)
    }

    async fn commit(&self, desc: &Descriptor, sink: Ingest) -> io::Result<()> {
        let d = desc.clone();
        // Commit fsyncs: off the async threads.
        tokio::task::spawn_blocking(move || sink.0.commit(Some(d.size), Some(&d.digest)).map(drop))
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)?;
        self.ready.update(|s| {
            s.0.insert(desc.digest.clone());
        });
        Ok(())
    }

    async fn reject(&self, _: &Descriptor, sink: Ingest) -> io::Result<()> {
        // Removing the ingest is file-system work: off the async threads.
        tokio::task::spawn_blocking(move || sink.0.abandon())
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)
    }
}

/// The ingest of `desc`'s blob, or `None` when the store has the blob.
/// Another install into this root may be fetching the same blob: its
/// writer is waited for and its result used (containerd's rule), never
/// failed on for being busy.
fn open_ingest(
    content: &Store,
    desc: &Descriptor,
) -> Result<Option<(Ingest, Option<Digester>)>, pluginctl_content::Error> {
    if content.contains(&desc.digest)? {
        return Ok(None);
    }
    let mut w = content.writer_wait(&format!("pull-{}", desc.digest))?;
    if content.contains(&desc.digest)? {
        w.abandon()?;
        return Ok(None);
    }
    // What an earlier, interrupted run fetched is hashed again and the
    // download continues after it (Range); anything odd about the leftover
    // (too long, another total) starts from zero.
    let mut resume = None;
    if w.offset() > 0 && w.offset() <= desc.size && w.total().is_none_or(|t| t == desc.size) {
        let mut d = Digester::new(desc.digest.algorithm());
        io::copy(&mut w.prefix()?, &mut d).map_err(|source| pluginctl_content::Error::Io {
            op: "reading",
            path: content.path().to_owned(),
            source,
        })?;
        resume = Some(d);
    } else {
        w.truncate(0)?;
    }
    if w.total().is_none() {
        w.set_total(desc.size)?;
    }
    Ok(Some((Ingest(w), resume)))
}

/// A content-store writer as the registry client's sink. Writes go to the
/// ingest's buffer (flushed by a helper thread): short enough to do on the
/// async thread.
struct Ingest(pluginctl_content::Writer);

impl tokio::io::AsyncWrite for Ingest {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(io::Write::write(&mut self.get_mut().0, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(io::Write::flush(&mut self.get_mut().0))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl Manager {
    /// Resolves `reference` and fetches its config: a plugin's, or an error
    /// saying what it is instead.
    async fn remote_config(
        client: &Client,
        reference: &Reference,
        platform: Option<&Platform>,
    ) -> Result<(pluginctl_registry::Resolved, Vec<u8>, PluginConfig), Error> {
        let resolved = client
            .resolve(reference, platform)
            .await
            .map_err(Error::Registry)?;
        let config = &resolved.manifest.config;
        if config.media_type.as_str() != PLUGIN_CONFIG_TYPE {
            return Err(Error::Invalid(format!(
                "{reference} is not a plugin: its config is {} (a plugin's is {PLUGIN_CONFIG_TYPE})",
                config.media_type
            )));
        }
        let bytes = client
            .fetch_blob_bytes(reference, config, PluginConfig::MAX_BYTES as u64)
            .await
            .map_err(Error::Registry)?;
        let parsed = PluginConfig::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{reference}: {}", crate::chain(&e))))?;
        Ok((resolved, bytes, parsed))
    }

    /// The privileges the plugin at `reference` asks for (its config only
    /// is fetched). A registry error is an error, not an empty list.
    pub async fn privileges(
        &self,
        client: &Client,
        reference: &str,
    ) -> Result<Vec<PluginPrivilege>, Error> {
        let r = Reference::parse(reference)
            .map_err(|e| Error::Invalid(format!("invalid reference {reference:?}: {e}")))?;
        let (_, _, config) = Manager::remote_config(client, &r, None).await?;
        Ok(pluginctl_privileges::compute(&config, None))
    }

    /// `docker plugin install`: pulls the manifest (schema2 or OCI; an
    /// index is followed to this platform), config and layers into the
    /// content store (verified), applies the `KEY=VALUE` settings, asks
    /// `grant` about the privileges, extracts the layers in manifest order
    /// and records the plugin, disabled. A digest reference pins the
    /// content; the local name keeps the tag.
    pub async fn install(
        &self,
        client: &Client,
        reference: &str,
        options: &InstallOptions,
        grant: impl FnOnce(&[PluginPrivilege]) -> bool,
    ) -> Result<Record, Error> {
        let r = Reference::parse(reference)
            .map_err(|e| Error::Invalid(format!("invalid reference {reference:?}: {e}")))?;
        let local = match &options.alias {
            Some(a) => Manager::parse_name(a)?,
            None => {
                let tag = r.tag().unwrap_or(pluginctl_oci::reference::DEFAULT_TAG);
                r.without_tag_or_digest()
                    .with_tag(tag)
                    .map_err(|e| Error::Invalid(e.to_string()))?
            }
        };
        let full = local.to_string();
        {
            let lock = self.layout.lock()?;
            if self.layout.records(&lock)?.iter().any(|x| x.name == full) {
                return Err(Error::Exists(local.familiar()));
            }
        }
        let (resolved, config_bytes, config) =
            Manager::remote_config(client, &r, options.platform.as_ref()).await?;
        for l in &resolved.manifest.layers {
            if l.media_type.layer_compression().is_none() {
                return Err(Error::Invalid(format!(
                    "{r}: layer {} has media type {}, which is not a layer this tool can apply",
                    l.digest, l.media_type
                )));
            }
        }
        config
            .check_socket()
            .map_err(|e| Error::Invalid(format!("{r}: {e}")))?;
        let mut settings = default_settings(&config);
        apply_settings(&config, &mut settings, &options.settings)?;
        let privileges = pluginctl_privileges::compute(&config, Some(&settings));
        if !grant(&privileges) {
            return Err(Error::State(format!(
                "the privileges {r} asks for were not granted ({})",
                summary(&privileges)
            )));
        }

        let id = store::new_id()?;
        let op = self.layout.operation()?;
        let result = self
            .install_in(
                client,
                &r,
                &resolved,
                &config_bytes,
                config,
                (settings, privileges),
                &local,
                &id,
            )
            .await;
        self.finish(op, &id, &local, result)
    }

    #[allow(clippy::too_many_arguments)]
    async fn install_in(
        &self,
        client: &Client,
        r: &Reference,
        resolved: &pluginctl_registry::Resolved,
        config_bytes: &[u8],
        config: PluginConfig,
        (settings, granted): (PluginSettings, Vec<PluginPrivilege>),
        local: &Reference,
        id: &str,
    ) -> Result<Record, Error> {
        let layers = resolved.manifest.layers.clone();
        let layered = self.layered(&layers);
        let mut record = Record {
            format: store::RECORD_FORMAT,
            id: id.to_owned(),
            name: local.to_string(),
            reference: r.to_string(),
            manifest: manifest_descriptor(resolved),
            config_digest: resolved.manifest.config.digest.clone(),
            layers,
            // Known once its layers are applied.
            chain: None,
            config,
            settings,
            granted,
            enabled: false,
            failed: None,
            publish: false,
            run: None,
            created: store::now_rfc3339(),
            incomplete: true,
        };
        // Recorded (incomplete) before anything is fetched: gc keeps what
        // a record names, and recovery removes it if this process dies.
        {
            let lock = self.layout.lock()?;
            self.layout.save(&lock, &record)?;
        }
        record.chain = self
            .fetch(client, r, resolved, config_bytes, &record, layered)
            .await?;
        if !layered {
            let dir = self.layout.plugin_dir(id);
            let me = self.reopen()?;
            let rec = record.clone();
            tokio::task::spawn_blocking(move || me.extract_rootfs(&rec, &dir))
                .await
                .map_err(|e| Error::State(format!("extraction task: {e}")))??;
        }
        Ok(record)
    }

    /// Manifest, config and layers into the content store, each verified;
    /// when `layered`, each layer applied to the layer store as soon as it
    /// and its parent are there, while the others download (returns the
    /// top layer's ChainID).
    async fn fetch(
        &self,
        client: &Client,
        r: &Reference,
        resolved: &pluginctl_registry::Resolved,
        config_bytes: &[u8],
        record: &Record,
        layered: bool,
    ) -> Result<Option<Digest>, Error> {
        // Manifest and config: small, verified already.
        self.content
            .write_blob(&resolved.bytes, Some(&resolved.descriptor.digest))?;
        self.content
            .write_blob(config_bytes, Some(&resolved.manifest.config.digest))?;
        let ready = Arc::new(Ready::default());
        let applying = layered.then(|| {
            let (me, rec, ready) = (self.reopen(), record.clone(), Arc::clone(&ready));
            tokio::task::spawn_blocking(move || {
                let me = me?;
                let mut parent = None;
                for (i, l) in rec.layers.iter().enumerate() {
                    if !ready.wait(&l.digest) {
                        // The fetch failed; it says why.
                        return Ok(None);
                    }
                    parent = Some(me.apply_layer(&rec, i, parent.as_ref())?);
                }
                Ok::<_, Error>(parent)
            })
        });
        // Layers: streamed into ingests (three at once, the client's
        // transfer limit), committed only when verified.
        let sinks = Arc::new(ContentSinks {
            content: self.content.clone(),
            ready: Arc::clone(&ready),
        });
        let fetched = client
            .fetch_blobs(r, &resolved.manifest.layers, sinks)
            .await;
        ready.update(|s| s.1 = true);
        let applied = match applying {
            Some(task) => task
                .await
                .map_err(|e| Error::State(format!("layer task: {e}")))?,
            None => Ok(None),
        };
        fetched.map_err(Error::Registry)?;
        applied
    }

    /// `docker plugin upgrade NAME [REF]`: the plugin must be disabled; it
    /// keeps its ID and name; settings the user changed are kept and the
    /// new config's defaults fill the rest (Docker drops them, moby#42128);
    /// the propagated-mount directory is not touched. New privileges are
    /// asked for. The switch is two-phase (next record, then the rootfs
    /// swap, then the record), and a crash at any point is finished or
    /// rolled back by the next command.
    pub async fn upgrade(
        &self,
        client: &Client,
        what: &str,
        reference: Option<&str>,
        skip_remote_check: bool,
        grant: impl FnOnce(&[PluginPrivilege]) -> bool,
    ) -> Result<Record, Error> {
        let _op = self.layout.operation()?;
        let old = self.get(what)?;
        self.refuse_running(&old, "upgrading")?;
        let source = reference.map_or_else(|| old.reference.clone(), str::to_owned);
        if source.is_empty() {
            return Err(Error::Invalid(format!(
                "plugin {} has no remote reference; name the one to upgrade from",
                old.familiar_name()
            )));
        }
        let r = Reference::parse(&source)
            .map_err(|e| Error::Invalid(format!("invalid reference {source:?}: {e}")))?;
        if !skip_remote_check
            && let Ok(was) = Reference::parse(&old.reference)
            && (was.domain(), was.path()) != (r.domain(), r.path())
        {
            return Err(Error::Invalid(format!(
                "{r} is not the repository {} came from ({was}); use --skip-remote-check to upgrade across repositories",
                old.familiar_name()
            )));
        }
        let (resolved, config_bytes, config) = Manager::remote_config(client, &r, None).await?;
        config
            .check_socket()
            .map_err(|e| Error::Invalid(format!("{r}: {e}")))?;
        let settings = merge_settings(&old.config, &old.settings, &config);
        let before = old.all_granted();
        let after = pluginctl_privileges::compute(&config, Some(&settings));
        let wider = pluginctl_privileges::diff(&after, &before);
        if !wider.is_empty() && !grant(&wider) {
            return Err(Error::State(format!(
                "the privileges {r} adds were not granted ({})",
                summary(&wider)
            )));
        }
        let layers = resolved.manifest.layers.clone();
        let layered = self.layered(&layers);
        let mut next = Record {
            format: store::RECORD_FORMAT,
            manifest: manifest_descriptor(&resolved),
            config_digest: resolved.manifest.config.digest.clone(),
            layers,
            chain: None,
            config,
            settings,
            granted: [before, wider].concat(),
            reference: r.to_string(),
            ..old.clone()
        };
        // Layers applied now stay until the switch names them: gc leaves
        // the layer store alone while this operation is in flight.
        next.chain = self
            .fetch(client, &r, &resolved, &config_bytes, &next, layered)
            .await?;
        if !layered {
            let dir = self.layout.plugin_dir(&old.id);
            let staging = store::rootfs_paths(&dir).new;
            let me = self.reopen()?;
            let (rec, st) = (next.clone(), staging.clone());
            let extracted = tokio::task::spawn_blocking(move || me.extract_into(&rec, &st))
                .await
                .map_err(|e| Error::State(format!("extraction task: {e}")))?;
            if let Err(e) = extracted {
                store::remove_tree(&staging)?;
                return Err(e);
            }
        }
        let lock = self.layout.lock()?;
        self.layout.commit_upgrade(&lock, &next)?;
        Ok(next)
    }

    fn reopen(&self) -> Result<Manager, Error> {
        Ok(Manager {
            layout: self.layout.clone(),
            content: pluginctl_content::Store::open(self.content.path())?,
            layers: self.layers.clone(),
            driver: self.driver.clone(),
        })
    }

    /// `docker plugin push`: config, layers and manifest from the content
    /// store (the manifest rebuilt only if it is missing), blobs the
    /// registry has skipped. Returns the tag, the manifest digest and size.
    pub async fn push(&self, client: &Client, what: &str) -> Result<(String, Digest, u64), Error> {
        let record = self.get(what)?;
        let reference = Reference::parse(&record.name)
            .map_err(|e| Error::Invalid(format!("{}: {e}", record.name)))?;
        let (media_type, manifest) = if self.content.contains(&record.manifest.digest)? {
            (
                record.manifest.media_type.clone(),
                self.content.read_all(&record.manifest.digest, 4 << 20)?,
            )
        } else {
            let cfg = self.content.info(&record.config_digest)?;
            let m = Manifest::docker(
                Descriptor::new(
                    MediaType::parse(PLUGIN_CONFIG_TYPE),
                    record.config_digest.clone(),
                    cfg.size,
                ),
                record.layers.clone(),
            );
            (MediaType::DockerManifest, m.to_vec())
        };
        let parsed = Manifest::parse(Some(&media_type), &manifest)
            .map_err(|e| Error::Invalid(format!("manifest of {}: {e}", record.familiar_name())))?;
        let mut blobs: Vec<(Descriptor, Arc<dyn BlobSource>)> = Vec::new();
        for d in std::iter::once(&parsed.config).chain(&parsed.layers) {
            if !self.content.contains(&d.digest)? {
                return Err(Error::State(format!(
                    "blob {} of {} is missing from the content store",
                    d.digest,
                    record.familiar_name()
                )));
            }
            blobs.push((
                d.clone(),
                Arc::new(FileSource(self.content.blob_path(&d.digest))),
            ));
        }
        let digest = client
            .push(&reference, &media_type, &manifest, &blobs, None)
            .await
            .map_err(Error::Registry)?;
        let tag = reference.tag().unwrap_or("latest").to_owned();
        Ok((tag, digest, manifest.len() as u64))
    }

    /// `docker plugin set`: only on a disabled plugin, only settable
    /// fields. When the new settings ask for more privileges than the old,
    /// `grant` is asked about the new ones (Docker widens silently).
    pub fn set(
        &self,
        what: &str,
        pairs: &[String],
        grant: impl FnOnce(&[PluginPrivilege]) -> bool,
    ) -> Result<Record, Error> {
        let lock = self.layout.lock()?;
        let mut record = self.layout.find(&lock, what)?;
        self.refuse_running(&record, "changing its settings")?;
        let before = record.all_granted();
        let mut settings = record.settings.clone();
        apply_settings(&record.config, &mut settings, pairs)?;
        let after = pluginctl_privileges::compute(&record.config, Some(&settings));
        let wider = pluginctl_privileges::diff(&after, &before);
        if !wider.is_empty() && !grant(&wider) {
            return Err(Error::State(format!(
                "the new settings of {} need privileges that were not granted ({})",
                record.familiar_name(),
                summary(&wider)
            )));
        }
        record.settings = settings;
        record.granted = [before, wider].concat();
        self.layout.save(&lock, &record)?;
        Ok(record)
    }
}

/// `network: host; mount: /data`: privileges in one line, for errors.
/// The manifest as a record keeps it: media type, digest, size.
fn manifest_descriptor(resolved: &pluginctl_registry::Resolved) -> Descriptor {
    Descriptor::new(
        resolved.descriptor.media_type.clone(),
        resolved.descriptor.digest.clone(),
        resolved.descriptor.size,
    )
}

fn summary(list: &[PluginPrivilege]) -> String {
    list.iter()
        .map(|p| format!("{}: {}", p.name, p.value.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The settings after an upgrade: what the user changed from the old
/// config's defaults is kept (where the new config still has the field);
/// the rest takes the new config's defaults.
pub fn merge_settings(
    old_config: &PluginConfig,
    old: &PluginSettings,
    new_config: &PluginConfig,
) -> PluginSettings {
    let old_default = default_settings(old_config);
    let mut out = default_settings(new_config);
    let env_of = |list: &Option<Vec<String>>, key: &str| {
        list.iter()
            .flatten()
            .find(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
            .cloned()
    };
    if let Some(env) = out.env.as_mut() {
        for e in env.iter_mut() {
            let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_owned();
            let mine = env_of(&old.env, &key);
            if mine.is_some() && mine != env_of(&old_default.env, &key) {
                *e = mine.unwrap_or_default();
            }
        }
    }
    if old.args != old_default.args {
        out.args.clone_from(&old.args);
    }
    if let Some(mounts) = out.mounts.as_mut() {
        for m in mounts.iter_mut() {
            let mine = old.mounts.iter().flatten().find(|x| x.name == m.name);
            let dflt = old_default
                .mounts
                .iter()
                .flatten()
                .find(|x| x.name == m.name);
            if let Some(mine) = mine
                && dflt.is_none_or(|d| d.source != mine.source)
            {
                m.source.clone_from(&mine.source);
            }
        }
    }
    if let Some(devices) = out.devices.as_mut() {
        for d in devices.iter_mut() {
            let mine = old.devices.iter().flatten().find(|x| x.name == d.name);
            let dflt = old_default
                .devices
                .iter()
                .flatten()
                .find(|x| x.name == d.name);
            if let Some(mine) = mine
                && dflt.is_none_or(|x| x.path != mine.path)
            {
                d.path.clone_from(&mine.path);
            }
        }
    }
    out
}

/// Sets one field of the mount or device `name` in `settings` (copied from
/// the config on first change), if the config has it and marks the field
/// settable. `kind` names it in errors; `field` is what `settable` lists.
#[allow(clippy::too_many_arguments)]
fn set_named<T: Clone>(
    pair: &str,
    kind: &str,
    config: Option<&Vec<T>>,
    settings: &mut Option<Vec<T>>,
    name: &str,
    id: impl Fn(&T) -> (&String, &Option<Vec<String>>),
    set: impl Fn(&mut T),
) -> Result<(), Error> {
    let field = if kind == "mount" { "source" } else { "path" };
    let declared = config
        .into_iter()
        .flatten()
        .find(|x| id(x).0 == name)
        .ok_or_else(|| Error::Invalid(format!("setting {pair:?}: no {kind} {name:?}")))?;
    if !id(declared)
        .1
        .as_ref()
        .is_some_and(|l| l.iter().any(|s| s == field))
    {
        return Err(Error::Invalid(format!(
            "setting {pair:?}: the {field} of {kind} {name:?} is not settable"
        )));
    }
    let list = settings.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|x| id(x).0 == name) {
        Some(x) => set(x),
        None => {
            let mut x = declared.clone();
            set(&mut x);
            list.push(x);
        }
    }
    Ok(())
}

/// Applies `KEY=VALUE` pairs with Docker's grammar: `NAME=value` (env),
/// `MOUNT.source=path`, `DEVICE.path=path`, `args=a b c`; each only where
/// the config marks it settable.
pub fn apply_settings(
    config: &PluginConfig,
    settings: &mut PluginSettings,
    pairs: &[String],
) -> Result<(), Error> {
    let settable = |list: &Option<Vec<String>>, what: &str| {
        list.as_ref().is_some_and(|l| l.iter().any(|s| s == what))
    };
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("setting {pair:?}: expected KEY=VALUE")))?;
        if key.is_empty() {
            return Err(Error::Invalid(format!("setting {pair:?}: empty key")));
        }
        if let Some((name, field)) = key.split_once('.') {
            if matches!(field, "source" | "path") && !value.starts_with('/') {
                // A relative source would be resolved against whatever
                // directory the runtime happens to run in.
                return Err(Error::Invalid(format!(
                    "setting {pair:?}: the {field} must be an absolute path"
                )));
            }
            match field {
                "source" => set_named(
                    pair,
                    "mount",
                    config.mounts.as_ref(),
                    &mut settings.mounts,
                    name,
                    |m: &pluginctl_oci::plugin::PluginMount| (&m.name, &m.settable),
                    |m| m.source = Some(value.to_owned()),
                )?,
                "path" => set_named(
                    pair,
                    "device",
                    config.linux.devices.as_ref(),
                    &mut settings.devices,
                    name,
                    |d: &pluginctl_oci::plugin::PluginDevice| (&d.name, &d.settable),
                    |d| d.path = Some(value.to_owned()),
                )?,
                other => {
                    return Err(Error::Invalid(format!(
                        "setting {pair:?}: unknown field {other:?} (source, path)"
                    )));
                }
            }
            continue;
        }
        if key == config.args.name && !key.is_empty() || key == "args" {
            if !settable(&config.args.settable, "value") {
                return Err(Error::Invalid(format!(
                    "setting {pair:?}: args are not settable"
                )));
            }
            settings.args = Some(value.split_whitespace().map(str::to_owned).collect());
            continue;
        }
        let env = config
            .env
            .iter()
            .flatten()
            .find(|e| e.name == key)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "setting {pair:?}: no env, mount, device or args named {key:?}"
                ))
            })?;
        if !settable(&env.settable, "value") {
            return Err(Error::Invalid(format!(
                "setting {pair:?}: env {key:?} is not settable"
            )));
        }
        let list = settings.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match list
            .iter_mut()
            .find(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
        {
            Some(e) => *e = entry,
            None => list.push(entry),
        }
    }
    Ok(())
}
