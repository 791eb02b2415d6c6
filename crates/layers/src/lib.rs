//! The layer store of pluginctl, in the manner of containers/storage's:
//! layers identified by their OCI ChainID, so identical stacks are shared
//! by construction, each extracted once in overlay form and kept with a
//! tar-split that rebuilds its exact tar.
//!
//! - [`Store::apply`]: the only way to fill a layer: one streaming pass
//!   over the blob that decompresses, checks the diff_id, writes the
//!   tar-split, collects the UIDs and GIDs its entries own and extracts
//!   through `pluginctl-rootfs`'s confined extractor, whiteouts in
//!   overlayfs form (0:0 character devices, `trusted.overlay.opaque=y`).
//!   Crash-safe: the record is saved `incomplete` first and completed
//!   last, and the next writer removes what a dead process left. Two
//!   processes applying one layer end with one layer, both succeeding.
//! - [`Store::diff`]: the layer's uncompressed tar, byte for byte (its
//!   digest is the diff_id), from the tar-split and the files, in constant
//!   memory; a file changed on disk is an error naming it.
//! - [`Store::check`]: changed, missing and added paths, by name.
//! - Lookups by ChainID or a unique prefix, diff_id or compressed digest
//!   ([`Store::get`]); [`Store::delete`] (refused under a child) and
//!   [`Store::gc`].
//! - [`Store::mount`] and [`Store::unmount`]: a chain read-only at a path,
//!   with holder counts kept in a directory the caller gives (tmpfs, so a
//!   reboot clears them), corrected when a mount vanished, safe against a
//!   kill between the mount and its record; one `lowerdir+` per layer
//!   (kernel 6.8+), so a 300-layer chain mounts.
//!
//! `pluginctl-manager` keeps plugins' rootfs here (a plugin record names
//! its chain's top layer) and chooses a flattened rootfs per plugin where
//! overlay cannot be used; `examples/apply.rs` applies an OCI layout's
//! layers, as `podman pull oci:` does.
//!
//! ```no_run
//! # fn demo() -> Result<(), pluginctl_layers::Error> {
//! use pluginctl_layers::Store;
//! use pluginctl_oci::Digest;
//!
//! let store = Store::open(std::path::Path::new("/var/lib/pluginctl/layers"))?;
//! let diff_id = Digest::parse(&format!("sha256:{}", "0".repeat(64))).expect("a digest");
//! let blob = std::fs::File::open("layer.tar.gz").expect("a layer");
//! let layer = store.apply(None, &diff_id, blob, None)?;
//! let mut tar = Vec::new();
//! store.diff(&layer.id.to_string(), &mut tar)?;
//! assert!(store.check(&layer.id.to_string())?.is_clean());
//! # Ok(()) }
//! ```

mod mount;
mod shadow;
mod split;
mod store;

use std::path::{Path, PathBuf};

use pluginctl_oci::Digest;

pub use mount::Mounted;
pub use split::{Record, SplitReader};
pub use store::{CheckReport, Compressed, Layer, Store};

/// A layer's ChainID: its diff_id for the first layer, else the sha256 of
/// the parent's ChainID, a space and its diff_id (the OCI image spec).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of_bytes(format!("{p} {diff_id}").as_bytes()),
    }
}

/// What can go wrong in the layer store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No layer by that name.
    #[error("no layer {0}")]
    NotFound(String),
    /// A prefix that names several layers.
    #[error("layer prefix {0} is ambiguous: {1}")]
    Ambiguous(String, String),
    /// The uncompressed layer is not what its diff_id says.
    #[error("the layer's uncompressed digest is {actual}, not its diff_id {expected}")]
    DiffIdMismatch {
        /// The diff_id.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A file of the layer is not what was applied.
    #[error("layer {layer}: {path} {why}")]
    Changed {
        /// The layer.
        layer: String,
        /// The file, inside the layer.
        path: String,
        /// How it differs.
        why: String,
    },
    /// The layer is needed by another.
    #[error("{0}")]
    InUse(String),
    /// A record or tar-split that does not read.
    #[error("{0}")]
    Corrupt(String),
    /// Bad input (an owner out of range).
    #[error("{0}")]
    Invalid(String),
    /// Reading or extracting the layer failed.
    #[error(transparent)]
    Rootfs(#[from] pluginctl_rootfs::Error),
    /// Writing the rebuilt tar failed.
    #[error("writing the layer's tar")]
    Write(#[source] std::io::Error),
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
