//! The OCI runtime spec dockerd builds for a plugin: a pure function of the
//! plugin's config, its settings and a few paths.
//!
//! It follows moby's `plugin/v2` `InitSpec` over `oci.DefaultSpec` (20.10):
//! Docker's default capabilities, mounts, masked and read-only paths and
//! device rules; namespaces mount, network, uts, pid, ipc minus those the
//! config shares with the host; mounts in Docker's order — the defaults,
//! the config's mounts with the settings' sources, `<exec-root>/<id>` at
//! `/run/docker/plugins`, `/etc/hosts` and `/etc/resolv.conf` read-only when
//! a network type is set, and last the propagated mount (`rshared`, with
//! `rootfsPropagation` `rshared`); `args` = entrypoint + settings args;
//! `env` = PATH + settings env; `cwd` = WorkDir or `/`.

use std::fmt;
use std::path::PathBuf;

use pluginctl_oci::{PluginConfig, PluginSettings};
use serde_json::{Value, json};

/// Where the plugin's pieces are on the host.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The rootfs the runtime starts in.
    pub rootfs: PathBuf,
    /// `<exec-root>/<id>`: mounted at `/run/docker/plugins`, where the
    /// plugin creates its socket.
    pub socket_dir: PathBuf,
    /// `<root>/plugins/<id>/propagated-mount`, when the config asks for one.
    pub propagated_mount: PathBuf,
    /// Where dockerd makes the FIFOs it names to a legacy log driver
    /// (`/run/docker/logging`), bound at the same path in the plugin: set
    /// for a published log driver, which is told host paths.
    pub logging: Option<PathBuf>,
}

/// Where dockerd creates the FIFOs of legacy log drivers.
pub const LOGGING_DIR: &str = "/run/docker/logging";

/// A config the spec cannot be built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

/// The `PATH` Docker gives a Linux process.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capabilities (moby `oci/caps.DefaultCapabilities`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn str_vec(v: &[&str]) -> Vec<Value> {
    v.iter().map(|s| Value::String((*s).to_owned())).collect()
}

fn default_mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777"]}),
    ]
}

fn default_device_rules() -> Vec<Value> {
    let allow = |major: u32, minor: u32| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"});
    vec![
        json!({"allow": false, "access": "rwm"}),
        allow(1, 5),
        allow(1, 3),
        allow(1, 9),
        allow(1, 8),
        allow(5, 0),
        allow(5, 1),
        json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}),
    ]
}

/// A device node on the host, for the spec's `linux.devices` and its
/// cgroup rule: `(type, major, minor, mode, uid, gid)`.
pub type HostDevice = (char, u64, u64, u32, u32, u32);

/// Builds the spec. `device` looks a settings device path up on the host
/// (a real lookup in production; a table in tests).
pub fn build(
    config: &PluginConfig,
    settings: &PluginSettings,
    paths: &Paths,
    device: &dyn Fn(&str) -> Result<HostDevice, String>,
) -> Result<Value, SpecError> {
    let mut namespaces = vec!["mount", "network", "uts", "pid", "ipc"];
    let net = config.network.kind.as_str();
    if net == "host" {
        namespaces.retain(|n| *n != "network");
    }
    if config.pid_host {
        namespaces.retain(|n| *n != "pid");
    }
    if config.ipc_host {
        namespaces.retain(|n| *n != "ipc");
    }

    // The config's mounts, with the sources the settings chose; one on a
    // default /dev/ destination replaces that default.
    let user_mounts = settings.mounts.as_ref().or(config.mounts.as_ref());
    let user_dests: Vec<&str> = user_mounts
        .into_iter()
        .flatten()
        .map(|m| m.destination.as_str())
        .collect();
    let mut mounts: Vec<Value> = default_mounts()
        .into_iter()
        .filter(|m| {
            let dest = m["destination"].as_str().unwrap_or_default();
            !(dest.starts_with("/dev/") && user_dests.contains(&dest))
        })
        .collect();
    for m in user_mounts.into_iter().flatten() {
        let source = m.source.as_ref().ok_or_else(|| {
            SpecError(format!(
                "mount {:?} (to {}) has no source: set it with `pluginctl set NAME {}.source=PATH`",
                m.name, m.destination, m.name
            ))
        })?;
        let mut v = json!({"destination": m.destination, "type": m.kind, "source": source});
        if let Some(o) = &m.options {
            v["options"] = json!(o);
        }
        mounts.push(v);
    }
    mounts.push(json!({
        "destination": "/run/docker/plugins",
        "type": "bind",
        "source": paths.socket_dir.to_string_lossy(),
        "options": ["rbind", "rshared"],
    }));
    if let Some(logging) = &paths.logging {
        mounts.push(json!({
            "destination": logging.to_string_lossy(),
            "type": "bind",
            "source": logging.to_string_lossy(),
            "options": ["rbind", "rw"],
        }));
    }
    if !net.is_empty() {
        for f in ["/etc/hosts", "/etc/resolv.conf"] {
            mounts.push(
                json!({"destination": f, "type": "bind", "source": f, "options": ["rbind", "ro"]}),
            );
        }
    }
    let mut linux = json!({
        "resources": {"devices": default_device_rules()},
        "namespaces": namespaces.iter().map(|n| json!({"type": n})).collect::<Vec<_>>(),
        "maskedPaths": str_vec(&[
            "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        ]),
        "readonlyPaths": str_vec(&["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]),
    });
    if !config.propagated_mount.is_empty() {
        mounts.push(json!({
            "destination": config.propagated_mount,
            "type": "bind",
            "source": paths.propagated_mount.to_string_lossy(),
            "options": ["rbind", "rw", "rshared"],
        }));
        linux["rootfsPropagation"] = json!("rshared");
    }
    if config.linux.allow_all_devices {
        linux["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    let settings_devices = settings.devices.as_ref().or(config.linux.devices.as_ref());
    let mut devices = Vec::new();
    for d in settings_devices.into_iter().flatten() {
        let Some(path) = &d.path else { continue };
        let (kind, major, minor, mode, uid, gid) =
            device(path).map_err(|e| SpecError(format!("device {path}: {e}")))?;
        devices.push(json!({
            "path": path, "type": kind.to_string(), "major": major, "minor": minor,
            "fileMode": mode, "uid": uid, "gid": gid,
        }));
        if let Some(rules) = linux["resources"]["devices"].as_array_mut() {
            rules.push(json!({"allow": true, "type": kind.to_string(), "major": major, "minor": minor, "access": "rwm"}));
        }
    }
    if !devices.is_empty() {
        linux["devices"] = json!(devices);
    }

    let mut env = vec![format!("PATH={DEFAULT_PATH}")];
    env.extend(settings.env.iter().flatten().cloned());
    let mut args: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    args.extend(settings.args.iter().flatten().cloned());
    if args.is_empty() {
        return Err(SpecError("the plugin has no Entrypoint".to_owned()));
    }
    let cwd = if config.work_dir.is_empty() {
        "/".to_owned()
    } else {
        config.work_dir.clone()
    };
    let extra: Vec<String> = config.linux.capabilities.clone().unwrap_or_default();
    let mut full: Vec<String> = DEFAULT_CAPABILITIES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    full.extend(extra.iter().cloned());

    Ok(json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "user": {"uid": config.user.uid, "gid": config.user.gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                "bounding": full,
                "effective": full,
                "inheritable": extra,
                "permitted": full,
            },
        },
        "root": {"path": paths.rootfs.to_string_lossy()},
        "mounts": mounts,
        "linux": linux,
    }))
}
