//! Writing a layer from a directory: deterministic, hashed in one pass.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use pluginctl_oci::{Digest, Digester, MediaType};

use crate::compress::{ParallelGzip, zstd_encoder};
use crate::tar::{Header, Kind, Writer};
use crate::{Error, Result};

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip at a level from 0 to 9 (6 is Go's default, which Docker uses).
    Gzip(u32),
    /// zstd at a level from 1 to 22.
    Zstd(i32),
}

impl Compression {
    /// gzip at level 6.
    pub const GZIP: Compression = Compression::Gzip(6);
    /// zstd at level 3.
    pub const ZSTD: Compression = Compression::Zstd(3);

    /// The Docker (gzip, tar) or OCI (zstd) layer media type.
    pub fn media_type(self) -> MediaType {
        match self {
            Compression::None => MediaType::DockerLayer,
            Compression::Gzip(_) => MediaType::DockerLayerGzip,
            Compression::Zstd(_) => MediaType::OciLayerZstd,
        }
    }
}

/// What writing a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The digest of the uncompressed tar (the OCI `diff_id`).
    pub diff_id: Digest,
    /// The digest of the bytes written.
    pub digest: Digest,
    /// Bytes written.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Entries in the tar.
    pub entries: u64,
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    digester: Digester,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the tree under `dir` as a layer to `out`.
///
/// Deterministic: entries sorted by name bytes, numeric owners, modes,
/// whole-second modification times and no access or change times, only the
/// `security.capability` extended attribute (as Docker), fixed gzip header.
/// The same tree gives the same digests on any machine. Sockets are left
/// out, as Docker leaves them out. Compression uses every core (`threads`).
pub fn write_layer(
    dir: &Path,
    out: impl Write,
    compression: Compression,
    threads: usize,
) -> Result<LayerInfo> {
    write_layer_tee(dir, out, compression, threads, None)
}

/// [`write_layer`], also handing the uncompressed tar — the very bytes the
/// `diff_id` is computed over — to `tee` (an extraction on another thread,
/// say, so that a rootfs is made from the layer without decompressing it).
pub fn write_layer_tee(
    dir: &Path,
    out: impl Write,
    compression: Compression,
    threads: usize,
    tee: Option<&mut dyn Write>,
) -> Result<LayerInfo> {
    let out = Hashing {
        inner: out,
        digester: Digester::default(),
    };
    let werr = |e: io::Error| Error::Io {
        op: "writing the layer for",
        path: dir.to_owned(),
        source: e,
    };
    let (entries, diff, out) = match compression {
        Compression::None => {
            let (entries, diff, w) = write_tar(dir, Tee { main: out, tee })?;
            (entries, diff, w.main)
        }
        Compression::Gzip(level) => {
            let gz = Tee {
                main: ParallelGzip::new(out, level, threads),
                tee,
            };
            let (entries, diff, gz) = write_tar(dir, gz)?;
            (entries, diff, gz.main.finish().map_err(werr)?)
        }
        Compression::Zstd(level) => {
            let enc = Tee {
                main: zstd_encoder(out, level, threads).map_err(werr)?,
                tee,
            };
            let (entries, diff, z) = write_tar(dir, enc)?;
            (entries, diff, z.main.finish().map_err(werr)?)
        }
    };
    let size = out.digester.len();
    Ok(LayerInfo {
        diff_id: diff.0,
        uncompressed_size: diff.1,
        digest: out.digester.finish(),
        size,
        entries,
    })
}

/// Writes to `main`, and what was written to `tee` too.
struct Tee<'t, W> {
    main: W,
    tee: Option<&'t mut dyn Write>,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.main.write(buf)?;
        if let Some(t) = self.tee.as_mut() {
            t.write_all(&buf[..n])?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.main.flush()?;
        if let Some(t) = self.tee.as_mut() {
            t.flush()?;
        }
        Ok(())
    }
}

fn write_tar<W: Write>(dir: &Path, out: W) -> Result<(u64, (Digest, u64), W)> {
    let mut tar = Writer::new(Hashing {
        inner: out,
        digester: Digester::default(),
    });
    let mut walker = Walker {
        tar: &mut tar,
        links: HashMap::new(),
        entries: 0,
    };
    walker.dir(dir, &mut Vec::new())?;
    let entries = walker.entries;
    let h = tar.finish().map_err(|e| Error::Io {
        op: "writing the layer for",
        path: dir.to_owned(),
        source: e,
    })?;
    let len = h.digester.len();
    Ok((entries, (h.digester.finish(), len), h.inner))
}

