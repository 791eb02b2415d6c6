//! Mounting a layer chain read-only, counted, as containers/storage's
//! `mountpoints.json`: the counts live in a directory the caller gives (an
//! exec root on tmpfs, so a reboot clears them), under a flock.
//!
//! Kill-safe: the count is recorded (as pending) before the mount and
//! completed after it. A count whose mount has vanished is corrected; a
//! pending entry whose mount was made is adopted by the next mount or
//! undone by the next unmount.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use pluginctl_rootfs::overlay::MountError;
use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::{Error, Result};

/// One mounted chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mounted {
    /// The top layer (ChainID).
    pub layer: String,
    /// How many holders; 0 while a mount is being made.
    pub count: u32,
}

/// The counts file and its lock, in the caller's directory.
struct Counts {
    path: PathBuf,
    _lock: File,
    table: BTreeMap<PathBuf, Mounted>,
}

impl Counts {
    fn open(dir: &Path) -> Result<Counts> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock_path = dir.join("layer-mounts.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let path = dir.join("layer-mounts.json");
        let table = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Ok(Counts {
            path,
            _lock: lock,
            table,
        })
    }

    fn save(&self) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.table).expect("counts serialise");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| Error::io(&self.path, e))
    }
}

/// Whether something is mounted at `target`: its device differs from its
/// parent's (an overlay always has its own).
fn is_mounted(target: &Path) -> bool {
    let parent = target.parent().unwrap_or(Path::new("/"));
    match (fs::metadata(target), fs::metadata(parent)) {
        (Ok(t), Ok(p)) => t.dev() != p.dev(),
        _ => false,
    }
}

impl Store {
    /// Mounts layer `what`'s chain read-only at `target` (created if
    /// missing), or counts one more holder when it is mounted there
    /// already. Returns the count. The counts live in `counts_dir`.
    pub fn mount(&self, what: &str, target: &Path, counts_dir: &Path) -> Result<u32> {
        let layer = self.get(what)?;
        let mut counts = Counts::open(counts_dir)?;
        let key = target.to_owned();
        let mounted = is_mounted(target);
        if let Some(m) = counts.table.get_mut(&key) {
            if m.layer != layer.id.to_string() {
                if mounted {
                    return Err(Error::InUse(format!(
                        "{} holds layer {}, not {}",
                        target.display(),
                        m.layer,
                        layer.id
                    )));
                }
                counts.table.remove(&key);
            } else if mounted {
                m.count += 1;
                let n = m.count;
                counts.save()?;
                return Ok(n);
            } else {
                // Recorded, but the mount vanished (or was never made).
                m.count = 0;
            }
        } else if mounted {
            return Err(Error::InUse(format!(
                "{} is mounted, and not by this layer store",
                target.display()
            )));
        }
        let chain = self.chain(&layer)?;
        counts.table.insert(
            key.clone(),
            Mounted {
                layer: layer.id.to_string(),
                count: 0,
            },
        );
        counts.save()?;
        fs::create_dir_all(target).map_err(|e| Error::io(target, e))?;
        // A read-only overlay needs two lower directories: an empty one
        // stands under a single layer.
        let empty = self.root().join(crate::store::EMPTY);
        fs::create_dir_all(&empty).map_err(|e| Error::io(&empty, e))?;
        let mut lowers = chain;
        lowers.push(empty);
        if let Err(e) = pluginctl_rootfs::overlay::mount(&lowers, None, target) {
            counts.table.remove(&key);
            counts.save()?;
            return Err(match e {
                e @ MountError::TooDeep(_) => Error::Invalid(format!("layer {}: {e}", layer.id)),
                MountError::Io(e) => Error::io(target, e),
            });
        }
        counts.table.get_mut(&key).expect("inserted above").count = 1;
        counts.save()?;
        Ok(1)
    }

    /// Drops one holder of the chain mounted at `target`, unmounting it
    /// when none is left (or at once with `force`). Returns the count left.
    /// A target mounted without a count (a mount whose recording was
    /// interrupted) is unmounted.
    pub fn unmount(&self, target: &Path, counts_dir: &Path, force: bool) -> Result<u32> {
        let mut counts = Counts::open(counts_dir)?;
        let key = target.to_owned();
        let left = match counts.table.get_mut(&key) {
            Some(m) if is_mounted(target) => {
                m.count = if force { 0 } else { m.count.saturating_sub(1) };
                m.count
            }
            Some(_) => 0,
            None if is_mounted(target) => 0,
            None => {
                return Err(Error::NotFound(format!(
                    "a layer mount at {}",
                    target.display()
                )));
            }
        };
        if left == 0 {
            if is_mounted(target) {
                rustix::mount::unmount(target, rustix::mount::UnmountFlags::empty())
                    .map_err(|e| Error::io(target, e.into()))?;
            }
            counts.table.remove(&key);
        }
        counts.save()?;
        Ok(left)
    }

    /// The chains mounted, by target, with their counts (corrected: a
    /// mount that vanished is not listed).
    pub fn mounted(&self, counts_dir: &Path) -> Result<Vec<(PathBuf, Mounted)>> {
        let counts = Counts::open(counts_dir)?;
        Ok(counts
            .table
            .iter()
            .filter(|(t, _)| is_mounted(t))
            .map(|(t, m)| (t.clone(), m.clone()))
            .collect())
    }

    /// The diff directories of `layer`'s chain, top first.
    fn chain(&self, layer: &crate::Layer) -> Result<Vec<PathBuf>> {
        let all = self.layers()?;
        let mut out = vec![self.diff_dir(&layer.id)];
        let mut cur = layer.parent.as_ref();
        while let Some(p) = cur {
            let l = all
                .iter()
                .find(|l| &l.id == p && !l.incomplete)
                .ok_or_else(|| Error::NotFound(format!("{p} (a parent of {})", layer.id)))?;
            out.push(self.diff_dir(&l.id));
            cur = l.parent.as_ref();
        }
        Ok(out)
    }
}
