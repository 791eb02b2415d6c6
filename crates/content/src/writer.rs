//! Ingest: a resumable, verified writer for one blob.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use pluginctl_oci::{Algorithm, Digest, Digester};

use crate::error::{Error, IoContext, Result};
use crate::fsutil;

/// Bytes handed to the hashing thread at a time.
pub(crate) const CHUNK: usize = 1 << 20;
/// Chunks in flight between the writing and the hashing thread. Together
/// with the one being filled this bounds the writer's memory to 4 MiB.
const IN_FLIGHT: usize = 3;

/// Hashes on a second thread so that writing and hashing overlap.
struct HashThread {
    to_hash: SyncSender<Vec<u8>>,
    recycled: Receiver<Vec<u8>>,
    handle: JoinHandle<Digester>,
    buffers: usize,
}

impl HashThread {
    fn spawn(mut digester: Digester) -> HashThread {
        let (to_hash, inbox) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, recycled) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let handle = std::thread::Builder::new()
            .name("pluginctl-hash".to_owned())
            .spawn(move || {
                for buf in inbox {
                    digester.update(&buf);
                    // The writer may be gone; then the buffer is dropped.
                    let _ = give_back.try_send(buf);
                }
                digester
            })
            .expect("spawning the hashing thread");
        HashThread {
            to_hash,
            recycled,
            handle,
            buffers: 0,
        }
    }

    /// Hands `buf` over and returns an empty buffer to fill next.
    fn hash(&mut self, buf: Vec<u8>) -> Vec<u8> {
        // A send fails only if the thread died, which `finish` reports.
        let _ = self.to_hash.send(buf);
        if let Ok(mut b) = self.recycled.try_recv() {
            b.clear();
            return b;
        }
        if self.buffers < IN_FLIGHT {
            self.buffers += 1;
            return Vec::with_capacity(CHUNK);
        }
        match self.recycled.recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Vec::with_capacity(CHUNK),
        }
    }

    fn finish(self) -> Digester {
        drop(self.to_hash);
        self.handle.join().expect("the hashing thread panicked")
    }
}

enum Hasher {
    Inline(Digester),
    Threaded(HashThread),
    /// Only while switching between the two.
    Switching,
}

/// A writer for one ingest reference. Writes go to `ingest/<h>/data`; the
/// blob appears in the store only on [`Writer::commit`].
///
/// Dropping a writer without committing flushes what it buffered and keeps
/// the ingest, so the next [`Store::writer`](crate::Store::writer) on the
/// same reference resumes from [`Writer::offset`].
pub struct Writer {
    reference: String,
    dir: PathBuf,
    blobs: PathBuf,
    data_path: PathBuf,
    data: File,
    /// Held for the writer's life: the `flock` that makes it the only one.
    _lock: File,
    /// Bytes accepted, buffered ones included.
    offset: u64,
    /// Bytes on disk. Writes go to this position (`pwrite`), so a write that
    /// failed half-way is overwritten by the retry, never appended to.
    flushed: u64,
    /// The store directory, for its gc lock.
    store: PathBuf,
    total: Option<u64>,
    buf: Vec<u8>,
    hasher: Hasher,
    last_touch: Instant,
    done: bool,
}

