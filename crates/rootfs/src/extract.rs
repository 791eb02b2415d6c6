//! Applying layers to a directory, confined to it, with OCI whiteouts.
//!
//! Every path is resolved from a file descriptor of the root with
//! `openat2(RESOLVE_IN_ROOT)`: `..` and symlinks in parent components are
//! resolved as if the root were `/`, so nothing the tar says can reach
//! outside it. The last component is never followed: files are created with
//! `O_EXCL | O_NOFOLLOW`, metadata is set on the created file's descriptor or
//! with `AT_SYMLINK_NOFOLLOW`. On a kernel without `openat2` (before 5.6), a
//! symlink in a parent component is refused instead.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timestamps};
use rustix::io::Errno;

use crate::decompress::{self, decompress};
use crate::path::{PathSet, clean, join};
use crate::tar::{self, Header, Kind, Reader};
use crate::whiteout::{self, Plan};
use crate::{Error, Result, entry_err};

/// How to apply layers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Create device nodes; refused otherwise (a plugin has no use for them).
    pub allow_devices: bool,
    /// Set numeric owners from the tar; `None` means when running as root.
    pub preserve_owners: Option<bool>,
    /// Bounds on the tar stream.
    pub tar_limits: tar::Limits,
    /// Bounds on decompression.
    pub decompress_limits: decompress::Limits,
    /// Write whiteouts in overlayfs form instead of applying them: a
    /// deleted name becomes a 0:0 character device, an opaque directory
    /// gets `trusted.overlay.opaque=y`. For extracting one layer on its own
    /// (an overlay lower directory); needs root.
    pub overlay_whiteouts: bool,
}

/// What applying did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tar entries read (whiteouts included).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// File bytes written.
    pub bytes: u64,
    /// Whiteouts applied (opaque markers included).
    pub whiteouts: u64,
}

/// Applies one layer (plain, gzip or zstd tar) to the directory `root`.
pub fn apply_layer(root: &Path, layer: impl Read + Send, options: &Options) -> Result<Stats> {
    let mut x = Extractor::new(root, options)?;
    let input = decompress(layer, &options.decompress_limits)?;
    // Decompression runs on a second core while this one writes files.
    std::thread::scope(|s| {
        let mut reader = Reader::new(crate::readahead::read_ahead(s, input), options.tar_limits);
        while let Some(header) = next(&mut reader)? {
            x.entry(&header, &mut reader.data())?;
        }
        reader.drain().map_err(unwrap_io)
    })?;
    x.finish()
}

/// Applies entries one at a time, for callers that make or rewrite the
/// entries themselves (a `docker plugin create` context, say). Every entry
/// is one layer's worth of the rules of [`apply_layer`]; call
/// [`Extractor::finish`] to set directory metadata at the end.
pub struct Extractor<'a> {
    applier: Applier<'a>,
}

impl<'a> Extractor<'a> {
    /// Opens `root` for extraction.
    pub fn new(root: &Path, options: &'a Options) -> Result<Extractor<'a>> {
        let root_fd = rfs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Io {
            op: "opening",
            path: root.to_owned(),
            source: e.into(),
        })?;
        let owners = options
            .preserve_owners
            .unwrap_or_else(|| rustix::process::geteuid().is_root());
        let root_dev = rfs::fstat(&root_fd)
            .map_err(|e| Error::Io {
                op: "inspecting",
                path: root.to_owned(),
                source: e.into(),
            })?
            .st_dev;
        Ok(Extractor {
            applier: Applier {
                root: root_fd,
                root_dev,
                options,
                owners,
                created: PathSet::new(),
                dirs: Vec::new(),
                stats: Stats::default(),
                buf: vec![0u8; 256 << 10],
            },
        })
    }

    /// Applies one entry; `data` gives a regular file's bytes.
    pub fn entry(&mut self, header: &Header, data: &mut dyn Read) -> Result<()> {
        self.applier.stats.entries += 1;
        self.applier.entry(header, data)
    }

