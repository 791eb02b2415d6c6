//! The plugin store: one record per plugin under `plugins/<id>/`, one
//! metadata lock for every process sharing the root, atomic record writes,
//! and recovery of what a crash left half done.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use pluginctl_oci::{Descriptor, Digest, PluginConfig, PluginSettings, Reference};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What `plugins/<id>/plugin.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
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
    /// The parsed config (the blob stays the source of truth).
    pub config: PluginConfig,
    /// The user's settings: env, args, mount sources, device paths.
    pub settings: PluginSettings,
    /// Whether it should run.
    pub enabled: bool,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Set while an operation is in flight; a record left so by a crash is
    /// rolled back by the next command.
    #[serde(default)]
    pub incomplete: bool,
}

impl Record {
    /// The name as Docker shows it: `sample:latest`, `reg:5000/a/b:1.0`.
    pub fn familiar_name(&self) -> String {
        Reference::parse(&self.name).map_or_else(|_| self.name.clone(), |r| r.familiar())
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

    /// Every record, incomplete ones included. A record that does not parse
    /// is an error naming its file.
    pub fn records(&self, _lock: &MetaLock) -> Result<Vec<Record>> {
        let dir = self.root.join("plugins");
        let mut out = Vec::new();
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
            let r: Record = serde_json::from_slice(&bytes).map_err(|err| {
                Error::Invalid(format!("{}: not a plugin record: {err}", path.display()))
            })?;
            out.push(r);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Writes a record atomically (temp file, fsync, rename, directory fsync).
    pub fn save(&self, _lock: &MetaLock, record: &Record) -> Result<()> {
        let dir = self.plugin_dir(&record.id);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("plugin.json");
        let tmp = dir.join("plugin.json.tmp");
        let mut bytes = serde_json::to_vec_pretty(record).expect("records serialise");
        bytes.push(b'\n');
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
        if what.len() >= 2 && what.bytes().all(|b| b.is_ascii_hexdigit()) {
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
    /// whole directory), plugin directories without a record, stale
    /// staging under `tmp/`. Holding the metadata lock means no operation
    /// is between its steps, except a long one that marks itself with an
    /// operation lock, which is respected.
    pub fn recover(&self, lock: &MetaLock) -> Result<Vec<String>> {
        let mut done = Vec::new();
        let plugins = self.root.join("plugins");
        for e in fs::read_dir(&plugins).map_err(|e| Error::io(&plugins, e))? {
            let e = e.map_err(|e| Error::io(&plugins, e))?;
            let dir = e.path();
            let id = e.file_name().to_string_lossy().into_owned();
            let record = dir.join("plugin.json");
            let incomplete = match fs::read(&record) {
                Ok(b) => serde_json::from_slice::<Record>(&b).is_ok_and(|r| r.incomplete),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => true,
                Err(err) => return Err(Error::io(&record, err)),
            };
            if !incomplete || OpLock::busy(&dir) || OpLock::starting(&dir) {
                continue;
            }
            self.discard(lock, &id)?;
            done.push(id);
        }
        let tmp = self.tmp();
        for e in fs::read_dir(&tmp).map_err(|e| Error::io(&tmp, e))? {
            let e = e.map_err(|e| Error::io(&tmp, e))?;
            let p = e.path();
            if OpLock::busy(&p) || OpLock::starting(&p) {
                continue;
            }
            remove_tree(&p)?;
        }
        Ok(done)
    }

    /// Removes a plugin directory: renamed into `tmp/` first (one atomic
    /// step: the record is gone), then deleted on this file system only.
    pub fn discard(&self, _lock: &MetaLock, id: &str) -> Result<()> {
        let dir = self.plugin_dir(id);
        let grave = self.tmp().join(format!("{id}-removing"));
        if grave.exists() {
            remove_tree(&grave)?;
        }
        fs::rename(&dir, &grave).map_err(|e| Error::io(&dir, e))?;
        remove_tree(&grave)
    }
}

/// Deletes a tree without crossing into another file system (a mount left
/// under a plugin directory is refused, never emptied).
pub fn remove_tree(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if !meta.is_dir() {
        return fs::remove_file(path).map_err(|e| Error::io(path, e));
    }
    let dev = meta.dev();
    // Directories without write permission (from a rootfs) still go.
    make_writable(path);
    walk(path, dev)?;
    fs::remove_dir(path).map_err(|e| Error::io(path, e))
}

/// Deletes what is under `p`, refusing to cross onto another device.
fn walk(p: &Path, dev: u64) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    for e in fs::read_dir(p).map_err(|e| Error::io(p, e))? {
        let e = e.map_err(|e| Error::io(p, e))?;
        let child = e.path();
        let m = fs::symlink_metadata(&child).map_err(|e| Error::io(&child, e))?;
        if m.is_dir() {
            if m.dev() != dev {
                return Err(Error::Invalid(format!(
                    "{} is a mount point; not deleting across it",
                    child.display()
                )));
            }
            walk(&child, dev)?;
            fs::remove_dir(&child).map_err(|e| Error::io(&child, e))?;
        } else {
            fs::remove_file(&child).map_err(|e| Error::io(&child, e))?;
        }
    }
    Ok(())
}

fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(rd) = fs::read_dir(path) else { return };
    if let Ok(m) = fs::symlink_metadata(path)
        && m.is_dir()
    {
        let mut p = m.permissions();
        p.set_mode(p.mode() | 0o700);
        let _ = fs::set_permissions(path, p);
    }
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&e.path());
        }
    }
}

/// A lock a long operation holds on its own directory, so that recovery in
/// another process leaves it alone while it runs (and rolls it back once the
/// process is gone: the kernel drops the lock with it).
pub struct OpLock {
    _file: File,
}

impl OpLock {
    /// Takes the operation lock of `dir` (creating the directory).
    pub fn take(dir: &Path) -> Result<OpLock> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // Locked under a private name, then renamed into place: no other
        // process ever sees an unlocked `.op.lock` of a live operation.
        let private = dir.join(format!(".op.lock.{}", std::process::id()));
        let file = File::create(&private).map_err(|e| Error::io(&private, e))?;
        file.lock().map_err(|e| Error::io(&private, e))?;
        let path = dir.join(".op.lock");
        fs::rename(&private, &path).map_err(|e| Error::io(&path, e))?;
        Ok(OpLock { _file: file })
    }

    /// A directory younger than a minute without an operation lock yet:
    /// an operation between its `mkdir` and its lock. Left alone.
    pub fn starting(dir: &Path) -> bool {
        if dir.join(".op.lock").exists() {
            return false;
        }
        fs::symlink_metadata(dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < std::time::Duration::from_secs(60))
    }

    /// Whether a live process holds the operation lock of `dir`.
    pub fn busy(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join(".op.lock")) else {
            return false;
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }
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
