//! The layer store: records in `layers.json`, each layer's own entries in
//! overlay form in `<id>/diff/`, its tar-split in `<id>/tar-split.gz`.
//!
//! Locks: `lock` (flock) guards `layers.json`, held only to read or write
//! it; `<id>.lock` is held by whoever applies layer `<id>` for the whole
//! apply, so a second process applying the same layer waits and then finds
//! it done, and a layer left `incomplete` by a dead process (its lock free)
//! is removed by the next writer.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use pluginctl_oci::{Algorithm, Digest, Digester};
use pluginctl_rootfs::decompress;
use pluginctl_rootfs::extract::{self, Extractor, Landing, Options};
use pluginctl_rootfs::tar::{Kind, Reader};
use serde::{Deserialize, Serialize};

use crate::shadow::{Occurrences, Shadows, Written};
use crate::split::{Record, Recorder, SplitReader, SplitWriter};
use crate::{Error, Result, chain_id};

/// The empty directory that stands under a single layer mounted on its
/// own (a read-only overlay needs two lower directories).
pub(crate) const EMPTY: &str = "empty";

/// The format of `layers.json` this release writes and reads.
const FORMAT: u32 = 1;

/// A compressed blob a layer was applied from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compressed {
    /// Its digest (as in a manifest).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// `gzip`, `zstd` or `none`.
    pub compression: String,
}

/// One layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Its ChainID: the parent's ChainID and its own diff_id.
    pub id: Digest,
    /// The layer below, by ChainID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
    /// The digest of its uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of its uncompressed tar.
    pub size: u64,
    /// Every compressed blob it was applied from.
    #[serde(default)]
    pub compressed: Vec<Compressed>,
    /// When it was applied, RFC 3339 UTC.
    pub created: String,
    /// The UIDs its entries own (whiteouts excluded), sorted.
    #[serde(default)]
    pub uids: Vec<u32>,
    /// The GIDs, sorted.
    #[serde(default)]
    pub gids: Vec<u32>,
    /// Set until the layer is fully applied.
    #[serde(default)]
    pub incomplete: bool,
}

#[derive(Serialize, Deserialize)]
struct File_ {
    format: u32,
    /// Incremented on every change: a reader that kept the records can
    /// tell whether they changed.
    token: u64,
    layers: Vec<Layer>,
}

/// What `check` found different from what was applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Files whose contents changed.
    pub changed: Vec<String>,
    /// Entries that are gone.
    pub missing: Vec<String>,
    /// Entries the layer never had.
    pub added: Vec<String>,
}

impl CheckReport {
    /// Whether nothing differs.
    pub fn is_clean(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.added.is_empty()
    }
}

