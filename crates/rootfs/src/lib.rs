//! Tar layers to root filesystems and back.
//!
//! - [`tar`]: one streaming tar reader (ustar, PAX, GNU long names, bounded
//!   by [`tar::Limits`]) and a deterministic writer.
//! - [`decompress`]: plain tar, gzip or zstd, detected by magic bytes, with
//!   limits on decompressed size, ratio and zstd window.
//! - [`extract`]: applies layers to a directory without ever writing outside
//!   it, with OCI whiteouts (or, for one layer on its own, whiteouts in
//!   overlayfs form);
//! - [`remove`]: deletes a tree without crossing a mount;
//! - [`overlay`]: the one overlay mount (lower directories, an optional
//!   upper one; one `lowerdir+` per layer where the kernel has it).
//!
//! Synchronous `std::io`; everything takes `impl Read`, not store paths.
//!
//! ```
//! use pluginctl_rootfs::tar::{Header, Kind, Writer};
//! use pluginctl_rootfs::extract::{apply_layer, Options};
//!
//! // A one-file layer, then applied to an empty directory.
//! let mut w = Writer::new(Vec::new());
//! let mut h = Header::new(Kind::File, b"etc/motd");
//! h.size = 3;
//! w.append(&Header::new(Kind::Dir, b"etc/"), &mut std::io::empty()).unwrap();
//! w.append(&h, &mut &b"hi\n"[..]).unwrap();
//! let layer = w.finish().unwrap();
//!
//! let root = tempfile::tempdir().unwrap();
//! let stats = apply_layer(root.path(), &layer[..], &Options::default()).unwrap();
//! assert_eq!(stats.entries, 2);
//! assert_eq!(std::fs::read(root.path().join("etc/motd")).unwrap(), b"hi\n");
//! ```

use std::io;
use std::path::PathBuf;

pub mod compress;
pub mod context;
pub mod decompress;
pub mod extract;
pub mod flatten;
pub mod layer;
pub mod overlay;
mod path;
pub mod readahead;
pub mod remove;
pub mod tar;
pub mod whiteout;

/// What can go wrong reading or applying layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The archive is not valid tar.
    #[error("invalid tar at byte {offset}: {reason}")]
    Tar {
        /// Where in the (decompressed) stream.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Reading the layer failed.
    #[error("reading the layer")]
    Read(#[source] io::Error),
    /// The layer's compression is not one pluginctl reads.
    #[error("unknown layer compression: it starts with {0} (expected tar, gzip or zstd)")]
    UnknownCompression(String),
    /// The layer's media type is not a layer type pluginctl reads.
    #[error("unsupported layer media type {0}")]
    UnsupportedMediaType(String),
    /// A limit was reached.
    #[error("layer exceeds a limit: {0}")]
    Limit(String),
    /// An entry is refused (unsafe or invalid), named by its path in the tar.
    #[error("entry {path:?}: {reason}")]
    Entry {
        /// The entry's name as the tar gives it.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A file-system operation failed for an entry.
    #[error("entry {path:?}: {op}")]
    EntryIo {
        /// The entry's name as the tar gives it.
        path: String,
        /// What was being done.
        op: &'static str,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// A `docker plugin create` context lacks what it needs.
    #[error("{0}")]
    Context(String),
    /// A file-system operation failed on a path outside any entry.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error about one entry, named by its path in the tar.
pub(crate) fn entry_err(h: &tar::Header, reason: impl Into<String>) -> Error {
    Error::Entry {
        path: h.display_path(),
        reason: reason.into(),
    }
}
