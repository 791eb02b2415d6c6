//! Small file-system helpers: durable renames and timestamps.

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};

/// Makes a rename or unlink in `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("syncing directory", dir)
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).ctx("creating", &tmp)?;
        std::io::Write::write_all(&mut f, bytes).ctx("writing", &tmp)?;
        f.sync_all().ctx("syncing", &tmp)?;
    }
    fs::rename(&tmp, path).ctx("renaming", &tmp)
}

/// Takes the store's gc lock: shared for publishing a blob, exclusive for
/// gc, so that gc never sweeps a blob published while it runs.
pub(crate) fn gc_lock(store: &Path, exclusive: bool) -> Result<File> {
    let path = store.join("gc.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ctx("opening", &path)?;
    if exclusive { f.lock() } else { f.lock_shared() }.ctx("locking", &path)?;
    Ok(f)
}

/// Whether `path` still names the file `file` has open: false when it is
/// gone or another file took its place (a writer that committed and removed
/// its ingest, or a new one that started afresh).
pub(crate) fn still_at(file: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let ours = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.ino() == ours.ino() && m.dev() == ours.dev()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Seconds since the epoch, as stored in `updatedat`.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}
