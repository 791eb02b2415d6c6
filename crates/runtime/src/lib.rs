//! Running a Docker managed plugin under a real OCI runtime.
//!
//! Built so far: [`spec::build`], the OCI runtime spec dockerd builds for a
//! plugin, as a pure function of its config, settings and paths, held
//! against the spec Docker 20.10 wrote. Driving `runc`, the supervisor,
//! logs and readiness follow (the runtime issue).
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
//! };
//! let s = spec::build(&config, &PluginSettings::default(), &paths, &|p| Err(format!("no {p}"))).unwrap();
//! assert_eq!(s["process"]["args"][0], "/plugin");
//! // Host networking: no network namespace.
//! assert!(s["linux"]["namespaces"].as_array().unwrap().iter().all(|n| n["type"] != "network"));
//! ```

pub mod run;
pub mod spec;
