//! Running a Docker managed plugin under a real OCI runtime.
//!
//! - [`spec::build`]: the OCI runtime spec dockerd builds for a plugin, as a
//!   pure function of its config, settings and paths, held against the
//!   spec Docker 20.10 wrote.
//! - [`run`]: the bundle (an overlay over the plugin's read-only lower
//!   directories: its layer chain or its flattened rootfs), the runtime's `run`, readiness on the socket with the exit
//!   status and log tail when it does not come, a stop that leaves nothing
//!   mounted.
//! - [`supervise`]: the per-plugin supervisor (lease, bounded log, restarts
//!   with backoff and a cap, SIGTERM to stop) and its report protocol.
//! - [`activate`]: `Plugin.Activate` and the `Implements` check.
//! - [`publish`]: the socket where engines discover legacy plugins, and a
//!   podman drop-in for a volume driver.
//! - [`proxy`]: the proxy that publishes a volume driver with its paths
//!   rewritten to the host's, as Docker does for its managed plugins, and
//!   that counts the volumes engines have mounted.
//!
//! ```
//! use pluginctl_oci::{PluginConfig, PluginSettings};
//! use pluginctl_runtime::spec::{self, Paths};
//!
//! let config = PluginConfig::from_slice(
//!     br#"{"Entrypoint":["/plugin"],"Network":{"Type":"host"},"Interface":{"Socket":"p.sock"}}"#,
//! )
//! .unwrap();
//! let paths = Paths {
//!     rootfs: "/var/lib/pluginctl/plugins/ID/rootfs".into(),
//!     socket_dir: "/run/pluginctl/ID".into(),
//!     propagated_mount: "/var/lib/pluginctl/plugins/ID/propagated-mount".into(),
//!     logging: None,
//! };
//! let s = spec::build(&config, &PluginSettings::default(), &paths, &|p| Err(format!("no {p}"))).unwrap();
//! assert_eq!(s["process"]["args"][0], "/plugin");
//! // Host networking: no network namespace.
//! assert!(s["linux"]["namespaces"].as_array().unwrap().iter().all(|n| n["type"] != "network"));
//! ```

pub mod activate;
mod http;
pub mod mounts;
pub mod proxy;
pub mod publish;
pub mod run;
pub mod spec;
pub mod supervise;
