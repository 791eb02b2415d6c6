//! The plugin store: one record per plugin under `plugins/<id>/`, one
//! metadata lock for every process sharing the root, atomic record writes,
//! and recovery of what a crash left half done.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use pluginctl_oci::{Descriptor, Digest, PluginConfig, PluginPrivilege, PluginSettings, Reference};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The latest format of `plugin.json` this release writes and reads: 2
/// for a plugin on the layer store (a release before it would look for a
/// flattened rootfs that is not there, so it must not read one), 1 for a
/// flattened rootfs (what every release reads).
pub const RECORD_FORMAT: u32 = 2;

fn first_format() -> u32 {
    1
}

/// A plugin record that cannot be read: the plugin's directory name (its
/// ID), the file, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The directory's name under `plugins/`.
    pub id: String,
    /// The record file.
    pub path: PathBuf,
    /// Why it cannot be read, on one line.
    pub error: String,
}

/// What `plugins/<id>/plugin.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The record's format ([`RECORD_FORMAT`]); records written before it
    /// was kept are format 1. A later format is not read (it is listed as
    /// unreadable), never half-understood.
    #[serde(default = "first_format")]
    pub format: u32,
    /// 64 hex characters.
    pub id: String,
    /// The normalised name with its tag (`docker.io/library/sample:latest`).
    pub name: String,
    /// Where it was installed from (empty for a created plugin).
    #[serde(default)]
    pub reference: String,
    /// The manifest (media type, digest, size).
    pub manifest: Descriptor,
    /// The config blob.
    pub config_digest: Digest,
    /// Every layer, lowest first: kept so that gc never deletes them.
    pub layers: Vec<Descriptor>,
    /// The top of its layer chain in the layer store (a ChainID): its
    /// rootfs is that chain, mounted. `None`: a flattened rootfs under its
    /// directory (the flat driver, and plugins from before the layer
    /// store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Digest>,
    /// The parsed config (the blob stays the source of truth).
    pub config: PluginConfig,
    /// The user's settings: env, args, mount sources, device paths.
    pub settings: PluginSettings,
    /// Every privilege the user granted this plugin (at install, upgrade
    /// and set), so that going back to an earlier setting asks nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted: Vec<PluginPrivilege>,
    /// Whether it should run.
    pub enabled: bool,
    /// Why its supervisor gave up on it (it kept dying); cleared by the
    /// next enable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Whether its socket is published for legacy plugin discovery
    /// (`enable --publish`); kept for `restore`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub publish: bool,
    /// Where it was last started: what disable, rm and restore use, so
    /// that they find it whatever options they are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunPlace>,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Set while an operation is in flight; a record left so by a crash is
    /// rolled back by the next command.
    #[serde(default)]
    pub incomplete: bool,
}

/// Where a plugin runs: the exec root, the OCI runtime, the publish dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPlace {
    /// `<exec-root>`.
    pub exec_root: PathBuf,
    /// The OCI runtime.
    pub runtime: String,
    /// Where a published socket goes.
    pub publish_dir: PathBuf,
    /// Where a published volume driver is registered for podman (a
    /// `containers.conf` drop-in directory); none for older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub podman_conf_dir: Option<PathBuf>,
}

impl Record {
    /// The name as Docker shows it: `sample:latest`, `reg:5000/a/b:1.0`.
    pub fn familiar_name(&self) -> String {
        Reference::parse(&self.name).map_or_else(|_| self.name.clone(), |r| r.familiar())
    }

    /// What the user granted: the recorded grants and what the current
    /// config and settings ask for (granted when they were set; a record
    /// written before grants were kept has only these).
    pub fn all_granted(&self) -> Vec<PluginPrivilege> {
        let now = pluginctl_privileges::compute(&self.config, Some(&self.settings));
        let mut all = self.granted.clone();
        all.extend(pluginctl_privileges::diff(&now, &self.granted));
        all
    }

    /// Every blob the record keeps alive.
    pub fn roots(&self) -> Vec<Digest> {
        let mut v = vec![self.manifest.digest.clone(), self.config_digest.clone()];
        v.extend(self.layers.iter().map(|l| l.digest.clone()));
        v
    }
}