impl Writer {
    /// Opens the data file of a locked ingest directory and hashes what an
    /// earlier writer left there.
    pub(crate) fn resume(
        reference: String,
        dir: PathBuf,
        store: PathBuf,
        lock: File,
    ) -> Result<Writer> {
        let data_path = dir.join("data");
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&data_path)
        };
        let mut data = match open() {
            // A commit killed between chmod 0444 and rename leaves a
            // read-only data file; it is still ours to finish.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                fs::set_permissions(&data_path, fs::Permissions::from_mode(0o600))
                    .ctx("opening", &data_path)?;
                open()
            }
            other => other,
        }
        .ctx("opening", &data_path)?;
        let blobs = store.join("blobs");
        let total = read_total(&dir)?;
        let writer_handle = data.try_clone().ctx("opening", &data_path)?;
        let mut w = Writer {
            reference,
            dir,
            blobs,
            data_path,
            data: writer_handle,
            _lock: lock,
            offset: 0,
            flushed: 0,
            store,
            total,
            buf: Vec::with_capacity(CHUNK),
            hasher: Hasher::Inline(Digester::new(Algorithm::Sha256)),
            last_touch: Instant::now(),
            done: false,
        };
        data.seek(SeekFrom::Start(0)).ctx("reading", &w.data_path)?;
        w.rehash_from(&mut data)?;
        w.touch()?;
        Ok(w)
    }

    /// Feeds the existing data file through the hasher; leaves the file
    /// position at its end.
    fn rehash_from(&mut self, data: &mut File) -> Result<()> {
        let path = self.data_path.clone();
        loop {
            let mut chunk = std::mem::take(&mut self.buf);
            chunk.resize(CHUNK, 0);
            let n = read_full(data, &mut chunk).ctx("reading", &path)?;
            chunk.truncate(n);
            self.offset += n as u64;
            self.flushed += n as u64;
            self.buf = chunk;
            if n < CHUNK {
                break;
            }
            self.hash_full_buffer();
        }
        // What is left in `buf` is already on disk: hash it, do not write it.
        let rest = std::mem::take(&mut self.buf);
        self.feed_hasher(&rest);
        self.buf = rest;
        self.buf.clear();
        self.data.seek(SeekFrom::End(0)).ctx("seeking", &path)?;
        Ok(())
    }

    /// The ingest reference.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// How many bytes this ingest holds: where a resumed transfer starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The expected total size, if one was set.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Records the expected total size; writing past it fails. Setting a
    /// different total on a resumed ingest is an error.
    pub fn set_total(&mut self, total: u64) -> Result<()> {
        match self.total {
            Some(stored) if stored != total => Err(Error::TotalMismatch {
                reference: self.reference.clone(),
                stored,
                requested: total,
            }),
            Some(_) => Ok(()),
            None => {
                fsutil::write_atomic(&self.dir.join("total"), total.to_string().as_bytes())?;
                self.total = Some(total);
                Ok(())
            }
        }
    }

    /// A reader over the bytes this ingest holds so far, for a caller that
    /// must hash them itself before resuming a verified transfer (a
    /// registry download continued with `Range`).
    pub fn prefix(&mut self) -> Result<impl Read + use<>> {
        self.flush_buffer()?;
        let f = File::open(&self.data_path).ctx("opening", &self.data_path)?;
        Ok(f.take(self.offset))
    }

    /// Throws away everything past `size` (for a caller whose source cannot
    /// resume where the ingest stands) and re-hashes what remains.
    pub fn truncate(&mut self, size: u64) -> Result<()> {
        self.flush_buffer()?;
        let size = size.min(self.offset);
        // Nothing changes if this fails.
        self.data.set_len(size).ctx("truncating", &self.data_path)?;
        // Stops the hashing thread; its state is of no use after truncation.
        let _ = self.take_digester();
        self.hasher = Hasher::Inline(Digester::new(Algorithm::Sha256));
        self.offset = 0;
        self.flushed = 0;
        let mut data = self.data.try_clone().ctx("opening", &self.data_path)?;
        data.seek(SeekFrom::Start(0))
            .ctx("seeking", &self.data_path)?;
        self.rehash_from(&mut data)
    }

    /// Copies everything from `reader` into the ingest without an
    /// intermediate buffer; returns the number of bytes copied.
    pub fn ingest_from(&mut self, reader: &mut dyn Read) -> Result<u64> {
        let mut copied = 0u64;
        loop {
            if self.buf.len() == CHUNK {
                // Left full by a failed flush: a read into no room would
                // look like the end of the input.
                self.flush_buffer()?;
            }
            let start = self.buf.len();
            self.buf.resize(CHUNK, 0);
            let n = match reader.read(&mut self.buf[start..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.buf.truncate(start);
                    continue;
                }
                Err(source) => {
                    self.buf.truncate(start);
                    return Err(Error::Source {
                        reference: self.reference.clone(),
                        source,
                    });
                }
            };
            self.buf.truncate(start + n);
            if n == 0 {
                return Ok(copied);
            }
            if let Err(e) = self.check_total(n as u64) {
                self.buf.truncate(start);
                return Err(e);
            }
            self.offset += n as u64;
            copied += n as u64;
            if self.buf.len() == CHUNK {
                self.flush_buffer()?;
            }
        }
    }

    fn check_total(&self, more: u64) -> Result<()> {
        match self.total {
            Some(total) if self.offset + more > total => Err(Error::ExceedsTotal {
                reference: self.reference.clone(),
                total,
            }),
            _ => Ok(()),
        }
    }

    /// Writes the buffered bytes to the data file and hashes them.
    fn flush_buffer(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.data
            .write_all_at(&self.buf, self.flushed)
            .ctx("writing", &self.data_path)?;
        self.flushed += self.buf.len() as u64;
        self.hash_full_buffer();
        if self.last_touch.elapsed().as_secs() >= 1 {
            // Only gc's idea of age depends on it: never fail a write for it.
            if let Err(e) = self.touch() {
                tracing::debug!(error = %e, "cannot update updatedat");
            }
        }
        Ok(())
    }

    /// Hashes `buf` (already on disk) and leaves an empty buffer in its place.
    fn hash_full_buffer(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.len() < CHUNK {
            self.feed_hasher(&buf);
            self.buf = buf;
            self.buf.clear();
            return;
        }
        if let Hasher::Inline(_) = self.hasher {
            let Hasher::Inline(d) = std::mem::replace(&mut self.hasher, Hasher::Switching) else {
                unreachable!()
            };
            self.hasher = Hasher::Threaded(HashThread::spawn(d));
        }
        let Hasher::Threaded(t) = &mut self.hasher else {
            unreachable!("the hasher is threaded by now")
        };
        self.buf = t.hash(buf);
    }

    fn feed_hasher(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match &mut self.hasher {
            Hasher::Inline(d) => d.update(bytes),
            Hasher::Threaded(t) => {
                self.buf = t.hash(bytes.to_vec());
                self.buf.clear();
            }
            Hasher::Switching => unreachable!("the hasher is never left switching"),
        }
    }

    fn take_digester(&mut self) -> Digester {
        match std::mem::replace(&mut self.hasher, Hasher::Switching) {
            Hasher::Inline(d) => d,
            Hasher::Threaded(t) => t.finish(),
            Hasher::Switching => unreachable!("the hasher is never left switching"),
        }
    }

    fn touch(&mut self) -> Result<()> {
        self.last_touch = Instant::now();
        let path = self.dir.join("updatedat");
        fs::write(&path, fsutil::unix_now().to_string()).ctx("writing", &path)
    }

    /// Verifies and publishes the blob, returning its digest.
    ///
    /// The data is fsynced, its size compared with `expected_size` and its
    /// digest with `expected` (either may be `None` when the caller built
    /// the content itself), then it is made read-only and renamed into
    /// `blobs/`, and the directory is fsynced. A blob that already exists is
    /// not an error: the store keeps one copy.
    ///
    /// On a size shortfall the ingest is kept for a resume; on an overrun or a
    /// digest mismatch it is deleted, since its bytes are known to be wrong.
    /// In every failure the blob is not visible.
    pub fn commit(
        mut self,
        expected_size: Option<u64>,
        expected: Option<&Digest>,
    ) -> Result<Digest> {
        self.flush_buffer()?;
        let size = self.offset;
        if let Some(want) = expected_size.or(self.total)
            && size != want
        {
            let err = Error::SizeMismatch {
                reference: self.reference.clone(),
                expected: want,
                found: size,
            };
            if size > want {
                self.discard()?;
            }
            return Err(err);
        }
        let mut digest = self.take_digester().finish();
        if let Some(want) = expected {
            if want.algorithm() != digest.algorithm() {
                digest = self.hash_file_with(want.algorithm())?;
            }
            if &digest != want {
                self.discard()?;
                return Err(Error::DigestMismatch {
                    reference: self.reference.clone(),
                    expected: want.clone(),
                    found: digest,
                });
            }
        }
        self.data.sync_all().ctx("syncing", &self.data_path)?;
        let on_disk = self.data.metadata().ctx("inspecting", &self.data_path)?;
        if on_disk.len() != size {
            self.discard()?;
            return Err(Error::Inconsistent {
                reference: self.reference.clone(),
                on_disk: on_disk.len(),
                written: size,
            });
        }
        // Publishing and gc exclude each other, so a blob committed while gc
        // runs is never swept by it.
        let _gc = fsutil::gc_lock(&self.store, false)?;
        if !matches!(fsutil::still_at(&self.data, &self.data_path), Ok(true)) {
            self.done = true;
            return Err(Error::IngestLost {
                reference: self.reference.clone(),
            });
        }
        let dir = self.blobs.join(digest.algorithm().as_str());
        let target = dir.join(digest.encoded());
        self.data
            .set_permissions(fs::Permissions::from_mode(0o444))
            .ctx("making read-only", &self.data_path)?;
        // Over an existing copy too: the same verified bytes, and it repairs
        // a copy that fsck found corrupt.
        fs::rename(&self.data_path, &target).ctx("publishing", &target)?;
        fsutil::fsync_dir(&dir)?;
        tracing::debug!(%digest, size, reference = %self.reference, "committed blob");
        // The blob is published: failing to tidy up is not the caller's error.
        if let Err(e) = self.discard() {
            tracing::warn!(error = %e, reference = %self.reference, "cannot remove the finished ingest");
        }
        Ok(digest)
    }

    fn hash_file_with(&self, algorithm: Algorithm) -> Result<Digest> {
        let mut d = Digester::new(algorithm);
        let mut f = File::open(&self.data_path).ctx("opening", &self.data_path)?;
        io::copy(&mut f, &mut d).ctx("reading", &self.data_path)?;
        Ok(d.finish())
    }

    /// Gives this ingest up: removes its directory and what it held.
    pub fn abandon(mut self) -> Result<()> {
        self.discard()
    }

    /// Removes the ingest directory (still holding the lock, so no other
    /// writer sees it half-removed: a waiter re-checks the path after locking).
    fn discard(&mut self) -> Result<()> {
        self.done = true;
        self.buf = Vec::new();
        remove_ingest_dir(&self.dir)
    }
}

