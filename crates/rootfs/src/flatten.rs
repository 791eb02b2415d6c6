//! Flattening: many layers to one tar stream, without a directory.
//!
//! The result is exactly the tree that [`extract::apply_layers`] would
//! build. It is computed in two passes over the layers:
//!
//! 1. Headers only: a model of the final tree is built by applying every
//!    entry with the same rules as extraction (whiteouts, opaque
//!    directories, replacement, symlinks in parent components resolved
//!    inside the root, hardlinks sharing an inode). File data is not kept:
//!    a file node remembers which layer entry holds its bytes.
//! 2. Output: directories, symlinks and other data-less nodes first (sorted,
//!    so parents come before children), then the layers are read again and
//!    each surviving file is written as it streams past, its other names as
//!    hardlinks right after it.
//!
//! Memory is proportional to the number of entries (a few hundred bytes
//! each), never to the size of the data.
//!
//! [`extract::apply_layers`]: crate::extract::apply_layers

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

use crate::decompress::{self, decompress};
use crate::path::{PathSet, clean};
use crate::tar::{self, Header, Kind, Reader, Writer};
use crate::whiteout::{self, Plan};
use crate::{Error, Result, entry_err};

/// Where the layers come from: each can be opened more than once, and from
/// several threads.
pub trait Layers: Sync {
    /// How many layers there are.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Opens layer `i` (lowest first), compressed or not.
    fn open(&self, i: usize) -> Result<Box<dyn Read + Send + '_>>;
    /// Layer `i` as a byte range of a file, when it is stored that way and
    /// nothing needs to see its bytes as they are read (no digest to check).
    /// A plain tar given so is read by seeking past file data in the first
    /// pass, and its file data is copied in the kernel by [`flatten_file`].
    /// `None` (the default) reads through [`Layers::open`].
    fn region(&self, i: usize) -> Result<Option<Region>> {
        let _ = i;
        Ok(None)
    }
}

/// A layer stored as `len` bytes at `offset` of `file`.
#[derive(Debug)]
pub struct Region {
    /// The file holding the layer.
    pub file: std::fs::File,
    /// Where the layer starts.
    pub offset: u64,
    /// Its length.
    pub len: u64,
}

impl Region {
    /// A reader over the region that can seek.
    fn reader(&self) -> std::io::BufReader<RegionRead<'_>> {
        // Small: after a seek the buffer refills from the new place, and a
        // header needs 512 bytes (a few more with PAX records).
        std::io::BufReader::with_capacity(
            2 << 10,
            RegionRead {
                region: self,
                pos: 0,
            },
        )
    }

    /// Whether the region holds a plain tar (not gzip or zstd).
    fn is_plain(&self) -> Result<bool> {
        let mut prefix = [0u8; 512];
        let want = usize::try_from(self.len.min(512)).unwrap_or(512);
        let mut got = 0;
        while got < want {
            let n = std::os::unix::fs::FileExt::read_at(
                &self.file,
                &mut prefix[got..want],
                self.offset + got as u64,
            )
            .map_err(Error::Read)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(decompress::detect(&prefix[..got]) == Some(pluginctl_oci::Compression::None))
    }
}

/// `Read + Seek` over a [`Region`] with positioned reads.
struct RegionRead<'a> {
    region: &'a Region,
    pos: u64,
}

impl Read for RegionRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.region.len.saturating_sub(self.pos);
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = std::os::unix::fs::FileExt::read_at(
            &self.region.file,
            &mut buf[..want],
            self.region.offset + self.pos,
        )?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for RegionRead<'_> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let base = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            std::io::SeekFrom::End(d) => self.region.len.checked_add_signed(d),
        };
        self.pos = base.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

impl<T: AsRef<[u8]> + Sync> Layers for [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn open(&self, i: usize) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self[i].as_ref()))
    }
}

/// Bounds for flattening, and where it may spool.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Bounds on each tar stream.
    pub tar_limits: tar::Limits,
    /// Bounds on decompression.
    pub decompress_limits: decompress::Limits,
    /// A directory for unnamed temporary files: each compressed layer is
    /// then decompressed once, its plain tar spooled there during the first
    /// pass and read back (kernel copies into a file) in the second,
    /// instead of being decompressed twice. Costs disk the size of the
    /// uncompressed layers while it runs. `None`: decompress twice.
    pub spool_dir: Option<std::path::PathBuf>,
}