/// The on-disk layout under a root (see DESIGN.md).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// An exclusive hold on the metadata lock; released on drop.
pub struct MetaLock {
    _file: File,
}

impl Layout {
    /// The layout at `root`, created when missing.
    pub fn open(root: &Path) -> Result<Layout> {
        for d in ["plugins", "tmp", "content"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        Ok(Layout {
            root: root.to_owned(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `plugins/<id>`.
    pub fn plugin_dir(&self, id: &str) -> PathBuf {
        self.root.join("plugins").join(id)
    }

    /// `tmp/`, for staging.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Takes the metadata lock (waits for other processes).
    pub fn lock(&self) -> Result<MetaLock> {
        let path = self.root.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(MetaLock { _file: file })
    }

    /// Marks a long operation in flight for as long as the guard lives (a
    /// shared lock on `<root>/ops.lock`): recovery never runs while any
    /// operation of any process is in flight.
    pub fn operation(&self) -> Result<OpsGuard> {
        let file = self.ops_file()?;
        file.lock_shared()
            .map_err(|e| Error::io(&self.root.join("ops.lock"), e))?;
        Ok(OpsGuard { _file: file })
    }

    /// The exclusive hold recovery needs, or `None` when an operation is in
    /// flight somewhere (recovery then waits for a later command).
    pub fn quiescent(&self) -> Result<Option<OpsGuard>> {
        let file = self.ops_file()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(OpsGuard { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&self.root.join("ops.lock"), e)),
        }
    }

    fn ops_file(&self) -> Result<File> {
        let path = self.root.join("ops.lock");
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))
    }

    /// Every record, incomplete ones included. A record that does not parse
    /// is an error naming its file.
    pub fn records(&self, lock: &MetaLock) -> Result<Vec<Record>> {
        Ok(self.scan(lock)?.0)
    }

    /// Every record that reads, by name, and every one that does not: one
    /// bad `plugin.json` must not hide the others.
    pub fn scan(&self, _lock: &MetaLock) -> Result<(Vec<Record>, Vec<Unreadable>)> {
        let dir = self.root.join("plugins");
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let path = e.path().join("plugin.json");
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                // A directory without a record yet: a create that died
                // before writing one; recovery removes it.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(Error::io(&path, err)),
            };
            let unreadable = |error: String| Unreadable {
                id: e.file_name().to_string_lossy().into_owned(),
                path: path.clone(),
                error,
            };
            match serde_json::from_slice::<Record>(&bytes) {
                Ok(r) if r.format > RECORD_FORMAT => bad.push(unreadable(format!(
                    "record format {} is from a later pluginctl (this one reads formats up to {RECORD_FORMAT})",
                    r.format
                ))),
                Ok(r) => out.push(r),
                Err(err) => bad.push(unreadable(format!("not a plugin record: {err}"))),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        bad.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((out, bad))
    }

    /// Writes a record atomically (temp file, fsync, rename, directory fsync).
    pub fn save(&self, _lock: &MetaLock, record: &Record) -> Result<()> {
        let dir = self.plugin_dir(&record.id);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("plugin.json");
        let tmp = dir.join("plugin.json.tmp");
        let bytes = record_bytes(record);
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&dir, e))
    }

