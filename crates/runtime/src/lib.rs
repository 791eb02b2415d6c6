//! Running a Docker managed plugin under a real OCI runtime.
//!
//! This crate will build the OCI runtime spec dockerd builds for a plugin, drive
//! `runc` (or another runtime), supervise the plugin process, capture its log,
//! wait until its socket answers and say exactly why when it does not.
//!
//! Nothing is implemented yet: see the runtime issue.