/// What flattening wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries read from all layers (both passes count once).
    pub entries_in: u64,
    /// Entries written.
    pub entries_out: u64,
    /// File bytes written.
    pub bytes: u64,
}

/// For each layer entry that holds a surviving file's bytes: its inode and
/// every path it has in the result (the first gets the data).
type FileNames = HashMap<(usize, u64), (InodeId, Vec<Vec<u8>>)>;

type NodeId = usize;
type InodeId = usize;

#[derive(Debug)]
enum NodeKind {
    Dir(BTreeMap<Vec<u8>, NodeId>),
    /// A regular file: its inode holds the data's origin and metadata.
    File(InodeId),
    /// A symlink, fifo or device: everything is in the header.
    Other,
}

#[derive(Debug)]
struct Node {
    kind: NodeKind,
    header: Header,
}

#[derive(Debug)]
struct Inode {
    /// (layer, entry index) of the entry that holds the bytes.
    source: (usize, u64),
    header: Header,
}

struct Model {
    nodes: Vec<Node>,
    inodes: Vec<Inode>,
    /// Paths this layer wrote, with their ancestors (for whiteouts).
    created: PathSet,
}

const ROOT: NodeId = 0;
const MAX_SYMLINKS: usize = 40;

/// Why a path could not be resolved in the model.
enum Resolve {
    Missing,
    NotDir,
    Loop,
}

impl Model {
    fn new() -> Model {
        Model {
            nodes: vec![Node {
                kind: NodeKind::Dir(BTreeMap::new()),
                header: Header::new(Kind::Dir, b""),
            }],
            inodes: Vec::new(),
            created: PathSet::new(),
        }
    }

    fn children(&self, id: NodeId) -> Option<&BTreeMap<Vec<u8>, NodeId>> {
        match &self.nodes[id].kind {
            NodeKind::Dir(c) => Some(c),
            _ => None,
        }
    }

    fn child(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        self.children(dir)?.get(name).copied()
    }

