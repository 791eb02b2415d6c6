//! A content-addressed blob store on disk, in the layout containerd's local
//! store uses:
//!
//! ```text
//! <dir>/blobs/<alg>/<hex>                    read-only, verified blobs
//! <dir>/ingest/<sha256 of ref>/data          bytes written so far
//!                              ref           the caller's ingest reference (also the lock)
//!                              total         the expected size, when known
//!                              updatedat     last write, RFC 3339 seconds
//! ```
//!
//! A blob becomes visible only by [`Writer::commit`], which fsyncs, checks
//! size and digest, and renames into place; a writer killed at any point
//! leaves an ingest that the next writer on the same reference resumes from
//! the stored offset. One writer per reference across processes (an `flock`
//! on the `ref` file); any number of readers. Hashing runs on a second
//! thread while the caller's thread writes, so ingest is as fast as hashing.
//!
//! ```
//! use std::io::Write;
//! use pluginctl_content::Store;
//! use pluginctl_oci::Digest;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//!
//! // Ingest under a reference of our choosing; a crash here could resume.
//! let mut w = store.writer("layer-1").unwrap();
//! w.write_all(b"hello ").unwrap();
//! drop(w); // an abandoned writer keeps what it wrote
//! let mut w = store.writer("layer-1").unwrap();
//! assert_eq!(w.offset(), 6);
//! w.write_all(b"world").unwrap();
//! let expected = Digest::of_bytes(b"hello world");
//! let digest = w.commit(Some(11), Some(&expected)).unwrap();
//! assert_eq!(digest, expected);
//!
//! // Read it back.
//! assert_eq!(store.read_all(&digest, 1024).unwrap(), b"hello world");
//! assert_eq!(store.info(&digest).unwrap().size, 11);
//! ```

mod error;
mod fsutil;
mod store;
mod writer;

pub use error::{Error, Result};
pub use store::{Corrupt, FsckReport, GcReport, Info, Status, Store};
pub use writer::Writer;
