//! Helpers for pluginctl's own tests. Never a dependency of a shipped crate.
//!
//! It will hold layer builders from a compact text description and the hostile
//! in-process registry; the crates that need them do not exist yet.