    /// Resolves a directory path from the root, following symlinks as
    /// `RESOLVE_IN_ROOT` does. Returns the directory's node and its real
    /// path components.
    fn resolve_dir(&self, parts: &[&[u8]]) -> std::result::Result<(NodeId, Vec<Vec<u8>>), Resolve> {
        let mut budget = MAX_SYMLINKS;
        let mut stack: Vec<(NodeId, Vec<u8>)> = Vec::new(); // ancestors, for ".."
        let mut cur = ROOT;
        let mut pending: Vec<Vec<u8>> = parts.iter().rev().map(|p| p.to_vec()).collect();
        while let Some(comp) = pending.pop() {
            match comp.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if let Some((parent, _)) = stack.pop() {
                        cur = parent;
                    }
                    continue;
                }
                _ => {}
            }
            let next = self.child(cur, &comp).ok_or(Resolve::Missing)?;
            match &self.nodes[next].kind {
                NodeKind::Dir(_) => {
                    stack.push((cur, comp));
                    cur = next;
                }
                NodeKind::Other if self.nodes[next].header.kind == Kind::Symlink => {
                    budget = budget.checked_sub(1).ok_or(Resolve::Loop)?;
                    let target = &self.nodes[next].header.link;
                    if target.starts_with(b"/") {
                        stack.clear();
                        cur = ROOT;
                    }
                    for c in target.split(|&b| b == b'/').rev() {
                        pending.push(c.to_vec());
                    }
                }
                _ => return Err(Resolve::NotDir),
            }
        }
        Ok((cur, stack.into_iter().map(|(_, c)| c).collect()))
    }

    fn remove_child(&mut self, dir: NodeId, name: &[u8]) {
        if let NodeKind::Dir(c) = &mut self.nodes[dir].kind {
            c.remove(name);
        }
    }

    fn set_child(&mut self, dir: NodeId, name: &[u8], node: NodeId) {
        if let NodeKind::Dir(c) = &mut self.nodes[dir].kind {
            c.insert(name.to_vec(), node);
        }
    }

    fn add_node(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn mark_created(&mut self, real: &[Vec<u8>]) {
        self.created.insert_with_ancestors(&real.join(&b'/'));
    }

    /// Removes what lower layers put under `dir` except what this layer
    /// wrote (the opaque rule).
    fn prune(&mut self, dir: NodeId, prefix: &[u8]) {
        let Some(children) = self.children(dir).cloned() else {
            return;
        };
        for (name, id) in children {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                [prefix, b"/", &name].concat()
            };
            if !self.created.contains(&path) {
                self.remove_child(dir, &name);
            } else if matches!(self.nodes[id].kind, NodeKind::Dir(_)) {
                self.prune(id, &path);
            }
        }
    }

    fn apply(&mut self, h: &Header, layer: usize, index: u64) -> Result<()> {
        match whiteout::plan(h)? {
            Plan::Skip => Ok(()),
            Plan::Add { parent, base } => self.add(h, &parent, base, layer, index),
            plan @ (Plan::Opaque { .. } | Plan::Delete { .. }) => {
                let (Plan::Opaque { parent } | Plan::Delete { parent, .. }) = &plan else {
                    unreachable!("matched above")
                };
                let Ok((dir, real)) = self.resolve_dir(parent) else {
                    return Ok(());
                };
                let real_prefix = real.join(&b'/');
                match plan {
                    Plan::Opaque { .. } => self.prune(dir, &real_prefix),
                    Plan::Delete { target, .. } => {
                        let path = if real_prefix.is_empty() {
                            target.to_vec()
                        } else {
                            [&real_prefix[..], b"/", target].concat()
                        };
                        if !self.created.contains(&path) {
                            self.remove_child(dir, target);
                        } else if let Some(id) = self.child(dir, target)
                            && matches!(self.nodes[id].kind, NodeKind::Dir(_))
                        {
                            self.prune(id, &path);
                        }
                    }
                    _ => unreachable!("only whiteouts here"),
                }
                Ok(())
            }
        }
    }

    fn ensure_parent(&mut self, h: &Header, parent: &[&[u8]]) -> Result<(NodeId, Vec<Vec<u8>>)> {
        match self.resolve_dir(parent) {
            Ok(r) => return Ok(r),
            Err(Resolve::Missing) => {}
            Err(Resolve::NotDir) => return Err(entry_err(h, "a parent of it is not a directory")),
            Err(Resolve::Loop) => {
                return Err(entry_err(
                    h,
                    "too many levels of symbolic links in its parent",
                ));
            }
        }
        // Create missing parents one by one, as extraction does (0755).
        for i in 0..parent.len() {
            match self.resolve_dir(&parent[..=i]) {
                Ok(_) => {}
                Err(Resolve::Missing) => {
                    let (dir, mut real) = self
                        .resolve_dir(&parent[..i])
                        .map_err(|_| entry_err(h, "a parent of it is not a directory"))?;
                    if self.child(dir, parent[i]).is_some() {
                        return Err(entry_err(
                            h,
                            "a parent of it is a symlink to a missing directory",
                        ));
                    }
                    let mut dh = Header::new(Kind::Dir, b"");
                    dh.mode = 0o755;
                    let id = self.add_node(Node {
                        kind: NodeKind::Dir(BTreeMap::new()),
                        header: dh,
                    });
                    self.set_child(dir, parent[i], id);
                    real.push(parent[i].to_vec());
                    self.mark_created(&real);
                }
                Err(Resolve::NotDir) => {
                    return Err(entry_err(h, "a parent of it is not a directory"));
                }
                Err(Resolve::Loop) => {
                    return Err(entry_err(
                        h,
                        "too many levels of symbolic links in its parent",
                    ));
                }
            }
        }
        self.resolve_dir(parent)
            .map_err(|_| entry_err(h, "a parent of it is not a directory"))
    }

    fn add(
        &mut self,
        h: &Header,
        parent: &[&[u8]],
        base: &[u8],
        layer: usize,
        index: u64,
    ) -> Result<()> {
        let (dir, mut real) = self.ensure_parent(h, parent)?;
        real.push(base.to_vec());
        self.mark_created(&real);
        let existing = self.child(dir, base);
        if h.kind == Kind::Dir
            && let Some(id) = existing
            && matches!(self.nodes[id].kind, NodeKind::Dir(_))
        {
            self.nodes[id].header = slim(h);
            return Ok(());
        }
        // The old entry goes first, as in extraction: a hardlink to
        // something under a directory it replaces finds nothing.
        if existing.is_some() {
            self.remove_child(dir, base);
        }
        let node = match h.kind {
            Kind::Dir => Node {
                kind: NodeKind::Dir(BTreeMap::new()),
                header: slim(h),
            },
            Kind::File => {
                self.inodes.push(Inode {
                    source: (layer, index),
                    header: slim(h),
                });
                // The inode holds the metadata; the node only points at it.
                Node {
                    kind: NodeKind::File(self.inodes.len() - 1),
                    header: Header::new(Kind::File, b""),
                }
            }
            Kind::Hardlink => {
                let target = clean(&h.link)
                    .map_err(|_| entry_err(h, "its hardlink target leaves the root"))?;
                let Some((&tbase, tparent)) = target.split_last() else {
                    return Err(entry_err(h, "a hardlink to the root"));
                };
                let missing = || {
                    entry_err(
                        h,
                        format!(
                            "hardlink target {:?} is not extracted",
                            String::from_utf8_lossy(&h.link)
                        ),
                    )
                };
                let (tdir, _) = self.resolve_dir(tparent).map_err(|_| missing())?;
                let tid = self.child(tdir, tbase).ok_or_else(missing)?;
                match &self.nodes[tid].kind {
                    NodeKind::Dir(_) => return Err(entry_err(h, "hardlink target is a directory")),
                    NodeKind::File(ino) => Node {
                        kind: NodeKind::File(*ino),
                        header: self.nodes[tid].header.clone(),
                    },
                    NodeKind::Other => Node {
                        kind: NodeKind::Other,
                        header: self.nodes[tid].header.clone(),
                    },
                }
            }
            Kind::Symlink if h.link.is_empty() => {
                return Err(entry_err(h, "a symlink with an empty target"));
            }
            Kind::Symlink | Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => Node {
                kind: NodeKind::Other,
                header: slim(h),
            },
        };
        let id = self.add_node(node);
        self.set_child(dir, base, id);
        Ok(())
    }
}