    /// Finds a record by name (with or without tag, familiar or full), by
    /// full ID, or by a unique ID prefix. Incomplete records are invisible.
    pub fn find(&self, lock: &MetaLock, what: &str) -> Result<Record> {
        let all: Vec<Record> = self
            .records(lock)?
            .into_iter()
            .filter(|r| !r.incomplete)
            .collect();
        if let Ok(r) = Reference::parse(what) {
            let full = r.to_string();
            if let Some(found) = all.iter().find(|x| x.name == full) {
                return Ok(found.clone());
            }
        }
        if let Some(found) = all.iter().find(|x| x.id == what) {
            return Ok(found.clone());
        }
        if !what.is_empty() && what.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<&Record> = all.iter().filter(|x| x.id.starts_with(what)).collect();
            match hits.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                many => {
                    return Err(Error::Ambiguous {
                        what: what.to_owned(),
                        candidates: many
                            .iter()
                            .map(|r| format!("{} ({})", &r.id[..12], r.familiar_name()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        Err(Error::NotFound(what.to_owned()))
    }

    /// Rolls back what crashed operations left: incomplete records (their
    /// whole directory), plugin directories without a record, everything
    /// under `tmp/`. Only with the exclusive hold of [`Layout::quiescent`]:
    /// no operation of any process is in flight, so whatever is half done
    /// belongs to a dead one.
    pub fn recover(&self, lock: &MetaLock, _quiet: &OpsGuard) -> Result<Vec<String>> {
        let mut done = Vec::new();
        let plugins = self.root.join("plugins");
        for e in fs::read_dir(&plugins).map_err(|e| Error::io(&plugins, e))? {
            let e = e.map_err(|e| Error::io(&plugins, e))?;
            let dir = e.path();
            let id = e.file_name().to_string_lossy().into_owned();
            let record = dir.join("plugin.json");
            let incomplete = match fs::read(&record) {
                Ok(b) => match serde_json::from_slice::<Record>(&b) {
                    Ok(r) if r.format <= RECORD_FORMAT => r.incomplete,
                    // Unreadable, or a later pluginctl's: not ours to
                    // finish or roll back; `ls` names it.
                    _ => continue,
                },
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => true,
                Err(err) => return Err(Error::io(&record, err)),
            };
            if !incomplete {
                Layout::finish_upgrades(&dir)?;
                Layout::drop_flattened(&dir)?;
                continue;
            }
            self.discard(lock, &id)?;
            done.push(id);
        }
        let tmp = self.tmp();
        for e in fs::read_dir(&tmp).map_err(|e| Error::io(&tmp, e))? {
            let e = e.map_err(|e| Error::io(&tmp, e))?;
            remove_tree(&e.path())?;
        }
        Ok(done)
    }

    /// Switches a plugin to an upgraded record whose rootfs is extracted in
    /// `rootfs.new` (or whose layers are in the layer store): (1)
    /// `plugin.json.next` written, (2) `rootfs` (if any) renamed to
    /// `rootfs.old`, (3) `rootfs.new` (if any) to `rootfs`, (4) the next record
    /// renamed over `plugin.json`, (5) `rootfs.old` deleted. A switch a
    /// crash interrupted is completed or undone by `finish_upgrades`.
    pub fn commit_upgrade(&self, _lock: &MetaLock, next: &Record) -> Result<()> {
        let dir = self.plugin_dir(&next.id);
        let next_path = dir.join("plugin.json.next");
        let bytes = record_bytes(next);
        let mut f = File::create(&next_path).map_err(|e| Error::io(&next_path, e))?;
        f.write_all(&bytes).map_err(|e| Error::io(&next_path, e))?;
        f.sync_all().map_err(|e| Error::io(&next_path, e))?;
        let RootfsPaths {
            current: cur,
            old,
            new,
            ..
        } = rootfs_paths(&dir);
        remove_tree(&old)?;
        // A plugin on the layer store has no flattened rootfs to swap: its
        // layers are complete before the next record names them.
        if cur.exists() {
            fs::rename(&cur, &old).map_err(|e| Error::io(&cur, e))?;
        }
        if next.chain.is_none() {
            fs::rename(&new, &cur).map_err(|e| Error::io(&new, e))?;
        }
        fs::rename(&next_path, dir.join("plugin.json")).map_err(|e| Error::io(&next_path, e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&dir, e))?;
        remove_tree(&old)
    }

    /// Finishes or rolls back upgrades a crash interrupted, by what is on
    /// disk: a next record with `rootfs.new` still there was not switched
    /// (undo); with `rootfs.new` gone, the rootfs was (finish).
    fn finish_upgrades(dir: &Path) -> Result<()> {
        let next = dir.join("plugin.json.next");
        let RootfsPaths {
            current: cur,
            old,
            new,
            ..
        } = rootfs_paths(dir);
        if next.exists() {
            if new.exists() {
                if !cur.exists() && old.exists() {
                    fs::rename(&old, &cur).map_err(|e| Error::io(&old, e))?;
                }
                remove_tree(&new)?;
                fs::remove_file(&next).map_err(|e| Error::io(&next, e))?;
            } else {
                fs::rename(&next, dir.join("plugin.json")).map_err(|e| Error::io(&next, e))?;
            }
        } else {
            remove_tree(&new)?;
            if !cur.exists() && old.exists() {
                fs::rename(&old, &cur).map_err(|e| Error::io(&old, e))?;
            }
        }
        remove_tree(&old)?;
        remove_tree(&rootfs_paths(dir).staging)
    }

    /// A plugin moved onto the layer store by an upgrade keeps no
    /// flattened rootfs: one a crash left after the switch is deleted.
    fn drop_flattened(dir: &Path) -> Result<()> {
        let path = dir.join("plugin.json");
        let Ok(bytes) = fs::read(&path) else {
            return Ok(());
        };
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) if r.chain.is_some() => remove_tree(&rootfs_paths(dir).current),
            _ => Ok(()),
        }
    }

    /// Removes a plugin directory: renamed into `tmp/` first (one atomic
    /// step: the record is gone), then deleted on this file system only.
    pub fn discard(&self, _lock: &MetaLock, id: &str) -> Result<()> {
        let dir = self.plugin_dir(id);
        unmount_under(&dir)?;
        let grave = self.tmp().join(format!("{id}-removing"));
        if grave.exists() {
            remove_tree(&grave)?;
        }
        match fs::rename(&dir, &grave) {
            Ok(()) => {}
            // Nothing was written yet: nothing to discard.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&dir, e)),
        }
        remove_tree(&grave)
    }
}

/// A record as `plugin.json` holds it, with the format its content needs:
/// 1 for a flattened rootfs (older releases read it), 2 for a layer chain.
fn record_bytes(record: &Record) -> Vec<u8> {
    let mut r = record.clone();
    r.format = if r.chain.is_some() { 2 } else { 1 };
    let mut bytes = serde_json::to_vec_pretty(&r).expect("records serialise");
    bytes.push(b'\n');
    bytes
}

/// Unmounts everything mounted at or under `dir` (deepest first).
pub fn unmount_under(dir: &Path) -> Result<()> {
    pluginctl_runtime::mounts::unmount_all(dir).map_err(Error::Fs)
}

/// Deletes a tree without crossing into another file system (a mount left
/// under a plugin directory is refused, never emptied).
pub fn remove_tree(path: &Path) -> Result<()> {
    pluginctl_runtime::mounts::remove_tree(path).map_err(Error::Fs)
}

/// A plugin's rootfs and its transitional siblings, named in one place:
/// `rootfs` (the stored tree), `rootfs.staging` (being extracted),
/// `rootfs.new` and `rootfs.old` (an upgrade's switch).
pub(crate) struct RootfsPaths {
    pub(crate) current: PathBuf,
    pub(crate) staging: PathBuf,
    pub(crate) new: PathBuf,
    pub(crate) old: PathBuf,
}

/// The rootfs paths of the plugin directory `dir`.
pub(crate) fn rootfs_paths(dir: &Path) -> RootfsPaths {
    RootfsPaths {
        current: dir.join("rootfs"),
        staging: dir.join("rootfs.staging"),
        new: dir.join("rootfs.new"),
        old: dir.join("rootfs.old"),
    }
}

/// A shared or exclusive hold on `<root>/ops.lock`; released on drop
/// (and by the kernel when the process dies).
pub struct OpsGuard {
    _file: File,
}

/// A random 64-hex plugin ID.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    let mut f = File::open("/dev/urandom").map_err(|e| Error::io(Path::new("/dev/urandom"), e))?;
    std::io::Read::read_exact(&mut f, &mut b)
        .map_err(|e| Error::io(Path::new("/dev/urandom"), e))?;
    Ok(b.iter().fold(String::with_capacity(64), |mut s, x| {
        use std::fmt::Write as _;
        let _ = write!(s, "{x:02x}");
        s
    }))
}

/// Now, RFC 3339 UTC with nanoseconds (as Docker writes `Created`).
pub fn now_rfc3339() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (hour, min, sec) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil from days (Howard Hinnant).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{min:02}:{sec:02}.{:09}Z",
        since.subsec_nanos()
    )
}
