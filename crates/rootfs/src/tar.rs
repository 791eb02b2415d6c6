//! One tar parser and one tar writer for everything in pluginctl.
//!
//! The reader understands POSIX ustar, PAX extended headers (`size`,
//! `path`, `linkpath`, `uid`, `gid`, `mtime`, `SCHILY.xattr.*`; global
//! headers are checked and ignored, as Docker ignores them), GNU long names and long links, base-256 numbers and v7
//! archives. Sparse files and multi-volume archives are rejected by name.
//! Every count and length it reads is bounded by [`Limits`].
//!
//! The writer produces ustar with PAX extensions where a value does not fit,
//! with fixed header names, so the same entries always give the same bytes.

mod read;
mod write;

pub(crate) use read::is_header;
pub use read::{Data, Reader};
pub use write::Writer;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A regular file (`0`, NUL, or contiguous `7`).
    File,
    /// A directory (`5`).
    Dir,
    /// A symbolic link (`2`).
    Symlink,
    /// A hard link to an earlier entry (`1`).
    Hardlink,
    /// A character device (`3`).
    CharDevice,
    /// A block device (`4`).
    BlockDevice,
    /// A named pipe (`6`).
    Fifo,
}

impl Kind {
    /// The tar type flag.
    pub fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Hardlink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        }
    }

    /// Whether entries of this kind carry data.
    pub fn has_data(self) -> bool {
        self == Kind::File
    }
}

/// One entry's metadata, with every extension already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as the archive gives it (bytes; not yet cleaned).
    pub path: Vec<u8>,
    /// What the entry is.
    pub kind: Kind,
    /// Permission bits, setuid, setgid and sticky included (`0o7777`).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Bytes of data (0 for everything but regular files).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Sub-second part of the modification time (from PAX).
    pub mtime_nsec: u32,
    /// The target of a symlink or hardlink.
    pub link: Vec<u8>,
    /// Device major number.
    pub dev_major: u32,
    /// Device minor number.
    pub dev_minor: u32,
    /// Extended attributes, in archive order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Header {
    /// A header of the given kind and name, owned by 0:0, with mode 0644
    /// (0755 for directories) and time 0.
    pub fn new(kind: Kind, path: &[u8]) -> Header {
        Header {
            path: path.to_vec(),
            kind,
            mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
            link: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
        }
    }

    /// The name for messages.
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Bounds on what a reader accepts; every one has a clear error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in one archive.
    pub max_entries: u64,
    /// Bytes in a name or link target.
    pub max_path: usize,
    /// Bytes of one PAX or GNU long-name header's data.
    pub max_extension: u64,
    /// Bytes of archive read in all (headers, data and padding).
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: 4_000_000,
            max_path: 4096,
            max_extension: 1 << 20,
            max_bytes: 256 << 30,
        }
    }
}
