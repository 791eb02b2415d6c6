//! The privileges a Docker managed plugin asks for.
//!
//! This crate will be a pure function from a plugin config and its settings to
//! the privilege list Docker computes (network, host ipc and pid, mounts,
//! devices, capabilities), and the comparison of required against granted.
//!
//! Nothing is implemented yet: see the plugin-manager issue.
