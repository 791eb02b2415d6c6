//! The OCI distribution client of pluginctl.
//!
//! This crate will speak the OCI distribution API to real registries: resolve
//! references, stream verified blobs into a caller's sink with resume, push with
//! cross-repository mounts and chunked uploads, authenticate with Basic and
//! Bearer tokens, and report per-blob progress. It uses tokio for I/O but never
//! builds a runtime, and it does not know the content store.
//!
//! Nothing is implemented yet: see the registry issue.