/// Flattens `layers` (lowest first; plain, gzip or zstd tar) into one
/// uncompressed tar written to `out`.
pub fn flatten<L: Layers + ?Sized>(
    layers: &L,
    out: impl Write,
    options: &Options,
) -> Result<Stats> {
    flatten_inner(layers, out, None, options)
}

/// [`flatten`] into a file, from its current position: file data of plain
/// layers given as [`Layers::region`]s is copied in the kernel
/// (`copy_file_range`, or `sendfile` across file systems) instead of
/// through user space.
pub fn flatten_file<L: Layers + ?Sized>(
    layers: &L,
    out: &std::fs::File,
    options: &Options,
) -> Result<Stats> {
    let buffered = std::io::BufWriter::with_capacity(1 << 20, out);
    flatten_inner(layers, buffered, Some(out), options)
}

fn flatten_inner<L: Layers + ?Sized, W: Write>(
    layers: &L,
    out: W,
    file: Option<&std::fs::File>,
    options: &Options,
) -> Result<Stats> {
    let mut stats = Stats::default();
    let mut model = Model::new();
    // For layers read as regions: each entry's data offset in the region.
    let mut offsets: Vec<Option<Vec<u64>>> = vec![None; layers.len()];
    // Compressed layers decompressed once into a spool file (pass 1).
    let mut spooled: Vec<Option<Region>> = (0..layers.len()).map(|_| None).collect();
    let mut regions = Vec::with_capacity(layers.len());
    for i in 0..layers.len() {
        regions.push(match layers.region(i)? {
            Some(r) if r.is_plain()? => Some(r),
            _ => None,
        });
    }
    // Pass 1: the layers' headers are read on every core (decompression is
    // the cost), and applied to the model in layer order as they arrive.
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(layers.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<LayerHeaders>)>(threads);
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            let regions = &regions;
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= layers.len()
                        || tx
                            .send((i, headers(layers, regions[i].as_ref(), i, options)))
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting: BTreeMap<usize, Result<LayerHeaders>> = BTreeMap::new();
        for (i, slot) in offsets.iter_mut().enumerate() {
            while !waiting.contains_key(&i) {
                let (j, r) = rx.recv().expect("a header thread stopped early");
                waiting.insert(j, r);
            }
            let (hs, at, spool) = waiting.remove(&i).expect("present")?;
            *slot = at;
            spooled[i] = spool;
            model.created.clear();
            for (index, h) in hs.iter().enumerate() {
                stats.entries_in += 1;
                model.apply(h, i, index as u64)?;
            }
        }
        Ok(())
    })?;
    model.created.clear();

    // Every live node with its real path, in sorted depth-first order.
    let mut others: Vec<(Vec<u8>, NodeId)> = Vec::new();
    let mut files: FileNames = HashMap::new();
    collect(&model, ROOT, &mut Vec::new(), &mut others, &mut files);

    let mut w = Writer::new(out);
    let write_err = |e: std::io::Error| Error::Io {
        op: "writing",
        path: "the flattened tar".into(),
        source: e,
    };
    for (path, id) in &others {
        let mut h = model.nodes[*id].header.clone();
        h.path.clone_from(path);
        if h.kind == Kind::Dir {
            h.path.push(b'/');
        }
        w.append(&h, &mut std::io::empty()).map_err(write_err)?;
        stats.entries_out += 1;
    }
    if !files.is_empty() {
        for i in 0..layers.len() {
            if let Some(region) = regions[i].as_ref().or(spooled[i].as_ref()) {
                let at = offsets[i].as_deref().unwrap_or_default();
                copy_region(region, i, at, &model, &mut files, &mut w, file, &mut stats)?;
                if files.is_empty() {
                    break;
                }
                continue;
            }
            let input = decompress(layers.open(i)?, &options.decompress_limits)?;
            // Decompression (or, for a plain tar, the reads) on a second
            // core while this one writes.
            std::thread::scope(|s| -> Result<()> {
                let input = crate::readahead::read_ahead(s, input);
                let mut reader = Reader::new(input, options.tar_limits);
                let mut index = 0u64;
                while let Some(h) = reader.next_header().map_err(unwrap_io)? {
                    if let Some((ino, paths)) = files.remove(&(i, index)) {
                        let ino = &model.inodes[ino];
                        let mut fh = ino.header.clone();
                        fh.path.clone_from(&paths[0]);
                        fh.size = h.size;
                        let mut data = reader.data();
                        w.append(&fh, &mut data)
                            .map_err(|e| unwrap_io(Error::Read(e)))?;
                        stats.bytes += h.size;
                        stats.entries_out += 1;
                        for p in &paths[1..] {
                            let mut lh = fh.clone();
                            lh.kind = Kind::Hardlink;
                            lh.size = 0;
                            lh.path.clone_from(p);
                            lh.link.clone_from(&paths[0]);
                            w.append(&lh, &mut std::io::empty()).map_err(write_err)?;
                            stats.entries_out += 1;
                        }
                    }
                    index += 1;
                }
                reader.drain().map_err(unwrap_io)?;
                Ok(())
            })?;
            if files.is_empty() {
                break;
            }
        }
    }
    w.finish().map_err(write_err)?;
    Ok(stats)
}