static TRASH_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Removes an ingest directory: first renamed aside (atomic), then deleted.
pub(crate) fn remove_ingest_dir(dir: &Path) -> Result<()> {
    let parent = dir.parent().expect("ingest directories have a parent");
    let name = dir.file_name().expect("ingest directories have a name");
    let trash = parent.join(format!(
        ".trash-{}-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TRASH_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    match fs::rename(dir, &trash) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                op: "removing",
                path: dir.to_owned(),
                source,
            });
        }
    }
    match fs::remove_dir_all(&trash) {
        // gc may sweep a trash directory at the same time: gone is gone.
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io {
            op: "removing",
            path: trash,
            source: e,
        }),
        _ => fsutil::fsync_dir(parent),
    }
}

pub(crate) fn read_total(dir: &Path) -> Result<Option<u64>> {
    let path = dir.join("total");
    match fs::read_to_string(&path) {
        Ok(s) => s.trim().parse().map(Some).map_err(|_| Error::Io {
            op: "parsing",
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, format!("{s:?} is not a size")),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            op: "reading",
            path,
            source,
        }),
    }
}

/// Reads until `buf` is full or the end of the file.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.check_total(bytes.len() as u64)
            .map_err(io::Error::other)?;
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = CHUNK - self.buf.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buf.extend_from_slice(now);
            self.offset += now.len() as u64;
            rest = later;
            if self.buf.len() == CHUNK {
                self.flush_buffer().map_err(io::Error::other)?;
            }
        }
        Ok(bytes.len())
    }

    /// Writes buffered bytes to the data file, so that a crash after this
    /// point resumes past them. It does not fsync; commit does.
    fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer().map_err(io::Error::other)
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("reference", &self.reference)
            .field("offset", &self.offset)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done {
            // Keep what was written for a resume; errors cannot be reported
            // from drop, and a short data file only means resuming earlier.
            let _ = self.flush_buffer();
            if let Hasher::Threaded(_) = self.hasher {
                let _ = self.take_digester();
            }
        }
    }
}
