//! Per-blob progress events, for a CLI to draw bars from.

use std::sync::Arc;
use std::time::Duration;

use pluginctl_oci::Digest;

/// Something that happened to one blob (or one request, for retries).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A transfer began; `offset` bytes were already there (a resume).
    Started {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// Bytes already held before this transfer.
        offset: u64,
    },
    /// Bytes moved (at most one event per MiB, and one at the end).
    Bytes {
        /// The blob.
        digest: Digest,
        /// Bytes done so far, including a resumed prefix.
        done: u64,
        /// The blob's size.
        total: u64,
    },
    /// The blob arrived (or was uploaded) and verified.
    Done {
        /// The blob.
        digest: Digest,
    },
    /// Nothing to do: the destination already has the blob.
    Exists {
        /// The blob.
        digest: Digest,
    },
    /// Pushed by a cross-repository mount, without moving bytes.
    Mounted {
        /// The blob.
        digest: Digest,
        /// The repository it was mounted from.
        from: String,
    },
    /// A request failed and will be tried again after `delay`.
    Retried {
        /// What was being done.
        what: String,
        /// The retry number (1 for the first retry).
        attempt: u32,
        /// Why the attempt failed.
        reason: String,
        /// How long the client waits before the retry.
        delay: Duration,
    },
    /// A host of the registry failed (a mirror without the content, down,
    /// or with a bad certificate): the request goes to the next host.
    HostFailed {
        /// What was being done.
        what: String,
        /// The host that failed (its URL).
        host: String,
        /// Why.
        reason: String,
    },
    /// A mirror (not the registry itself) answered a tag's resolution.
    Served {
        /// What was asked.
        what: String,
        /// The mirror (its URL).
        host: String,
    },
}

/// A progress callback.
pub(crate) type ProgressFn = Arc<dyn Fn(&Event) + Send + Sync>;

/// Bytes between two [`Event::Bytes`].
pub(crate) const BYTES_EVENT_STEP: u64 = 1 << 20;
