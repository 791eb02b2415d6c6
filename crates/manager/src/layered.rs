//! Plugins on the layer store: the storage driver (overlay: layers shared
//! by ChainID, mounted as the overlay's lower directories; flat: one
//! flattened rootfs per plugin, for hosts where overlay cannot be used),
//! applying a plugin's layers, the lower directories it runs on, and the
//! layers nothing uses.

use std::path::{Path, PathBuf};

use pluginctl_layers::Compressed;
use pluginctl_oci::Compression;
use pluginctl_oci::{Descriptor, Digest, PluginConfig};

use crate::store::{self, Record};
use crate::{Error, Manager, Result};

/// How plugins' rootfs are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Layers in the layer store (`<root>/layers`), shared by ChainID and
    /// mounted as overlay lower directories. Needs root and a file system
    /// that can hold overlay's upper directories and whiteouts.
    Overlay,
    /// A flattened rootfs per plugin (`plugins/<id>/rootfs`): what needs
    /// no privileges, and what releases before the layer store wrote.
    Flat,
}

impl Driver {
    /// `overlay` or `flat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Flat => "flat",
        }
    }

    /// The driver named `s`.
    pub fn parse(s: &str) -> Result<Driver> {
        match s {
            "overlay" => Ok(Driver::Overlay),
            "flat" | "vfs" => Ok(Driver::Flat),
            _ => Err(Error::Invalid(format!(
                "unknown storage driver {s:?} (overlay or flat)"
            ))),
        }
    }
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The driver in use and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverChoice {
    /// The driver.
    pub driver: Driver,
    /// Why (`asked for`, `overlay works here`, or why overlay cannot be
    /// used).
    pub why: String,
    /// Whether it was asked for rather than chosen.
    pub asked: bool,
}

/// Whether overlay works under `root` (a whiteout device, a trusted
/// xattr, an overlay mount with an upper directory there): `Err` says why
/// not.
fn probe_overlay(root: &Path) -> std::result::Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not running as root".to_owned());
    }
    let dir = root.join(format!("overlay-probe-{}", std::process::id()));
    let result = probe_in(&dir);
    let _ = store::unmount_under(&dir);
    let _ = store::remove_tree(&dir);
    result
}

fn probe_in(dir: &Path) -> std::result::Result<(), String> {
    use rustix::fs::{FileType, Mode, XattrFlags, mknodat, setxattr};
    let [l1, l2, up, work, merged] = ["l1", "l2", "upper", "work", "merged"].map(|d| dir.join(d));
    for d in [&l1, &l2, &up, &work, &merged] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    mknodat(
        rustix::fs::CWD,
        l1.join("gone"),
        FileType::CharacterDevice,
        Mode::empty(),
        0,
    )
    .map_err(|e| format!("a whiteout device in {}: {e}", l1.display()))?;
    setxattr(&l1, "trusted.overlay.opaque", b"y", XattrFlags::empty())
        .map_err(|e| format!("trusted xattrs on {}: {e}", l1.display()))?;
    pluginctl_rootfs::overlay::mount(&[l1, l2], Some((&up, &work)), &merged).map_err(|e| {
        format!(
            "an overlay with its upper directory in {}: {e}",
            dir.display()
        )
    })?;
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty())
        .map_err(|e| format!("unmounting {}: {e}", merged.display()))
}

impl Manager {
    /// The storage driver for new plugins: the one asked for
    /// ([`Manager::with_driver`]), else overlay where it works (probed once
    /// per manager), else flat.
    pub fn driver(&self) -> &DriverChoice {
        self.driver.get_or_init(|| match self.probe() {
            Ok(()) => DriverChoice {
                driver: Driver::Overlay,
                why: "overlay works here".to_owned(),
                asked: false,
            },
            Err(why) => DriverChoice {
                driver: Driver::Flat,
                why,
                asked: false,
            },
        })
    }

    /// Uses `driver` for new plugins instead of choosing one. Overlay is
    /// refused where it cannot work, with why.
    pub fn with_driver(self, driver: Driver) -> Result<Manager> {
        if driver == Driver::Overlay
            && let Err(why) = self.probe()
        {
            return Err(Error::State(format!(
                "the overlay storage driver cannot be used under {}: {why}",
                self.layout.root().display()
            )));
        }
        let choice = DriverChoice {
            driver,
            why: "asked for".to_owned(),
            asked: true,
        };
        let cell = std::sync::OnceLock::new();
        let _ = cell.set(choice);
        Ok(Manager {
            driver: cell,
            ..self
        })
    }

    /// [`probe_overlay`] in `tmp/`, as an operation: recovery, which
    /// empties `tmp/`, waits for it.
    fn probe(&self) -> std::result::Result<(), String> {
        let _op = self.layout.operation().map_err(|e| e.to_string())?;
        probe_overlay(&self.layout.tmp())
    }

    /// The layer store.
    pub fn layers(&self) -> &pluginctl_layers::Store {
        &self.layers
    }

    /// Whether a new plugin with these layers goes onto the layer store
    /// (the overlay driver, and at least one layer).
    pub(crate) fn layered(&self, layers: &[Descriptor]) -> bool {
        self.driver().driver == Driver::Overlay && !layers.is_empty()
    }