    /// Sets directory metadata and returns what was done.
    pub fn finish(mut self) -> Result<Stats> {
        self.applier.finish_dirs()?;
        Ok(self.applier.stats)
    }
}

/// Where an entry lands when its layer is extracted on its own with
/// [`Options::overlay_whiteouts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landing {
    /// Nothing lands: the root's own entry, AUFS metadata.
    Nowhere,
    /// The entry itself, at this relative path.
    Entry(Vec<u8>),
    /// A whiteout: a 0:0 character device at this path.
    Whiteout(Vec<u8>),
    /// An opaque marker: this directory is marked.
    Opaque(Vec<u8>),
}

/// Where `h` lands (see [`Landing`]), with its path cleaned as extraction
/// cleans it (`./a//b` is `a/b`) and classified as extraction classifies it
/// (after cleaning: `x/.wh.a/.` is a whiteout). An unsafe name is the same
/// error extraction gives.
pub fn landing(h: &Header) -> Result<Landing> {
    let join = |parent: &[&[u8]], base: Option<&[u8]>| {
        let mut out: Vec<u8> = Vec::new();
        for c in parent {
            if !out.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(c);
        }
        if let Some(b) = base {
            if !out.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(b);
        }
        out
    };
    Ok(match whiteout::plan(h)? {
        Plan::Skip => Landing::Nowhere,
        Plan::Opaque { parent } => Landing::Opaque(join(&parent, None)),
        Plan::Delete { parent, target } => Landing::Whiteout(join(&parent, Some(target))),
        Plan::Add { parent, base } => Landing::Entry(join(&parent, Some(base))),
    })
}

/// Marks a directory opaque for overlayfs.
fn mark_opaque(h: &Header, dir: BorrowedFd<'_>) -> Result<()> {
    rfs::fsetxattr(
        dir,
        "trusted.overlay.opaque",
        b"y",
        rfs::XattrFlags::empty(),
    )
    .map_err(io_err(h, "marking the directory opaque"))
}

/// Applies layers in order, lowest first.
pub fn apply_layers<R: Read + Send>(
    root: &Path,
    layers: impl IntoIterator<Item = R>,
    options: &Options,
) -> Result<Stats> {
    let mut total = Stats::default();
    for layer in layers {
        let s = apply_layer(root, layer, options)?;
        total.entries += s.entries;
        total.files += s.files;
        total.bytes += s.bytes;
        total.whiteouts += s.whiteouts;
    }
    Ok(total)
}

/// Reads the next header, turning errors raised inside the decoder back
/// into this crate's errors.
fn next<R: Read>(reader: &mut Reader<R>) -> Result<Option<Header>> {
    reader.next_header().map_err(unwrap_io)
}

pub(crate) fn unwrap_io(e: Error) -> Error {
    match e {
        Error::Read(io) => match io.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
            Some(_) => *io
                .into_inner()
                .expect("checked above")
                .downcast::<Error>()
                .expect("checked above"),
            None => Error::Read(io),
        },
        other => other,
    }
}

struct Applier<'a> {
    root: OwnedFd,
    root_dev: u64,
    options: &'a Options,
    owners: bool,
    /// Cleaned paths this layer wrote, with all their ancestors.
    created: PathSet,
    /// Directories whose metadata is set once their children are in.
    dirs: Vec<(Vec<u8>, Header)>,
    stats: Stats,
    buf: Vec<u8>,
}

fn io_err<'a>(h: &'a Header, op: &'static str) -> impl FnOnce(Errno) -> Error + 'a {
    move |e| Error::EntryIo {
        path: h.display_path(),
        op,
        source: e.into(),
    }
}

