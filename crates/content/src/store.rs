//! The store: opening, reading, listing, deleting, checking and collecting.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pluginctl_oci::{
    Algorithm, Descriptor, Digest, Digester, Document, MAX_MANIFEST_BYTES, MediaType,
};

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::writer::{self, Writer};

/// A content store rooted at a directory (`<root>/content` in pluginctl).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
}

/// What the store knows of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Its digest (and name).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written.
    pub created: SystemTime,
}

/// The state of an unfinished ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The caller's reference.
    pub reference: String,
    /// Bytes on disk: where a resume starts.
    pub offset: u64,
    /// The expected size, if it was set.
    pub total: Option<u64>,
    /// When the ingest began.
    pub started: SystemTime,
    /// When it was last written.
    pub updated: SystemTime,
}

/// A blob whose bytes no longer match its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    /// The name (expected digest).
    pub digest: Digest,
    /// What the bytes hash to.
    pub found: Digest,
}

/// The result of [`Store::fsck`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Blobs re-hashed.
    pub checked: usize,
    /// Bytes re-hashed.
    pub bytes: u64,
    /// Blobs whose content does not match their digest.
    pub corrupt: Vec<Corrupt>,
    /// Files under `blobs/` whose names are not digests.
    pub stray: Vec<PathBuf>,
}

/// The result of [`Store::gc`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub removed: Vec<Info>,
    /// Ingests deleted (by reference).
    pub removed_ingests: Vec<String>,
    /// Bytes freed, blobs and ingests together.
    pub freed_bytes: u64,
    /// Blobs kept because a root reaches them.
    pub kept: usize,
    /// Roots that are not in the store.
    pub missing_roots: Vec<Digest>,
}