/// Pass 2 over a plain layer in a file: no header is read again (pass 1
/// kept each entry's data offset); file data is copied from the region
/// into the output in the kernel when the output is a file, else through a
/// buffer. Entries go out in layer order, as the streaming pass writes them.
#[allow(clippy::too_many_arguments)]
fn copy_region<W: Write>(
    region: &Region,
    i: usize,
    offsets: &[u64],
    model: &Model,
    files: &mut FileNames,
    w: &mut Writer<W>,
    file: Option<&std::fs::File>,
    stats: &mut Stats,
) -> Result<()> {
    let write_err = |e: std::io::Error| Error::Io {
        op: "writing",
        path: "the flattened tar".into(),
        source: e,
    };
    let mut wanted: Vec<u64> = files
        .keys()
        .filter(|(layer, _)| *layer == i)
        .map(|&(_, index)| index)
        .collect();
    wanted.sort_unstable();
    let mut kernel = if file.is_some() {
        KernelCopy::CopyFileRange
    } else {
        KernelCopy::No
    };
    for index in wanted {
        let (ino, paths) = files.remove(&(i, index)).expect("listed above");
        let ino = &model.inodes[ino];
        let mut fh = ino.header.clone();
        fh.path.clone_from(&paths[0]);
        let size = fh.size;
        let rel = usize::try_from(index)
            .ok()
            .and_then(|k| offsets.get(k))
            .copied()
            .ok_or_else(|| Error::Tar {
                offset: 0,
                reason: format!("entry {index} has no recorded data offset"),
            })?;
        if rel.checked_add(size).is_none_or(|end| end > region.len) {
            return Err(Error::Tar {
                offset: rel,
                reason: format!("{}: data runs past the end of the layer", fh.display_path()),
            });
        }
        let at = region.offset + rel;
        w.append_with(&fh, |out| {
            out.flush()?;
            if kernel != KernelCopy::No
                && let Some(f) = file
            {
                match kernel_copy(&region.file, at, f, size, &mut kernel) {
                    Ok(()) => return Ok(()),
                    // Nothing was copied: through user space from now on.
                    Err(e) if is_unsupported(&e) => kernel = KernelCopy::No,
                    Err(e) => return Err(e),
                }
            }
            let mut src = RegionRead { region, pos: rel };
            let copied = std::io::copy(&mut (&mut src).take(size), out)?;
            if copied == size {
                Ok(())
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{}: layer is truncated", fh.display_path()),
                ))
            }
        })
        .map_err(write_err)?;
        stats.bytes += size;
        stats.entries_out += 1;
        for p in &paths[1..] {
            let mut lh = fh.clone();
            lh.kind = Kind::Hardlink;
            lh.size = 0;
            lh.path.clone_from(p);
            lh.link.clone_from(&paths[0]);
            w.append(&lh, &mut std::io::empty()).map_err(write_err)?;
            stats.entries_out += 1;
        }
    }
    Ok(())
}

