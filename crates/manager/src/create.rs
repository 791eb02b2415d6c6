//! `create`: a plugin from a context (a directory holding `config.json`
//! and `rootfs/`, or a tar of one): the layer written and the rootfs
//! extracted from one uncompressed tar stream, the config and manifest
//! blobs, the record.

use std::path::Path;

use pluginctl_oci::{Descriptor, Manifest, MediaType, PluginConfig, Reference};
use pluginctl_rootfs::layer::Compression;

use crate::store::{self, Record};
use crate::{
    Cancel, Driver, Error, LayerProgress, Manager, PLUGIN_CONFIG_TYPE, Result, cancelled, chain,
    default_settings,
};

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

/// The content-store ingest a create writes its layer through.
pub(crate) fn ingest_name(id: &str) -> String {
    format!("create-{id}")
}

impl Manager {
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
            let _ = self.content.abort(&ingest_name(&id));
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
        // On the layer store, the layer is applied from its blob once it
        // is written (its diff_id names it).
        let layered = self.driver().driver == Driver::Overlay;
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let staging_rootfs = store::rootfs_paths(dir).staging;
        store::remove_tree(&staging_rootfs)?;
        if !layered {
            std::fs::create_dir(&staging_rootfs).map_err(|e| Error::io(&staging_rootfs, e))?;
        }
        let mut w = self.content.writer(&ingest_name(id))?;
        let (reader, writer) = std::io::pipe().map_err(|e| Error::io(dir, e))?;
        let (written, extracted) = std::thread::scope(|s| {
            let target = &staging_rootfs;
            let mut writer = (!layered).then_some(writer);
            let extraction = s.spawn(move || {
                if layered {
                    return Ok(pluginctl_rootfs::extract::Stats::default());
                }
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
                writer.as_mut().map(|w| w as &mut dyn std::io::Write),
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
        let mut record = Record {
            format: store::RECORD_FORMAT,
            id: id.to_owned(),
            name: reference.to_string(),
            // Docker shows a created plugin's own name as its reference,
            // in its familiar form (`sample:latest`).
            reference: reference.familiar(),
            manifest: manifest_desc,
            config_digest,
            layers: vec![layer],
            // Known once its layer is applied.
            chain: None,
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
        if layered {
            record.chain = self.apply_layers(&record)?;
        } else {
            let target = store::rootfs_paths(dir).current;
            std::fs::rename(&staging_rootfs, &target).map_err(|e| Error::io(&target, e))?;
        }
        Ok(record)
    }
}
