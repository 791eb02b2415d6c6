//! The Docker managed-plugin lifecycle, outside dockerd.
//!
//! This is the facade of pluginctl: it composes the content store, the registry
//! client, the rootfs code, the privilege computation and the runtime into
//! `create`, `install`, `push`, `enable`, `upgrade` and `rm`, and re-exports
//! those crates as modules so that a user needs one dependency.
//!
//! The lifecycle itself lands with the plugin-manager issue; today the facade
//! only re-exports the crates that are real.

pub use pluginctl_content as content;
pub use pluginctl_oci as oci;
pub use pluginctl_rootfs as rootfs;