/// How file data moves into an output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KernelCopy {
    /// Through user space.
    No,
    /// `copy_file_range` (same file system; reflinks where supported).
    CopyFileRange,
    /// `sendfile` (file to file across file systems).
    Sendfile,
}

fn is_unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno::EXDEV | libc_errno::EINVAL | libc_errno::ENOSYS | libc_errno::EOPNOTSUPP)
    ) && e.kind() != std::io::ErrorKind::UnexpectedEof
}

mod libc_errno {
    pub(super) const EXDEV: i32 = 18;
    pub(super) const EINVAL: i32 = 22;
    pub(super) const ENOSYS: i32 = 38;
    pub(super) const EOPNOTSUPP: i32 = 95;
}

/// Copies `len` bytes at `offset` of `src` to `dst`'s current position, in
/// the kernel: `copy_file_range`, else `sendfile` (which crosses file
/// systems). An unsupported error is returned only before any byte moved.
fn kernel_copy(
    src: &std::fs::File,
    offset: u64,
    dst: &std::fs::File,
    len: u64,
    how: &mut KernelCopy,
) -> std::io::Result<()> {
    let mut off = offset;
    let mut left = len;
    while left > 0 {
        let chunk = usize::try_from(left.min(1 << 30)).unwrap_or(1 << 30);
        let use_sendfile = *how == KernelCopy::Sendfile;
        let r = if use_sendfile {
            rustix::fs::sendfile(dst, src, Some(&mut off), chunk)
        } else {
            rustix::fs::copy_file_range(src, Some(&mut off), dst, None, chunk)
        };
        match r {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "layer is truncated",
                ));
            }
            Ok(n) => left -= n as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) if !use_sendfile && left == len && e != rustix::io::Errno::IO => {
                // copy_file_range refuses (another file system, an old
                // kernel): sendfile moves file to file across file systems.
                *how = KernelCopy::Sendfile;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A header without its path, which the model knows from where the node
/// sits: a third of the memory of a small file's node.
fn slim(h: &Header) -> Header {
    Header {
        path: Vec::new(),
        link: h.link.clone(),
        xattrs: h.xattrs.clone(),
        ..*h
    }
}

/// Every header of layer `i`, in order.
fn headers<L: Layers + ?Sized>(
    layers: &L,
    region: Option<&Region>,
    i: usize,
    options: &Options,
) -> Result<LayerHeaders> {
    if let Some(region) = region {
        let mut reader = Reader::seeking(region.reader(), options.tar_limits);
        let mut all = Vec::new();
        let mut at = Vec::new();
        while let Some(h) = reader.next_header().map_err(unwrap_io)? {
            at.push(reader.offset());
            all.push(h);
        }
        return Ok((all, Some(at), None));
    }
    let input = decompress(layers.open(i)?, &options.decompress_limits)?;
    if let Some(dir) = &options.spool_dir {
        // Everything read is also written to the spool: the data offsets
        // are then offsets in the spool.
        let file = spool_file(dir)?;
        let mut tee = Tee {
            input,
            out: std::io::BufWriter::with_capacity(256 << 10, &file),
            written: 0,
        };
        let mut reader = Reader::new(&mut tee, options.tar_limits);
        let mut all = Vec::new();
        let mut at = Vec::new();
        while let Some(h) = reader.next_header().map_err(unwrap_io)? {
            at.push(reader.offset());
            all.push(h);
        }
        reader.drain().map_err(unwrap_io)?;
        let len = tee.written;
        tee.out.flush().map_err(|e| spool_err(dir, e))?;
        drop(tee);
        return Ok((
            all,
            Some(at),
            Some(Region {
                file,
                offset: 0,
                len,
            }),
        ));
    }
    let mut reader = Reader::new(input, options.tar_limits);
    let mut all = Vec::new();
    while let Some(h) = reader.next_header().map_err(unwrap_io)? {
        all.push(h);
    }
    reader.drain().map_err(unwrap_io)?;
    Ok((all, None, None))
}

/// A layer's headers; for a region or a spooled layer, each entry's data
/// offset; for a spooled layer, the spool.
type LayerHeaders = (Vec<Header>, Option<Vec<u64>>, Option<Region>);

/// Copies what is read into `out` as well.
struct Tee<R, W> {
    input: R,
    out: W,
    written: u64,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.written += n as u64;
        Ok(n)
    }
}