impl Applier<'_> {
    fn entry(&mut self, h: &Header, data: &mut dyn Read) -> Result<()> {
        let (parent, base) = match whiteout::plan(h)? {
            Plan::Skip => return Ok(()),
            Plan::Opaque { parent } if self.options.overlay_whiteouts => {
                self.stats.whiteouts += 1;
                let (dir, _) = self
                    .open_parent(h, &parent, true)?
                    .expect("created when missing");
                return mark_opaque(h, dir.as_fd());
            }
            Plan::Delete { parent, target } if self.options.overlay_whiteouts => {
                self.stats.whiteouts += 1;
                let (dir, parent_real) = self
                    .open_parent(h, &parent, true)?
                    .expect("created when missing");
                let path = child_path(&parent_real, target);
                if self.created.contains(&path) {
                    // A whiteout hides lower layers only: what this layer
                    // wrote there stays; a directory of ours becomes
                    // opaque, so that the lower one does not show through.
                    if let Ok(sub) = rfs::openat(
                        &dir,
                        target,
                        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    ) {
                        return mark_opaque(h, sub.as_fd());
                    }
                    return Ok(());
                }
                self.remove(h, dir.as_fd(), target)?;
                self.mark_created(&path);
                return rfs::mknodat(
                    &dir,
                    target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rfs::makedev(0, 0),
                )
                .map_err(io_err(h, "writing the whiteout"));
            }
            Plan::Opaque { parent } => {
                self.stats.whiteouts += 1;
                if let Some((dir, mut prefix)) = self.open_parent(h, &parent, false)? {
                    if !prefix.is_empty() {
                        prefix.push(b'/');
                    }
                    self.prune(h, dir.as_fd(), &mut prefix)?;
                }
                return Ok(());
            }
            Plan::Delete { parent, target } => {
                self.stats.whiteouts += 1;
                let Some((dir, parent_real)) = self.open_parent(h, &parent, false)? else {
                    return Ok(());
                };
                let mut path = child_path(&parent_real, target);
                if !self.created.contains(&path) {
                    self.remove(h, dir.as_fd(), target)?;
                } else if let Ok(sub) = rfs::openat(
                    &dir,
                    target,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    // This layer wrote the directory too: its own content
                    // stays, what lower layers had under it goes.
                    path.push(b'/');
                    self.prune(h, sub.as_fd(), &mut path)?;
                }
                return Ok(());
            }
            Plan::Add { parent, base } => (parent, base),
        };
        let (dir, parent_real) = self
            .open_parent(h, &parent, true)?
            .expect("created when missing");
        let real = child_path(&parent_real, base);
        let ours = self.created.contains(&real);
        self.mark_created(&real);
        // In overlay form, a directory written over this layer's own
        // whiteout replaces the lower one: opaque, or it would merge.
        let mut over_whiteout = false;
        match rfs::statat(&dir, base, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let ft = FileType::from_raw_mode(st.st_mode);
                over_whiteout = self.options.overlay_whiteouts
                    && ours
                    && ft == FileType::CharacterDevice
                    && st.st_rdev == 0;
                if !(ft == FileType::Directory && h.kind == Kind::Dir) {
                    self.remove(h, dir.as_fd(), base)?;
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io_err(h, "inspecting the existing file")(e)),
        }
        match h.kind {
            Kind::File => self.file(h, dir.as_fd(), base, data),
            Kind::Dir => {
                match rfs::mkdirat(&dir, base, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_err(h, "creating the directory")(e)),
                }
                if over_whiteout {
                    let sub = rfs::openat(
                        &dir,
                        base,
                        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io_err(h, "opening the directory"))?;
                    mark_opaque(h, sub.as_fd())?;
                }
                self.dirs.push((real, h.clone()));
                Ok(())
            }
            Kind::Symlink => {
                if h.link.is_empty() {
                    return Err(entry_err(h, "a symlink with an empty target"));
                }
                rfs::symlinkat(&h.link[..], &dir, base)
                    .map_err(io_err(h, "creating the symlink"))?;
                self.link_metadata(h, dir.as_fd(), base)
            }
            Kind::Hardlink => self.hardlink(h, dir.as_fd(), base),
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => {
                let ft = match h.kind {
                    Kind::CharDevice => FileType::CharacterDevice,
                    Kind::BlockDevice => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                if ft != FileType::Fifo && !self.options.allow_devices {
                    return Err(entry_err(h, "device nodes are not allowed"));
                }
                let dev = rfs::makedev(h.dev_major, h.dev_minor);
                rfs::mknodat(&dir, base, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(io_err(h, "creating the node"))?;
                self.link_metadata(h, dir.as_fd(), base)?;
                rfs::chmodat(&dir, base, mode_of(h), AtFlags::empty())
                    .map_err(io_err(h, "setting the mode"))
            }
        }
    }

    fn file(
        &mut self,
        h: &Header,
        dir: BorrowedFd<'_>,
        base: &[u8],
        data: &mut dyn Read,
    ) -> Result<()> {
        let fd = rfs::openat(
            dir,
            base,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io_err(h, "creating the file"))?;
        let mut file = std::fs::File::from(fd);
        let mut written = 0u64;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(unwrap_io(Error::Read(e))),
            };
            file.write_all(&self.buf[..n]).map_err(|e| Error::EntryIo {
                path: h.display_path(),
                op: "writing the file",
                source: e,
            })?;
            written += n as u64;
        }
        self.stats.files += 1;
        self.stats.bytes += written;
        self.fd_metadata(h, file.as_fd())
    }

    fn hardlink(&mut self, h: &Header, dir: BorrowedFd<'_>, base: &[u8]) -> Result<()> {
        let target =
            clean(&h.link).map_err(|_| entry_err(h, "its hardlink target leaves the root"))?;
        let Some((&tbase, tparent)) = target.split_last() else {
            return Err(entry_err(h, "a hardlink to the root"));
        };
        let tdir = match self.resolve_dir(tparent) {
            Ok((d, _)) => d,
            Err(Errno::NOENT | Errno::NOTDIR) => {
                return Err(entry_err(
                    h,
                    format!(
                        "hardlink target {:?} is not extracted",
                        String::from_utf8_lossy(&h.link)
                    ),
                ));
            }
            Err(e) => return Err(io_err(h, "resolving the hardlink target")(e)),
        };
        match rfs::linkat(&tdir, tbase, dir, base, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::NOENT) => Err(entry_err(
                h,
                format!(
                    "hardlink target {:?} is not extracted",
                    String::from_utf8_lossy(&h.link)
                ),
            )),
            Err(Errno::PERM) => Err(entry_err(h, "hardlink target is a directory")),
            Err(e) => Err(io_err(h, "creating the hardlink")(e)),
        }
    }

    /// Owner, mode, times and xattrs through an open descriptor.
    fn fd_metadata(&self, h: &Header, fd: BorrowedFd<'_>) -> Result<()> {
        if self.owners {
            let (uid, gid) = ids(h)?;
            rfs::fchown(fd, Some(uid), Some(gid)).map_err(io_err(h, "setting the owner"))?;
        }
        // After chown, which clears setuid and setgid.
        rfs::fchmod(fd, mode_of(h)).map_err(io_err(h, "setting the mode"))?;
        for (name, value) in &h.xattrs {
            rfs::fsetxattr(fd, &name[..], value, rfs::XattrFlags::empty())
                .map_err(io_err(h, "setting an extended attribute"))?;
        }
        rfs::futimens(fd, &times(h)).map_err(io_err(h, "setting the times"))
    }

    /// Owner and times of a symlink or node, without following it.
    fn link_metadata(&self, h: &Header, dir: BorrowedFd<'_>, base: &[u8]) -> Result<()> {
        if self.owners {
            let (uid, gid) = ids(h)?;
            rfs::chownat(dir, base, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io_err(h, "setting the owner"))?;
        }
        rfs::utimensat(dir, base, &times(h), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err(h, "setting the times"))
    }

    /// Directory metadata, deepest first, once every child is in place.
    fn finish_dirs(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        let mut done: HashSet<&[u8]> = HashSet::new();
        // Reverse order: children before parents, and of two entries for
        // one directory the later one wins.
        for (path, h) in dirs.iter().rev() {
            if !done.insert(path) {
                continue;
            }
            // The recorded paths are real paths: a symlink anywhere on the way
            // now means a later entry replaced a directory, so skip it.
            let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let opened = match rfs::openat2(
                &self.root,
                &path[..],
                flags,
                Mode::empty(),
                ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
            ) {
                Err(Errno::NOSYS) => self.open_in_root(path, flags),
                other => other,
            };
            let fd = match opened {
                Ok(fd) => fd,
                // Replaced or removed later in the same layer.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(io_err(h, "opening the directory")(e)),
            };
            self.fd_metadata(h, fd.as_fd())?;
        }
        Ok(())
    }

    /// Records a real path (no symlinks in it) and its ancestors as written
    /// by this layer.
    fn mark_created(&mut self, real: &[u8]) {
        self.created.insert_with_ancestors(real);
    }

    /// Opens the directory `parent` inside the root; creates missing ones
    /// (0755, as Docker does) when `create`, else returns `None` if missing.
    fn open_parent(
        &mut self,
        h: &Header,
        parent: &[&[u8]],
        create: bool,
    ) -> Result<Option<(OwnedFd, Vec<u8>)>> {
        match self.resolve_dir(parent) {
            Ok(found) => return Ok(Some(found)),
            Err(Errno::NOENT) if create => {}
            // Nothing to delete under a parent that does not resolve.
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) if !create => return Ok(None),
            Err(Errno::NOTDIR) => return Err(entry_err(h, "a parent of it is not a directory")),
            Err(e) => return Err(io_err(h, "opening its parent directory")(e)),
        }
        let mut dir = self.root.try_clone().map_err(|e| Error::EntryIo {
            path: h.display_path(),
            op: "opening the root",
            source: e,
        })?;
        let mut real = Vec::new();
        for i in 0..parent.len() {
            match self.resolve_dir(&parent[..=i]) {
                Ok((fd, r)) => (dir, real) = (fd, r),
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(&dir, parent[i], Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err(h, "creating a parent directory")(e)),
                    }
                    (dir, real) = match self.resolve_dir(&parent[..=i]) {
                        Ok(found) => found,
                        // It exists, yet does not resolve: a dangling symlink.
                        Err(Errno::NOENT) => {
                            return Err(entry_err(
                                h,
                                "a parent of it is a symlink to a missing directory",
                            ));
                        }
                        Err(e) => return Err(io_err(h, "opening a parent directory")(e)),
                    };
                    // mkdirat applied the umask: parents are 0755, as Docker's.
                    rfs::fchmod(&dir, Mode::from_raw_mode(0o755))
                        .map_err(io_err(h, "setting a parent's mode"))?;
                    self.mark_created(&real);
                }
                Err(Errno::NOTDIR) => {
                    return Err(entry_err(h, "a parent of it is not a directory"));
                }
                Err(e) => return Err(io_err(h, "opening a parent directory")(e)),
            }
        }
        Ok(Some((dir, real)))
    }

    /// Opens a directory inside the root and returns it with its real path
    /// (the path with every symlink resolved, relative to the root).
    fn resolve_dir(&self, parts: &[&[u8]]) -> std::result::Result<(OwnedFd, Vec<u8>), Errno> {
        if parts.is_empty() {
            return Ok((self.root.try_clone().map_err(|_| Errno::MFILE)?, Vec::new()));
        }
        let path = join(parts);
        // Usually there is no symlink on the way: then the path is real.
        match rfs::openat2(
            &self.root,
            &path[..],
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
        ) {
            Ok(fd) => return Ok((fd, path)),
            Err(Errno::LOOP | Errno::NOSYS) => {}
            Err(e) => return Err(e),
        }
        let fd = self.open_in_root(&path, OFlags::DIRECTORY | OFlags::RDONLY)?;
        let real = self.real_path(&fd).unwrap_or(path);
        Ok((fd, real))
    }

    /// Where `fd` is, relative to the root, from `/proc/self/fd`.
    fn real_path(&self, fd: &OwnedFd) -> Option<Vec<u8>> {
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        let of = |fd: i32| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
        let root = of(self.root.as_raw_fd())?;
        let dir = of(fd.as_raw_fd())?;
        let rel = dir.strip_prefix(&root).ok()?;
        Some(rel.as_os_str().as_bytes().to_vec())
    }

    /// `openat2(root, path, RESOLVE_IN_ROOT)`; without openat2, a walk that
    /// refuses symlinks.
    fn open_in_root(&self, path: &[u8], flags: OFlags) -> std::result::Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC;
        match rfs::openat2(
            &self.root,
            path,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::NOSYS) => {}
            other => return other,
        }
        let mut dir = self.root.try_clone().map_err(|_| Errno::MFILE)?;
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let f = if last {
                flags | OFlags::NOFOLLOW
            } else {
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC
            };
            dir = rfs::openat(&dir, *c, f, Mode::empty())?;
        }
        Ok(dir)
    }

    /// OCI opaque directory: remove what lower layers have under `dir`
    /// except what this layer wrote (and the ancestors of what it wrote).
    fn prune(&mut self, h: &Header, dir: BorrowedFd<'_>, prefix: &mut Vec<u8>) -> Result<()> {
        let names = list(dir).map_err(io_err(h, "listing the opaque directory"))?;
        for name in names {
            let len = prefix.len();
            prefix.extend_from_slice(&name);
            let keep = self.created.contains(prefix.as_slice());
            if !keep {
                self.remove(h, dir, &name)?;
            } else if let Ok(sub) = rfs::openat(
                dir,
                &name[..],
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                prefix.push(b'/');
                self.prune(h, sub.as_fd(), prefix)?;
            }
            prefix.truncate(len);
        }
        Ok(())
    }

    /// Removes `name` in `dir` (a whole tree for a directory), never
    /// following symlinks and never crossing into another file system.
    fn remove(&self, h: &Header, dir: BorrowedFd<'_>, name: &[u8]) -> Result<()> {
        match rfs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::ISDIR | Errno::PERM) => {}
            Err(e) => return Err(io_err(h, "removing an existing file")(e)),
        }
        let sub = match rfs::openat(
            dir,
            name,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io_err(h, "opening a directory to remove")(e)),
        };
        let st = rfs::fstat(&sub).map_err(io_err(h, "inspecting a directory to remove"))?;
        if st.st_dev != self.root_dev {
            return Err(entry_err(h, "refusing to delete across a mount point"));
        }
        for child in list(sub.as_fd()).map_err(io_err(h, "listing a directory to remove"))? {
            self.remove(h, sub.as_fd(), &child)?;
        }
        match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err(h, "removing an existing directory")(e)),
        }
    }
}

/// `parent/name`, or `name` at the root.
fn child_path(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        name.to_vec()
    } else {
        [parent, b"/", name].concat()
    }
}

/// The names in a directory, without `.` and `..`.
fn list(dir: BorrowedFd<'_>) -> std::result::Result<Vec<Vec<u8>>, Errno> {
    let fd = rfs::openat(
        dir,
        ".",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

fn mode_of(h: &Header) -> Mode {
    Mode::from_raw_mode(h.mode & 0o7777)
}

fn ids(h: &Header) -> Result<(rfs::Uid, rfs::Gid)> {
    let uid =
        u32::try_from(h.uid).map_err(|_| entry_err(h, format!("uid {} is out of range", h.uid)))?;
    let gid =
        u32::try_from(h.gid).map_err(|_| entry_err(h, format!("gid {} is out of range", h.gid)))?;
    // SAFETY-free: from_raw only wraps the number.
    Ok((rfs::Uid::from_raw(uid), rfs::Gid::from_raw(gid)))
}

fn times(h: &Header) -> Timestamps {
    let t = rfs::Timespec {
        tv_sec: h.mtime,
        tv_nsec: i64::from(h.mtime_nsec),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}