impl Store {
    /// Opens (creating if needed) a store in `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        let blobs = dir.join("blobs");
        let ingest = dir.join("ingest");
        for alg in Algorithm::ALL {
            let d = blobs.join(alg.as_str());
            fs::create_dir_all(&d).ctx("creating", &d)?;
        }
        fs::create_dir_all(&ingest).ctx("creating", &ingest)?;
        Ok(Store {
            dir: dir.to_owned(),
            blobs,
            ingest,
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where the blob of `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs
            .join(digest.algorithm().as_str())
            .join(digest.encoded())
    }

    /// Whether the blob is in the store.
    pub fn contains(&self, digest: &Digest) -> Result<bool> {
        match self.info(digest) {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Size and creation time of a blob.
    pub fn info(&self, digest: &Digest) -> Result<Info> {
        let path = self.blob_path(digest);
        let meta = fs::metadata(&path).map_err(|e| not_found_or(e, digest, "inspecting", &path))?;
        Ok(info_of(digest.clone(), &meta))
    }

    /// Opens a blob for reading (`Read + Seek`).
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| not_found_or(e, digest, "opening", &path))
    }

    /// Reads a whole blob of at most `limit` bytes and verifies it again:
    /// meant for manifests and configs, which are small and trusted most.
    pub fn read_all(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let mut f = self.open_blob(digest)?;
        let path = self.blob_path(digest);
        let size = f.metadata().ctx("inspecting", &path)?.len();
        if size > limit {
            return Err(Error::TooLarge {
                digest: digest.clone(),
                size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        f.read_to_end(&mut bytes).ctx("reading", &path)?;
        let found = Digest::of_bytes_with(digest.algorithm(), &bytes);
        if &found != digest {
            return Err(Error::Corrupt {
                expected: digest.clone(),
                found,
            });
        }
        Ok(bytes)
    }

    /// Every blob in the store, sorted by digest.
    pub fn list(&self) -> Result<Vec<Info>> {
        Ok(self.scan()?.0)
    }

    /// Lists blobs, and files under `blobs/` that are not digests.
    fn scan(&self) -> Result<(Vec<Info>, Vec<PathBuf>)> {
        let mut blobs = Vec::new();
        let mut stray = Vec::new();
        for alg in Algorithm::ALL {
            let dir = self.blobs.join(alg.as_str());
            for entry in fs::read_dir(&dir).ctx("listing", &dir)? {
                let entry = entry.ctx("listing", &dir)?;
                let name = entry.file_name();
                let digest = name
                    .to_str()
                    .and_then(|n| Digest::parse(&format!("{alg}:{n}")).ok());
                let meta = entry.metadata().ctx("inspecting", &entry.path())?;
                match digest {
                    Some(d) if meta.is_file() => blobs.push(info_of(d, &meta)),
                    _ => stray.push(entry.path()),
                }
            }
        }
        blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        stray.sort();
        Ok((blobs, stray))
    }

    /// Deletes a blob. Readers that have it open keep reading it.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| not_found_or(e, digest, "deleting", &path))?;
        fsutil::fsync_dir(path.parent().expect("blob paths have a parent"))
    }

    /// Opens the writer of `reference`, resuming what an earlier writer left.
    /// If another writer holds the reference, fails with [`Error::Busy`].
    pub fn writer(&self, reference: &str) -> Result<Writer> {
        let (dir, lock) = self.lock_ingest(reference, false)?;
        Writer::resume(reference.to_owned(), dir, self.dir.clone(), lock)
    }

    /// Like [`Store::writer`], but waits for another writer to finish.
    pub fn writer_wait(&self, reference: &str) -> Result<Writer> {
        let (dir, lock) = self.lock_ingest(reference, true)?;
        Writer::resume(reference.to_owned(), dir, self.dir.clone(), lock)
    }

    /// Writes a small blob in one go (a manifest, a config), verified
    /// against `expected` when given. Existing content is not rewritten.
    pub fn write_blob(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let own = Digest::of_bytes(bytes);
        if expected.is_none_or(|e| e == &own) {
            // Not while gc runs: it may be about to sweep this very blob.
            let _gc = fsutil::gc_lock(&self.dir, false)?;
            if self.contains(&own)? {
                return Ok(own);
            }
        }
        let mut w = self.writer_wait(&format!("write-blob-{own}"))?;
        w.truncate(0)?;
        w.write_all(bytes).map_err(|source| Error::Io {
            op: "writing",
            path: self.ingest.clone(),
            source,
        })?;
        w.commit(Some(bytes.len() as u64), Some(expected.unwrap_or(&own)))
    }

    /// The state of the ingest of `reference`, if there is one.
    pub fn status(&self, reference: &str) -> Result<Option<Status>> {
        check_reference(reference)?;
        let dir = self.ingest_dir(reference);
        match Store::status_of(&dir)? {
            Some(s) if s.reference != reference => Err(Error::ReferenceCollision {
                path: dir,
                reference: reference.to_owned(),
                found: s.reference,
            }),
            other => Ok(other),
        }
    }

    /// Every unfinished ingest, sorted by reference.
    pub fn ingests(&self) -> Result<Vec<Status>> {
        let mut all = Vec::new();
        for dir in self.ingest_dirs()? {
            if let Some(s) = Store::status_of(&dir)? {
                all.push(s);
            }
        }
        all.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(all)
    }

    /// Deletes the ingest of `reference`; [`Error::Busy`] if a writer has it.
    pub fn abort(&self, reference: &str) -> Result<()> {
        let (dir, _lock) = self.lock_ingest(reference, false)?;
        writer::remove_ingest_dir(&dir)
    }

    /// Re-hashes every blob and reports those that do not match their name.
    pub fn fsck(&self) -> Result<FsckReport> {
        let (blobs, stray) = self.scan()?;
        let mut report = FsckReport {
            stray,
            ..FsckReport::default()
        };
        for info in blobs {
            let path = self.blob_path(&info.digest);
            let mut f = match File::open(&path) {
                Ok(f) => f,
                // Deleted since the scan: nothing to check.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(Error::Io {
                        op: "opening",
                        path,
                        source,
                    });
                }
            };
            let mut d = Digester::new(info.digest.algorithm());
            report.bytes += io::copy(&mut f, &mut d).ctx("reading", &path)?;
            report.checked += 1;
            let found = d.finish();
            if found != info.digest {
                tracing::warn!(digest = %info.digest, %found, "corrupt blob");
                report.corrupt.push(Corrupt {
                    digest: info.digest,
                    found,
                });
            }
        }
        Ok(report)
    }

    /// Deletes every blob that no root reaches, and every idle ingest not
    /// written for `ingest_max_age`.
    ///
    /// Reachability follows manifests and indexes: a root (or any reached
    /// blob) that parses as one keeps its config, layers and manifests. The
    /// caller must hold whatever lock keeps new roots from appearing while
    /// this runs (pluginctl's metadata lock); blobs committed after the scan
    /// began are never deleted.
    pub fn gc(&self, roots: &[Digest], ingest_max_age: Duration) -> Result<GcReport> {
        let _gc = fsutil::gc_lock(&self.dir, true)?;
        let mut report = GcReport::default();
        let (blobs, _) = self.scan()?;
        let present: HashSet<&Digest> = blobs.iter().map(|i| &i.digest).collect();
        let mut reached: BTreeSet<Digest> = BTreeSet::new();
        // Roots come without a media type; children with their descriptor's.
        let mut stack: Vec<(Digest, Option<MediaType>)> =
            roots.iter().map(|d| (d.clone(), None)).collect();
        while let Some((d, media_type)) = stack.pop() {
            if !present.contains(&d) {
                if roots.contains(&d) && !report.missing_roots.contains(&d) {
                    report.missing_roots.push(d);
                }
                continue;
            }
            if !reached.insert(d.clone()) {
                continue;
            }
            for child in self.children(&d, media_type.as_ref())? {
                if !reached.contains(&child.digest) {
                    stack.push((child.digest, Some(child.media_type)));
                }
            }
        }
        for info in blobs {
            if reached.contains(&info.digest) {
                report.kept += 1;
                continue;
            }
            match self.delete(&info.digest) {
                Ok(()) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            tracing::debug!(digest = %info.digest, size = info.size, "gc removed blob");
            report.freed_bytes += info.size;
            report.removed.push(info);
        }
        self.gc_ingests(ingest_max_age, &mut report)?;
        Ok(report)
    }

    /// The descriptors a blob points at, if it is a manifest or an index.
    ///
    /// A blob reached through a descriptor that calls it a manifest or index
    /// must parse as one: otherwise gc stops rather than sweep what it
    /// points at. A root (no media type known) that does not parse as one is
    /// a leaf; so is anything a descriptor calls a layer or a config.
    fn children(&self, digest: &Digest, media_type: Option<&MediaType>) -> Result<Vec<Descriptor>> {
        let must_parse = media_type.is_some_and(|m| m.is_manifest() || m.is_index());
        if media_type.is_some() && !must_parse {
            return Ok(Vec::new());
        }
        let mut f = self.open_blob(digest)?;
        let path = self.blob_path(digest);
        let size = f.metadata().ctx("inspecting", &path)?.len();
        if size > MAX_MANIFEST_BYTES as u64 && !must_parse {
            return Ok(Vec::new());
        }
        let mut bytes = Vec::new();
        (&mut f)
            .take(MAX_MANIFEST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .ctx("reading", &path)?;
        let parsed = if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            Document::parse(media_type, &bytes)
        } else {
            Document::parse(media_type, b"not json")
        };
        match parsed {
            Ok(doc) => Ok(doc.children().into_iter().cloned().collect()),
            Err(source) if must_parse => Err(Error::BadManifest {
                digest: digest.clone(),
                source,
            }),
            Err(_) => Ok(Vec::new()),
        }
    }

    fn gc_ingests(&self, max_age: Duration, report: &mut GcReport) -> Result<()> {
        let now = SystemTime::now();
        for entry in fs::read_dir(&self.ingest).ctx("listing", &self.ingest)? {
            let entry = entry.ctx("listing", &self.ingest)?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with(".trash-") {
                // Left by a remover that died; nobody uses it.
                report.freed_bytes += dir_size(&path);
                match fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(Error::Io {
                            op: "removing",
                            path,
                            source,
                        });
                    }
                }
                continue;
            }
            let Some(status) = Store::status_of(&path)? else {
                continue;
            };
            let idle = now.duration_since(status.updated).unwrap_or_default();
            if idle < max_age {
                continue;
            }
            let lock_path = path.join("ref");
            let Ok(lock) = OpenOptions::new().read(true).open(&lock_path) else {
                continue;
            };
            if lock.try_lock().is_err() {
                continue; // a writer is active
            }
            // Between our open and our lock, a writer may have committed and
            // another started afresh: act only on what we locked, as it is now.
            let same = fsutil::still_at(&lock, &lock_path).unwrap_or(false);
            let Some(status) = Store::status_of(&path)?.filter(|_| same) else {
                continue;
            };
            if now.duration_since(status.updated).unwrap_or_default() < max_age {
                continue;
            }
            report.freed_bytes += status.offset;
            writer::remove_ingest_dir(&path)?;
            tracing::debug!(reference = %status.reference, "gc removed ingest");
            report.removed_ingests.push(status.reference);
        }
        report.removed_ingests.sort();
        Ok(())
    }

    fn ingest_dir(&self, reference: &str) -> PathBuf {
        self.ingest
            .join(Digest::of_bytes(reference.as_bytes()).encoded())
    }

    fn ingest_dirs(&self) -> Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for entry in fs::read_dir(&self.ingest).ctx("listing", &self.ingest)? {
            let entry = entry.ctx("listing", &self.ingest)?;
            if !entry.file_name().to_string_lossy().starts_with('.') {
                dirs.push(entry.path());
            }
        }
        Ok(dirs)
    }

    fn status_of(dir: &Path) -> Result<Option<Status>> {
        let ref_path = dir.join("ref");
        let (reference, started) = match fs::read_to_string(&ref_path) {
            Ok(r) => {
                let meta = match fs::metadata(&ref_path) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => {
                        return Err(Error::Io {
                            op: "inspecting",
                            path: ref_path,
                            source,
                        });
                    }
                };
                (r, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    op: "reading",
                    path: ref_path,
                    source,
                });
            }
        };
        let data = dir.join("data");
        // A writer may remove the directory between our reads.
        if !ref_path.exists() {
            return Ok(None);
        }
        let offset = match fs::metadata(&data) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(Error::Io {
                    op: "inspecting",
                    path: data,
                    source,
                });
            }
        };
        let updated = fs::read_to_string(dir.join("updatedat"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map_or(started, fsutil::from_unix);
        Ok(Some(Status {
            reference,
            offset,
            total: writer::read_total(dir)?,
            started,
            updated,
        }))
    }

    /// Takes the lock of a reference's ingest directory, creating it. The
    /// loop handles a directory removed by a committing writer between our
    /// open and our lock: the path then names another file, so we retry.
    fn lock_ingest(&self, reference: &str, wait: bool) -> Result<(PathBuf, File)> {
        check_reference(reference)?;
        let dir = self.ingest_dir(reference);
        let ref_path = dir.join("ref");
        loop {
            fs::create_dir_all(&dir).ctx("creating", &dir)?;
            let mut lock = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&ref_path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(Error::Io {
                        op: "opening",
                        path: ref_path,
                        source,
                    });
                }
            };
            if wait {
                lock.lock().ctx("locking", &ref_path)?;
            } else {
                match lock.try_lock() {
                    Ok(()) => {}
                    Err(fs::TryLockError::WouldBlock) => {
                        return Err(Error::Busy {
                            reference: reference.to_owned(),
                        });
                    }
                    Err(fs::TryLockError::Error(source)) => {
                        return Err(Error::Io {
                            op: "locking",
                            path: ref_path,
                            source,
                        });
                    }
                }
            }
            if !fsutil::still_at(&lock, &ref_path).ctx("inspecting", &ref_path)? {
                continue;
            }
            let mut recorded = String::new();
            lock.read_to_string(&mut recorded)
                .ctx("reading", &ref_path)?;
            if recorded != reference {
                if !reference.starts_with(&recorded) {
                    return Err(Error::ReferenceCollision {
                        path: dir,
                        reference: reference.to_owned(),
                        found: recorded,
                    });
                }
                // New, or cut short by a crash: (re)write it.
                lock.set_len(0).ctx("writing", &ref_path)?;
                io::Seek::seek(&mut lock, io::SeekFrom::Start(0)).ctx("writing", &ref_path)?;
                lock.write_all(reference.as_bytes())
                    .ctx("writing", &ref_path)?;
                lock.sync_all().ctx("syncing", &ref_path)?;
            }
            return Ok((dir, lock));
        }
    }
}

fn not_found_or(e: io::Error, digest: &Digest, op: &'static str, path: &Path) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::NotFound {
            digest: digest.clone(),
        }
    } else {
        Error::Io {
            op,
            path: path.to_owned(),
            source: e,
        }
    }
}

fn check_reference(reference: &str) -> Result<()> {
    if reference.is_empty() || reference.contains(['\0', '\n']) {
        return Err(Error::InvalidReference(reference.to_owned()));
    }
    Ok(())
}

fn info_of(digest: Digest, meta: &fs::Metadata) -> Info {
    Info {
        digest,
        size: meta.len(),
        created: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    })
}