struct Walker<'a, W: Write> {
    tar: &'a mut Writer<W>,
    /// First path of each multiply-linked inode.
    links: HashMap<(u64, u64), Vec<u8>>,
    entries: u64,
}

impl<W: Write> Walker<'_, W> {
    fn dir(&mut self, path: &Path, rel: &mut Vec<u8>) -> Result<()> {
        let ioe = |op: &'static str, p: &Path| {
            let p = p.to_owned();
            move |e: io::Error| Error::Io {
                op,
                path: p,
                source: e,
            }
        };
        let mut names: Vec<std::ffi::OsString> = fs::read_dir(path)
            .map_err(ioe("listing", path))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(ioe("listing", path))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = path.join(&name);
            let meta = fs::symlink_metadata(&child).map_err(ioe("inspecting", &child))?;
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink
            } else if ft.is_file() {
                Kind::File
            } else if ft.is_fifo() {
                Kind::Fifo
            } else if ft.is_char_device() {
                Kind::CharDevice
            } else if ft.is_block_device() {
                Kind::BlockDevice
            } else {
                // A socket: Docker leaves them out too.
                rel.truncate(len);
                continue;
            };
            let mut h = Header::new(kind, rel);
            h.mode = meta.mode() & 0o7777;
            h.uid = u64::from(meta.uid());
            h.gid = u64::from(meta.gid());
            h.mtime = meta.mtime();
            if let Some(cap) = capability(&child) {
                h.xattrs.push((b"security.capability".to_vec(), cap));
            }
            match kind {
                Kind::Dir => {
                    h.path.push(b'/');
                    self.append(&h, &mut io::empty(), &child)?;
                    self.dir(&child, rel)?;
                }
                Kind::Symlink => {
                    h.link = fs::read_link(&child)
                        .map_err(ioe("reading the link", &child))?
                        .as_os_str()
                        .as_bytes()
                        .to_vec();
                    self.append(&h, &mut io::empty(), &child)?;
                }
                Kind::CharDevice | Kind::BlockDevice => {
                    h.dev_major = rustix::fs::major(meta.rdev());
                    h.dev_minor = rustix::fs::minor(meta.rdev());
                    self.append(&h, &mut io::empty(), &child)?;
                }
                Kind::File
                    if meta.nlink() > 1 && self.links.contains_key(&(meta.dev(), meta.ino())) =>
                {
                    h.kind = Kind::Hardlink;
                    h.link.clone_from(&self.links[&(meta.dev(), meta.ino())]);
                    self.append(&h, &mut io::empty(), &child)?;
                }
                Kind::File => {
                    if meta.nlink() > 1 {
                        self.links.insert((meta.dev(), meta.ino()), rel.clone());
                    }
                    h.size = meta.len();
                    let f = File::options()
                        .read(true)
                        .custom_flags(libc_o_nofollow())
                        .open(&child)
                        .map_err(ioe("opening", &child))?;
                    let mut data = f.take(h.size);
                    self.append(&h, &mut data, &child)?;
                    // A file that grew while being read would be cut short
                    // silently by `take`; one that shrank fails in append.
                    let mut extra = [0u8; 1];
                    if data
                        .into_inner()
                        .read(&mut extra)
                        .map_err(ioe("reading", &child))?
                        != 0
                    {
                        return Err(Error::Io {
                            op: "reading",
                            path: child,
                            source: io::Error::other("the file changed while it was being read"),
                        });
                    }
                }
                _ => self.append(&h, &mut io::empty(), &child)?,
            }
            rel.truncate(len);
        }
        Ok(())
    }

    fn append(&mut self, h: &Header, data: &mut dyn Read, path: &Path) -> Result<()> {
        self.entries += 1;
        self.tar.append(h, data).map_err(|e| Error::Io {
            op: "adding to the layer",
            path: path.to_owned(),
            source: e,
        })
    }
}

fn libc_o_nofollow() -> i32 {
    i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0)
}

/// The file's `security.capability`, if it has one.
fn capability(path: &Path) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    let n = rustix::fs::lgetxattr(path, "security.capability", &mut buf).ok()?;
    Some(buf[..n].to_vec())
}