    /// The digest of layer `i`'s uncompressed tar. Docker writes the gzip
    /// blob's digest as a plugin's diff_id (`shared/compat`), which no
    /// uncompressed tar has, and checks no diff_id on install: for such a
    /// layer, or a config without one diff_id per layer, the blob is
    /// decompressed once to learn it, unless a layer applied from that
    /// blob says it already.
    fn diff_id_of(&self, record: &Record, i: usize) -> Result<Digest> {
        let desc = &record.layers[i];
        let plain = desc.media_type.layer_compression() == Some(Compression::None);
        if let Some(claimed) = diff_ids(&record.config, &record.layers).map(|d| &d[i])
            && (claimed != &desc.digest || plain)
        {
            return Ok(claimed.clone());
        }
        if let Ok(l) = self.layers.get(&desc.digest.to_string()) {
            return Ok(l.diff_id);
        }
        let blob = self.content.open_blob(&desc.digest)?;
        let limits = pluginctl_rootfs::extract::Options::default().decompress_limits;
        let mut plain = pluginctl_rootfs::decompress::decompress(
            std::io::BufReader::with_capacity(1 << 20, blob),
            &limits,
        )
        .map_err(|e| Error::Layer {
            layer: desc.digest.clone(),
            source: e.into(),
        })?;
        let mut h = pluginctl_oci::Digester::new(pluginctl_oci::Algorithm::Sha256);
        std::io::copy(&mut plain, &mut h).map_err(|e| Error::Layer {
            layer: desc.digest.clone(),
            source: pluginctl_rootfs::Error::Read(e).into(),
        })?;
        Ok(h.finish())
    }

    /// Applies layer `i` of `record` (its parent applied already) from its
    /// blob; a layer whose ChainID is present is not applied again.
    /// Returns its ChainID.
    pub(crate) fn apply_layer(
        &self,
        record: &Record,
        i: usize,
        parent: Option<&Digest>,
    ) -> Result<Digest> {
        let diff_id = self.diff_id_of(record, i)?;
        let desc = &record.layers[i];
        let compression = match desc.media_type.layer_compression() {
            Some(Compression::Gzip) => "gzip",
            Some(Compression::Zstd) => "zstd",
            _ => "none",
        };
        // The content store verified the blob when it stored it.
        let blob = self.content.open_blob(&desc.digest)?;
        let layer = self
            .layers
            .apply_trusted(
                parent,
                &diff_id,
                std::io::BufReader::with_capacity(1 << 20, blob),
                &Compressed {
                    digest: desc.digest.clone(),
                    size: desc.size,
                    compression: compression.to_owned(),
                },
            )
            .map_err(|e| Error::Layer {
                layer: desc.digest.clone(),
                source: e,
            })?;
        Ok(layer.id)
    }

    /// Applies every layer of `record` in order (each present one
    /// skipped); returns the top's ChainID.
    pub(crate) fn apply_layers(&self, record: &Record) -> Result<Option<Digest>> {
        let mut parent = None;
        for i in 0..record.layers.len() {
            parent = Some(self.apply_layer(record, i, parent.as_ref())?);
        }
        Ok(parent)
    }

    /// The read-only directories the plugin runs on, top first: its layer
    /// chain, or its flattened rootfs.
    pub fn lowers(&self, record: &Record) -> Result<Vec<PathBuf>> {
        if record.chain.is_none() {
            return Ok(vec![self.rootfs(record)]);
        }
        let chain = self.chain_of(record)?;
        Ok(chain
            .iter()
            .rev()
            .map(|id| self.layers.diff_dir(id))
            .collect())
    }

    /// The ChainIDs of `record`'s layers, lowest first (empty for a flat
    /// plugin).
    pub fn chain_of(&self, record: &Record) -> Result<Vec<Digest>> {
        let Some(top) = &record.chain else {
            return Ok(Vec::new());
        };
        let all = self
            .layers
            .layers()
            .map_err(|e| Manager::layer_err(record, &e))?;
        let mut out = Vec::new();
        let mut cur = Some(top);
        while let Some(id) = cur {
            let l = all
                .iter()
                .find(|l| &l.id == id && !l.incomplete)
                .ok_or_else(|| {
                    Error::State(format!(
                        "plugin {}: its layer {id} is not in the layer store ({})",
                        record.familiar_name(),
                        self.layers.root().display()
                    ))
                })?;
            out.push(l.id.clone());
            cur = l.parent.as_ref();
        }
        out.reverse();
        Ok(out)
    }

    fn layer_err(record: &Record, e: &pluginctl_layers::Error) -> Error {
        Error::State(format!("plugin {}: {e}", record.familiar_name()))
    }

    /// Deletes the layers no plugin record names (and directories of the
    /// layer store without a record). Only while no other operation is in
    /// flight in any process: an install or upgrade applies layers before
    /// its record names them.
    pub(crate) fn gc_layers(&self, records: &[Record]) -> Result<Option<Vec<Digest>>> {
        let Some(_quiet) = self.layout.quiescent()? else {
            tracing::info!("another operation is in flight: unused layers are left for a later gc");
            return Ok(None);
        };
        let keep: Vec<Digest> = records.iter().filter_map(|r| r.chain.clone()).collect();
        let removed = self
            .layers
            .gc(&keep)
            .map_err(|e| Error::State(e.to_string()))?;
        Ok(Some(removed))
    }
}

/// The config's diff_ids, when it has one per layer.
fn diff_ids<'a>(config: &'a PluginConfig, layers: &[Descriptor]) -> Option<&'a [Digest]> {
    let ids = config.rootfs.as_ref()?.diff_ids.as_deref()?;
    (ids.len() == layers.len()).then_some(ids)
}
