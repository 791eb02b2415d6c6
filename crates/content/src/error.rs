use std::io;
use std::path::PathBuf;

use pluginctl_oci::Digest;

/// What can go wrong in the content store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed on the named path.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done: `opening`, `writing`, `renaming`, …
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// No blob with that digest is in the store.
    #[error("blob {digest} not found")]
    NotFound {
        /// The digest asked for.
        digest: Digest,
    },
    /// Another writer (in this or another process) holds the reference.
    #[error("ingest {reference:?} is busy: another writer holds it")]
    Busy {
        /// The ingest reference.
        reference: String,
    },
    /// The bytes written do not hash to the expected digest.
    #[error("digest mismatch for ingest {reference:?}: expected {expected}, found {found}")]
    DigestMismatch {
        /// The ingest reference.
        reference: String,
        /// The digest the caller expected.
        expected: Digest,
        /// The digest of what was written.
        found: Digest,
    },
    /// The number of bytes written is not the expected size.
    #[error("size mismatch for ingest {reference:?}: expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// The ingest reference.
        reference: String,
        /// The size the caller expected.
        expected: u64,
        /// The bytes written.
        found: u64,
    },
    /// The caller's source failed while being copied into an ingest.
    #[error("reading the source of ingest {reference:?}")]
    Source {
        /// The ingest reference.
        reference: String,
        /// The source's error.
        #[source]
        source: io::Error,
    },
    /// A write would take the ingest past its declared total size.
    #[error("ingest {reference:?} would exceed its total of {total} bytes")]
    ExceedsTotal {
        /// The ingest reference.
        reference: String,
        /// The declared total.
        total: u64,
    },
    /// A resumed ingest was started with another total size.
    #[error("ingest {reference:?} was started for {stored} bytes, not {requested}")]
    TotalMismatch {
        /// The ingest reference.
        reference: String,
        /// The total recorded when the ingest started.
        stored: u64,
        /// The total asked for now.
        requested: u64,
    },
    /// A blob is larger than the caller's limit.
    #[error("blob {digest} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The caller's limit.
        limit: u64,
    },
    /// A stored blob no longer hashes to its name.
    #[error("blob {expected} is corrupt: its content hashes to {found}")]
    Corrupt {
        /// The blob's name.
        expected: Digest,
        /// What its bytes hash to now.
        found: Digest,
    },
    /// The ingest directory of a reference holds another reference (a hash
    /// collision, or a tampered store).
    #[error("ingest directory {} belongs to {found:?}, not {reference:?}", path.display())]
    ReferenceCollision {
        /// The ingest directory.
        path: PathBuf,
        /// The reference asked for.
        reference: String,
        /// The reference recorded there.
        found: String,
    },
    /// The data file holds another number of bytes than were written.
    #[error("ingest {reference:?} holds {on_disk} bytes on disk, but {written} were written")]
    Inconsistent {
        /// The ingest reference.
        reference: String,
        /// Bytes in the data file.
        on_disk: u64,
        /// Bytes the writer accepted.
        written: u64,
    },
    /// The ingest was removed (by `abort` or gc) while its writer ran.
    #[error("ingest {reference:?} was removed while it was being written")]
    IngestLost {
        /// The ingest reference.
        reference: String,
    },
    /// A blob that a descriptor calls a manifest or index does not parse as
    /// one; gc stops rather than sweep what it points at.
    #[error("blob {digest} is not a valid manifest")]
    BadManifest {
        /// The blob.
        digest: Digest,
        /// Why it does not parse.
        #[source]
        source: pluginctl_oci::Error,
    },
    /// An ingest reference must be non-empty text without NUL or newline.
    #[error("invalid ingest reference {0:?}: it must be non-empty, without NUL or newline")]
    InvalidReference(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the operation and path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_owned(),
            source,
        })
    }
}
