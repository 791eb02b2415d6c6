//! Tar layers to root filesystems and back.
//!
//! This crate will hold confined extraction (nothing written outside the target
//! directory, whatever the tar says), OCI whiteouts, streaming layer flattening,
//! the split of a `docker plugin create` context, and deterministic layer
//! writing with gzip and zstd. It is synchronous and takes `impl Read`.
//!
//! Nothing is implemented yet: see the rootfs issue.