/// A layer store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating) the store at `root` for writing: layers left
    /// incomplete by a process that died are removed.
    pub fn open(root: &Path) -> Result<Store> {
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let store = Store {
            root: root.to_owned(),
        };
        store.remove_abandoned()?;
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A layer's directory of its own entries (overlay form): what an
    /// overlay mount takes as a lower directory.
    pub fn diff_dir(&self, id: &Digest) -> PathBuf {
        self.layer_dir(id).join("diff")
    }

    fn layer_dir(&self, id: &Digest) -> PathBuf {
        self.root.join(id.encoded())
    }

    fn lock_file(&self, name: &str, wait: bool) -> Result<Option<File>> {
        let path = self.root.join(name);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if wait {
            f.lock().map_err(|e| Error::io(&path, e))?;
            return Ok(Some(f));
        }
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    fn meta_lock(&self) -> Result<File> {
        Ok(self.lock_file("lock", true)?.expect("a waiting lock"))
    }

    fn read_records(&self) -> Result<File_> {
        let path = self.root.join("layers.json");
        match fs::read(&path) {
            Ok(b) => {
                let f: File_ = serde_json::from_slice(&b)
                    .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?;
                if f.format > FORMAT {
                    return Err(Error::Corrupt(format!(
                        "{}: format {} is from a later pluginctl",
                        path.display(),
                        f.format
                    )));
                }
                Ok(f)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(File_ {
                format: FORMAT,
                token: 0,
                layers: Vec::new(),
            }),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn write_records(&self, mut f: File_) -> Result<()> {
        f.token += 1;
        f.format = FORMAT;
        let path = self.root.join("layers.json");
        let tmp = self.root.join("layers.json.tmp");
        let bytes = serde_json::to_vec_pretty(&f).expect("records serialise");
        let write = || -> io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.root)?.sync_all()
        };
        write().map_err(|e| Error::io(&path, e))
    }

    /// Every layer, complete or not.
    pub fn layers(&self) -> Result<Vec<Layer>> {
        let _lock = self.meta_lock()?;
        Ok(self.read_records()?.layers)
    }

    /// The change token: different after any change to the records.
    pub fn token(&self) -> Result<u64> {
        let _lock = self.meta_lock()?;
        Ok(self.read_records()?.token)
    }

    /// A complete layer by ChainID, a unique prefix of one (hex, with or
    /// without `sha256:`), its diff_id, or a compressed digest it was
    /// applied from.
    pub fn get(&self, what: &str) -> Result<Layer> {
        let layers: Vec<Layer> = self
            .layers()?
            .into_iter()
            .filter(|l| !l.incomplete)
            .collect();
        if let Ok(d) = Digest::parse(what) {
            if let Some(l) = layers.iter().find(|l| l.id == d) {
                return Ok(l.clone());
            }
            if let Some(l) = layers.iter().find(|l| l.diff_id == d) {
                return Ok(l.clone());
            }
            if let Some(l) = layers
                .iter()
                .find(|l| l.compressed.iter().any(|c| c.digest == d))
            {
                return Ok(l.clone());
            }
        }
        let hex = what.strip_prefix("sha256:").unwrap_or(what);
        let found: Vec<&Layer> = layers
            .iter()
            .filter(|l| !hex.is_empty() && l.id.encoded().starts_with(hex))
            .collect();
        match found.as_slice() {
            [l] => Ok((*l).clone()),
            [] => Err(Error::NotFound(what.to_owned())),
            many => Err(Error::Ambiguous(
                what.to_owned(),
                many.iter()
                    .map(|l| l.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// Removes layers a dead process left incomplete (their apply lock is
    /// free). Directories no record names are `gc`'s.
    fn remove_abandoned(&self) -> Result<()> {
        let _lock = self.meta_lock()?;
        let mut f = self.read_records()?;
        let before = f.layers.len();
        let mut keep = Vec::new();
        for l in f.layers.drain(..) {
            if l.incomplete
                && let Some(_held) = self.lock_file(&format!("{}.lock", l.id.encoded()), false)?
            {
                remove_tree(&self.layer_dir(&l.id))?;
                tracing::info!(layer = %l.id, "removed a layer a dead process left incomplete");
                continue;
            }
            keep.push(l);
        }
        f.layers = keep;
        if f.layers.len() != before {
            self.write_records(f)?;
        }
        Ok(())
    }

    /// Applies a layer on `parent` (a ChainID, `None` for the first): one
    /// streaming pass over `blob` (gzip, zstd or plain tar) that
    /// decompresses, checks the result against `diff_id`, writes the
    /// tar-split, collects owners and extracts in overlay form, reading the
    /// input to its end. A layer already present is not applied again (the
    /// blob is not read); `compressed` is added to its record.
    pub fn apply(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: impl Read + Send,
        compressed: Option<&Compressed>,
    ) -> Result<Layer> {
        self.apply_blob(parent, diff_id, blob, compressed, false)
    }

    /// [`Store::apply`] of a blob the caller has verified against
    /// `compressed`'s digest and size (read from a content store that
    /// verifies what it stores): it is not hashed again. The diff_id still
    /// is.
    pub fn apply_trusted(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: impl Read + Send,
        compressed: &Compressed,
    ) -> Result<Layer> {
        self.apply_blob(parent, diff_id, blob, Some(compressed), true)
    }

    fn apply_blob(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: impl Read + Send,
        compressed: Option<&Compressed>,
        trusted: bool,
    ) -> Result<Layer> {
        let id = chain_id(parent, diff_id);
        // Whoever applies this layer holds its lock for the whole apply: a
        // second process waits here, then finds it done.
        let _apply = self
            .lock_file(&format!("{}.lock", id.encoded()), true)?
            .expect("a waiting lock");
        {
            let _lock = self.meta_lock()?;
            let mut f = self.read_records()?;
            if let Some(p) = parent
                && !f.layers.iter().any(|l| &l.id == p && !l.incomplete)
            {
                return Err(Error::NotFound(format!("{p} (the parent layer)")));
            }
            if let Some(l) = f.layers.iter().find(|l| l.id == id) {
                if !l.incomplete {
                    // Present: the blob is not read, so its digest is not
                    // recorded as one this layer was applied from.
                    return Ok(l.clone());
                }
                // A dead process's: its lock was free, since we hold it.
                f.layers.retain(|l| l.id != id);
            }
            remove_tree(&self.layer_dir(&id))?;
            f.layers.push(Layer {
                id: id.clone(),
                parent: parent.cloned(),
                diff_id: diff_id.clone(),
                size: 0,
                compressed: compressed.cloned().into_iter().collect(),
                created: now_rfc3339(),
                uids: Vec::new(),
                gids: Vec::new(),
                incomplete: true,
            });
            self.write_records(f)?;
        }
        let result = self.extract(&id, diff_id, blob, compressed, trusted);
        let _lock = self.meta_lock()?;
        let mut f = self.read_records()?;
        match result {
            Ok((size, uids, gids)) => {
                let l =
                    f.layers.iter_mut().find(|l| l.id == id).ok_or_else(|| {
                        Error::Corrupt(format!("layer {id} vanished while applied"))
                    })?;
                l.size = size;
                l.uids = uids.into_iter().collect();
                l.gids = gids.into_iter().collect();
                l.incomplete = false;
                let done = l.clone();
                self.write_records(f)?;
                Ok(done)
            }
            Err(e) => {
                f.layers.retain(|l| l.id != id);
                self.write_records(f)?;
                remove_tree(&self.layer_dir(&id))?;
                Err(e)
            }
        }
    }

    /// The apply's one pass; returns the tar's size and the owners.
    fn extract(
        &self,
        id: &Digest,
        diff_id: &Digest,
        blob: impl Read + Send,
        compressed: Option<&Compressed>,
        trusted: bool,
    ) -> Result<(u64, BTreeSet<u32>, BTreeSet<u32>)> {
        let dir = self.layer_dir(id);
        let diff = dir.join("diff");
        fs::create_dir_all(&diff).map_err(|e| Error::io(&diff, e))?;
        let split_tmp = dir.join("tar-split.gz.tmp");
        let split_file = File::create(&split_tmp).map_err(|e| Error::io(&split_tmp, e))?;
        let options = Options {
            allow_devices: true,
            overlay_whiteouts: true,
            ..Options::default()
        };
        let blob_hash = Shared::new(Algorithm::Sha256);
        let plain_hash = Shared::new(diff_id.algorithm());
        let check_blob = compressed.filter(|_| !trusted);
        let blob: Box<dyn Read + Send + '_> = if check_blob.is_some() {
            Box::new(Seen {
                inner: blob,
                seen: blob_hash.clone(),
            })
        } else {
            Box::new(blob)
        };
        let plain = Seen {
            inner: decompress::decompress(blob, &options.decompress_limits)?,
            seen: plain_hash.clone(),
        };
        // Decompression and the diff_id's hash on one thread; the split,
        // the files' checksums and the files on this one: two cores, as
        // flatten uses them.
        let Extracted {
            uids,
            gids,
            written,
            split,
        } = std::thread::scope(|s| {
            let plain = pluginctl_rootfs::readahead::read_ahead(s, plain);
            let recorder = Recorder::new(plain, SplitWriter::new(io::BufWriter::new(split_file)));
            Store::extract_entries(&dir, &diff, recorder, &options)
        })?;
        let (actual, bytes) = plain_hash.take();
        if &actual != diff_id {
            return Err(Error::DiffIdMismatch {
                expected: diff_id.clone(),
                actual,
            });
        }
        if let Some(c) = check_blob {
            let (got, n) = blob_hash.take();
            if c.digest.algorithm() == Algorithm::Sha256 && (got != c.digest || n != c.size) {
                return Err(Error::Invalid(format!(
                    "the blob read is {got} ({n} bytes), not the compressed layer {} ({} bytes) it was given as",
                    c.digest, c.size
                )));
            }
        }
        written.shadows.save(&dir)?;
        // The files on disk before the record says the layer is complete.
        rustix::fs::syncfs(open_dir(&diff)?).map_err(|e| Error::io(&diff, e.into()))?;
        let file = split
            .into_inner()
            .map_err(|e| Error::io(&split_tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&split_tmp, e))?;
        let split_path = dir.join("tar-split.gz");
        fs::rename(&split_tmp, &split_path).map_err(|e| Error::io(&split_path, e))?;
        Ok((bytes, uids, gids))
    }

    /// The entries of the tar `recorder` reads, extracted in overlay form
    /// into `diff` and recorded in the split, the input read to its end.
    fn extract_entries<R: Read>(
        dir: &Path,
        diff: &Path,
        recorder: Recorder<R, io::BufWriter<File>>,
        options: &Options,
    ) -> Result<Extracted> {
        let mut reader = Reader::new(recorder, options.tar_limits);
        let mut x = Extractor::new(diff, options)?;
        let (mut uids, mut gids) = (BTreeSet::new(), BTreeSet::new());
        let mut written = Written::default();
        let diff_fd = open_dir(diff)?;
        while let Some(h) = reader.next_header()? {
            let landing = extract::landing(&h)?;
            let whiteout = matches!(landing, Landing::Whiteout(_) | Landing::Opaque(_));
            if !whiteout && !matches!(landing, Landing::Nowhere) {
                uids.insert(u32::try_from(h.uid).map_err(|_| {
                    Error::Invalid(format!("{}: uid {} out of range", h.display_path(), h.uid))
                })?);
                gids.insert(u32::try_from(h.gid).map_err(|_| {
                    Error::Invalid(format!("{}: gid {} out of range", h.display_path(), h.gid))
                })?);
            }
            let recorder = reader.get_mut();
            let recorded = match &landing {
                Landing::Entry(path) => {
                    written.land(dir, &diff_fd, &h, path)?;
                    if h.kind == Kind::File {
                        recorder.payload(path.clone(), h.size)
                    } else {
                        recorder.name(path)
                    }
                }
                // A whiteout never removes what this layer wrote.
                Landing::Whiteout(path) => recorder.name(path),
                Landing::Opaque(path) if !path.is_empty() => recorder.name(path),
                Landing::Opaque(_) | Landing::Nowhere => Ok(()),
            };
            recorded.map_err(|e| Error::io(dir, e))?;
            let mut data = reader.data();
            x.entry(&h, &mut data)?;
            io::copy(&mut data, &mut io::sink()).map_err(pluginctl_rootfs::Error::Read)?;
        }
        x.finish()?;
        // Past the end blocks: whatever follows is part of the tar too.
        let mut recorder = reader.into_inner();
        io::copy(&mut recorder, &mut io::sink()).map_err(pluginctl_rootfs::Error::Read)?;
        let (_, split) = recorder.finish().map_err(|e| Error::io(dir, e))?;
        Ok(Extracted {
            uids,
            gids,
            written,
            split,
        })
    }

    /// Writes layer `what`'s uncompressed tar to `out`, byte for byte as it
    /// was applied (its digest is the diff_id), from its tar-split and its
    /// files. A file changed since is an error naming it; so is a result
    /// whose digest is not the diff_id. Memory is bounded by a constant.
    pub fn diff(&self, what: &str, out: &mut dyn Write) -> Result<u64> {
        let layer = self.get(what)?;
        let diff = self.diff_dir(&layer.id);
        let mut split = self.split(&layer)?;
        let mut files = LayerFiles::open(self, &layer)?;
        let mut hashed = HashingWriter {
            inner: out,
            digester: Digester::new(layer.diff_id.algorithm()),
            bytes: 0,
        };
        let mut buf = vec![0u8; 256 << 10];
        while let Some(rec) = split
            .next_record()
            .map_err(|e| self.split_err(&layer, &e))?
        {
            match rec {
                Record::Raw(b) => hashed.write_all(&b).map_err(Error::Write)?,
                Record::Name(_) => {}
                Record::File { path, size, crc32 } => {
                    let shown = String::from_utf8_lossy(&path).into_owned();
                    let mut f = files.file(&path).map_err(|e| Error::Changed {
                        layer: layer.id.to_string(),
                        path: shown.clone(),
                        why: format!("cannot be opened: {e}"),
                    })?;
                    let mut crc = 0;
                    let mut left = size;
                    while left > 0 {
                        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                        let n = f.read(&mut buf[..want]).map_err(|e| Error::io(&diff, e))?;
                        if n == 0 {
                            return Err(Error::Changed {
                                layer: layer.id.to_string(),
                                path: shown,
                                why: format!("is {left} bytes shorter than it was"),
                            });
                        }
                        crc = zlib_rs::crc32::crc32(crc, &buf[..n]);
                        hashed.write_all(&buf[..n]).map_err(Error::Write)?;
                        left -= n as u64;
                    }
                    let more = f.read(&mut buf[..1]).map_err(|e| Error::io(&diff, e))?;
                    if more != 0 || crc != crc32 {
                        return Err(Error::Changed {
                            layer: layer.id.to_string(),
                            path: shown,
                            why: "has other contents than the layer had".to_owned(),
                        });
                    }
                }
            }
        }
        let actual = hashed.digester.finish();
        if actual != layer.diff_id {
            return Err(Error::DiffIdMismatch {
                expected: layer.diff_id.clone(),
                actual,
            });
        }
        Ok(hashed.bytes)
    }

    /// Compares a layer's files with its tar-split: changed contents,
    /// missing entries and entries it never had, by name.
    pub fn check(&self, what: &str) -> Result<CheckReport> {
        let layer = self.get(what)?;
        let diff = self.diff_dir(&layer.id);
        let mut split = self.split(&layer)?;
        let mut files = LayerFiles::open(self, &layer)?;
        let mut report = CheckReport::default();
        let mut known: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut buf = vec![0u8; 256 << 10];
        while let Some(rec) = split
            .next_record()
            .map_err(|e| self.split_err(&layer, &e))?
        {
            let path = match rec {
                Record::Raw(_) => continue,
                Record::Name(path) => {
                    if !exists_in(&files.root, &path) {
                        report
                            .missing
                            .push(String::from_utf8_lossy(&path).into_owned());
                    }
                    path
                }
                Record::File { path, size, crc32 } => {
                    let shown = String::from_utf8_lossy(&path).into_owned();
                    match files.file(&path) {
                        // There, but not a file it can read: changed.
                        Err(_) if exists_in(&files.root, &path) => report.changed.push(shown),
                        Err(_) => report.missing.push(shown),
                        Ok(mut f) => {
                            let mut crc = 0;
                            let mut n_total = 0u64;
                            loop {
                                // A read error is a file that changed.
                                let Ok(n) = f.read(&mut buf) else {
                                    n_total = u64::MAX;
                                    break;
                                };
                                if n == 0 {
                                    break;
                                }
                                crc = zlib_rs::crc32::crc32(crc, &buf[..n]);
                                n_total += n as u64;
                            }
                            if n_total != size || crc != crc32 {
                                report.changed.push(shown);
                            }
                        }
                    }
                    path
                }
            };
            // Every ancestor belongs to the layer too.
            let mut p = path.as_slice();
            known.insert(p.to_vec());
            while let Some(i) = p.iter().rposition(|b| *b == b'/') {
                p = &p[..i];
                known.insert(p.to_vec());
            }
        }
        walk(&diff, &mut Vec::new(), &mut |rel| {
            if !known.contains(rel) {
                report.added.push(String::from_utf8_lossy(rel).into_owned());
            }
        })?;
        report.changed.sort();
        report.missing.sort();
        report.added.sort();
        report.missing.dedup();
        Ok(report)
    }

    fn split(&self, layer: &Layer) -> Result<SplitReader<io::BufReader<File>>> {
        let path = self.layer_dir(&layer.id).join("tar-split.gz");
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(SplitReader::new(io::BufReader::new(f)))
    }

    fn split_err(&self, layer: &Layer, e: &io::Error) -> Error {
        Error::Corrupt(format!(
            "{}: {e}",
            self.layer_dir(&layer.id).join("tar-split.gz").display()
        ))
    }

    /// Deletes a layer; refused while another layer stands on it.
    pub fn delete(&self, what: &str) -> Result<Digest> {
        let layer = self.get(what)?;
        let _lock = self.meta_lock()?;
        let mut f = self.read_records()?;
        if let Some(child) = f
            .layers
            .iter()
            .find(|l| l.parent.as_ref() == Some(&layer.id))
        {
            return Err(Error::InUse(format!(
                "layer {} is the parent of {}",
                layer.id, child.id
            )));
        }
        f.layers.retain(|l| l.id != layer.id);
        self.write_records(f)?;
        remove_tree(&self.layer_dir(&layer.id))?;
        Ok(layer.id)
    }

    /// Deletes every complete layer that neither `keep` nor a kept layer's
    /// ancestry names, and every directory no record names. Returns what
    /// was deleted.
    pub fn gc(&self, keep: &[Digest]) -> Result<Vec<Digest>> {
        let _lock = self.meta_lock()?;
        let mut f = self.read_records()?;
        let mut wanted: BTreeSet<Digest> = BTreeSet::new();
        // A layer being applied keeps its parent chain.
        let applying: Vec<Digest> = f
            .layers
            .iter()
            .filter(|l| l.incomplete)
            .map(|l| l.id.clone())
            .collect();
        for k in keep.iter().chain(&applying) {
            let mut cur = Some(k.clone());
            while let Some(id) = cur {
                if !wanted.insert(id.clone()) {
                    break;
                }
                cur = f
                    .layers
                    .iter()
                    .find(|l| l.id == id)
                    .and_then(|l| l.parent.clone());
            }
        }
        let removed: Vec<Digest> = f
            .layers
            .iter()
            .filter(|l| !l.incomplete && !wanted.contains(&l.id))
            .map(|l| l.id.clone())
            .collect();
        f.layers.retain(|l| !removed.contains(&l.id));
        let named: BTreeSet<String> = f.layers.iter().map(|l| l.id.encoded().to_owned()).collect();
        self.write_records(f)?;
        for id in &removed {
            remove_tree(&self.layer_dir(id))?;
        }
        for e in fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let e = e.map_err(|e| Error::io(&self.root, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            // `empty`: the lower directory under a single mounted layer.
            if e.path().is_dir() && !named.contains(&name) && name != EMPTY {
                remove_tree(&e.path())?;
            }
        }
        Ok(removed)
    }
}

/// What extracting a layer's entries gave.
struct Extracted {
    /// The UIDs its entries own.
    uids: BTreeSet<u32>,
    /// The GIDs.
    gids: BTreeSet<u32>,
    /// Its files, and the earlier contents of paths written twice.
    written: Written,
    /// The split's file, complete but not synced.
    split: io::BufWriter<File>,
}

/// A digest and a byte count, shared with the thread that reads.
#[derive(Clone)]
struct Shared(std::sync::Arc<std::sync::Mutex<(Digester, u64)>>);

impl Shared {
    fn new(algorithm: Algorithm) -> Shared {
        Shared(std::sync::Arc::new(std::sync::Mutex::new((
            Digester::new(algorithm),
            0,
        ))))
    }

    fn update(&self, bytes: &[u8]) {
        let mut s = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.0.update(bytes);
        s.1 += bytes.len() as u64;
    }

    /// The digest and the count, once the reading is over.
    fn take(&self) -> (Digest, u64) {
        let mut s = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let algorithm = s.0.algorithm();
        let (d, n) = std::mem::replace(&mut *s, (Digester::new(algorithm), 0));
        (d.finish(), n)
    }
}

/// A reader that hashes and counts what passes (the compressed blob, or
/// the uncompressed tar: its diff_id), for another thread to read.
struct Seen<R> {
    inner: R,
    seen: Shared,
}

impl<R: Read> Read for Seen<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.update(&buf[..n]);
        Ok(n)
    }
}

struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    digester: Digester,
    bytes: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn open_dir(path: &Path) -> Result<rustix::fd::OwnedFd> {
    rustix::fs::open(
        path,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io(path, e.into()))
}

/// Opens `rel` for reading inside `root`, never outside it (symlinks
/// resolved as if `root` were `/`, as extraction resolved them).
fn open_in(root: &rustix::fd::OwnedFd, rel: &[u8]) -> io::Result<File> {
    let fd = rustix::fs::openat2(
        root.as_fd(),
        rel,
        rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::CLOEXEC
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT,
    )?;
    // A FIFO or device put there since would block or lie.
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(io::Error::other("is no longer a regular file"));
    }
    Ok(File::from(fd))
}

/// A layer's files as its tar-split's file records name them, in order:
/// the k-th record of a path reads its shadow when it has one.
struct LayerFiles {
    /// The diff dir, which paths resolve in.
    root: rustix::fd::OwnedFd,
    layer_dir: PathBuf,
    shadows: Shadows,
    occurrences: Occurrences,
}

impl LayerFiles {
    fn open(store: &Store, layer: &Layer) -> Result<LayerFiles> {
        let layer_dir = store.layer_dir(&layer.id);
        Ok(LayerFiles {
            root: open_dir(&store.diff_dir(&layer.id))?,
            shadows: Shadows::load(&layer_dir)?,
            layer_dir,
            occurrences: Occurrences::default(),
        })
    }

    /// The file of the next file record of `rel`.
    fn file(&mut self, rel: &[u8]) -> io::Result<File> {
        let k = self.occurrences.next(rel);
        match self.shadows.get(&self.layer_dir, rel, k) {
            Some(p) => File::open(p),
            None => open_in(&self.root, rel),
        }
    }
}

/// Whether `rel` names something inside `root` (resolved in it).
fn exists_in(root: &rustix::fd::OwnedFd, rel: &[u8]) -> bool {
    rustix::fs::openat2(
        root.as_fd(),
        rel,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT,
    )
    .is_ok()
}

/// Calls `each` with every path under `dir`, relative, without following
/// symlinks.
fn walk(dir: &Path, rel: &mut Vec<u8>, each: &mut dyn FnMut(&[u8])) -> Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for e in entries {
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(e.file_name().as_bytes());
        each(rel);
        if e.file_type()
            .map_err(|err| Error::io(&e.path(), err))?
            .is_dir()
        {
            walk(&e.path(), rel, each)?;
        }
        rel.truncate(len);
    }
    Ok(())
}

fn remove_tree(path: &Path) -> Result<()> {
    pluginctl_rootfs::remove::remove_tree(path).map_err(|e| Error::io(path, e))
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}