fn spool_err(dir: &std::path::Path, e: std::io::Error) -> Error {
    Error::Io {
        op: "spooling a layer in",
        path: dir.to_owned(),
        source: e,
    }
}

/// An unnamed temporary file in `dir` (`O_TMPFILE`; else created and
/// unlinked at once): gone when closed, whatever happens.
fn spool_file(dir: &std::path::Path) -> Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    if let Ok(fd) = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    ) {
        return Ok(std::fs::File::from(fd));
    }
    for n in 0..100u32 {
        let p = dir.join(format!(".pluginctl-spool-{}-{n}", std::process::id()));
        match std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&p);
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(spool_err(dir, e)),
        }
    }
    Err(spool_err(
        dir,
        std::io::Error::other("no free spool file name"),
    ))
}

fn collect(
    model: &Model,
    dir: NodeId,
    prefix: &mut Vec<u8>,
    others: &mut Vec<(Vec<u8>, NodeId)>,
    files: &mut FileNames,
) {
    let Some(children) = model.children(dir) else {
        return;
    };
    for (name, &id) in children {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(name);
        match &model.nodes[id].kind {
            NodeKind::File(ino) => files
                .entry(model.inodes[*ino].source)
                .or_insert_with(|| (*ino, Vec::new()))
                .1
                .push(prefix.clone()),
            NodeKind::Dir(_) => {
                others.push((prefix.clone(), id));
                collect(model, id, prefix, others, files);
            }
            NodeKind::Other => others.push((prefix.clone(), id)),
        }
        prefix.truncate(len);
    }
}

fn unwrap_io(e: Error) -> Error {
    crate::extract::unwrap_io(e)
}
