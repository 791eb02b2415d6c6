//! Running a plugin under an OCI runtime (runc by default): the bundle
//! (an overlay over the plugin's layers or flattened rootfs, so they are
//! never written to), the
//! process in its own session, readiness on the plugin's socket, and a stop
//! that leaves nothing mounted.

use std::fs;
use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pluginctl_oci::{PluginConfig, PluginSettings};

use crate::spec::{self, HostDevice, Paths};

/// What went wrong running a plugin; one line, naming the plugin's paths.
#[derive(Debug)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

pub(crate) type Result<T> = std::result::Result<T, RunError>;

pub(crate) fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> RunError {
    RunError(format!("{what} {}: {e}", path.display()))
}

/// Where one plugin runs.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The plugin's ID (the runtime's container ID too).
    pub id: String,
    /// `<root>/plugins/<id>`: holds `upper/`, `work/` and
    /// `propagated-mount/` while it runs, and its log.
    pub plugin_dir: PathBuf,
    /// The plugin's read-only rootfs, top first: the overlay's lower
    /// directories (a layer chain, or one flattened rootfs). Never
    /// written.
    pub lowers: Vec<PathBuf>,
    /// `<exec-root>/<id>`: the bundle, the overlay mount, the socket dir.
    pub exec_dir: PathBuf,
    /// The runtime's state root (`runc --root`).
    pub state_root: PathBuf,
    /// The OCI runtime binary (`runc`, `crun`, a path).
    pub runtime: String,
    /// Where to publish the socket for engines that discover legacy
    /// plugins, and for podman, when asked to.
    pub publish: Option<crate::publish::Publish>,
}

impl Layout {
    /// Where the plugin's socket appears on the host.
    pub fn socket(&self, config: &PluginConfig) -> PathBuf {
        self.exec_dir.join("socket").join(&config.interface.socket)
    }

    /// The plugin's log.
    pub fn log(&self) -> PathBuf {
        self.plugin_dir.join("plugin.log")
    }

    /// The supervisor's lease: a file locked for as long as a supervisor
    /// runs this plugin, holding its PID (`<exec-root>/supervisors/<id>.pid`).
    pub fn lease(&self) -> PathBuf {
        self.exec_dir
            .parent()
            .unwrap_or(&self.exec_dir)
            .join("supervisors")
            .join(format!("{}.pid", self.id))
    }

    /// Which volumes engines have mounted through the published socket:
    /// beside the lease, so that a new supervisor finds them.
    pub fn mounts_file(&self) -> PathBuf {
        self.lease().with_extension("mounts")
    }

    pub(crate) fn rootfs_mount(&self) -> PathBuf {
        self.exec_dir.join("rootfs")
    }

    pub(crate) fn propagated(&self) -> PathBuf {
        self.plugin_dir.join("propagated-mount")
    }

    fn runtime(&self) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.state_root);
        c
    }
}

/// A host device for the spec: type, numbers, mode and owner from `stat`.
fn host_device(path: &str) -> std::result::Result<HostDevice, String> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let m = fs::metadata(path).map_err(|e| e.to_string())?;
    let kind = if m.file_type().is_char_device() {
        'c'
    } else if m.file_type().is_block_device() {
        'b'
    } else {
        return Err("not a device node".to_owned());
    };
    let rdev = m.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    Ok((kind, major, minor, m.mode() & 0o7777, m.uid(), m.gid()))
}

/// Prepares the bundle: the overlay rootfs (lower: the layout's `lowers`;
/// upper and work under the plugin dir), the socket dir, the propagated mount
/// made a shared mount point, and `config.json`.
pub fn prepare(
    layout: &Layout,
    config: &PluginConfig,
    settings: &PluginSettings,
) -> Result<PathBuf> {
    use rustix::mount::{MountPropagationFlags, mount_bind, mount_change};
    let (upper, work) = (
        layout.plugin_dir.join("upper"),
        layout.plugin_dir.join("work"),
    );
    let target = layout.rootfs_mount();
    let bundle = layout.exec_dir.join("bundle");
    for d in [
        &upper,
        &work,
        &target,
        &bundle,
        &layout.exec_dir.join("socket"),
    ] {
        fs::create_dir_all(d).map_err(|e| io("creating", d, e))?;
    }
    if layout.lowers.is_empty() {
        return Err(io(
            "mounting the overlay rootfs at",
            &target,
            "no lower directory",
        ));
    }
    pluginctl_rootfs::overlay::mount(&layout.lowers, Some((&upper, &work)), &target)
        .map_err(|e| io("mounting the overlay rootfs at", &target, e))?;
    // Private: on a host whose mounts are shared (systemd makes `/` so),
    // the mounts the runtime makes inside the plugin's namespace would
    // otherwise propagate back here (moby makes its plugin root private
    // for the same reason).
    mount_change(&target, MountPropagationFlags::PRIVATE)
        .map_err(|e| io("making private the overlay rootfs at", &target, e))?;
    if !config.propagated_mount.is_empty() {
        let p = layout.propagated();
        fs::create_dir_all(&p).map_err(|e| io("creating", &p, e))?;
        mount_bind(&p, &p).map_err(|e| io("bind-mounting", &p, e))?;
        mount_change(
            &p,
            MountPropagationFlags::SHARED | MountPropagationFlags::REC,
        )
        .map_err(|e| io("sharing", &p, e))?;
    }
    // A published log driver is told dockerd's FIFO paths on the host.
    let log_driver = config
        .types()
        .iter()
        .any(|t| t.prefix == "docker" && t.capability == "logdriver");
    let logging =
        (layout.publish.is_some() && log_driver).then(|| PathBuf::from(spec::LOGGING_DIR));
    if let Some(d) = &logging {
        fs::create_dir_all(d).map_err(|e| io("creating", d, e))?;
    }
    let paths = Paths {
        rootfs: target,
        socket_dir: layout.exec_dir.join("socket"),
        propagated_mount: layout.propagated(),
        logging,
    };
    let spec =
        spec::build(config, settings, &paths, &host_device).map_err(|e| RunError(e.to_string()))?;
    let path = bundle.join("config.json");
    let mut f = fs::File::create(&path).map_err(|e| io("writing", &path, e))?;
    f.write_all(spec.to_string().as_bytes())
        .map_err(|e| io("writing", &path, e))?;
    Ok(bundle)
}

/// Starts the runtime in the foreground (`runc run`, which waits for the
/// plugin and exits with its status), the plugin's stdout and stderr
/// appended to its log. The caller (the supervisor) is already in a
/// session of its own.
pub fn start(layout: &Layout, bundle: &Path) -> Result<Child> {
    let log_path = layout.log();
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| io("opening", &log_path, e))?;
    let err = log.try_clone().map_err(|e| io("opening", &log_path, e))?;
    Command::new(&layout.runtime)
        .arg("--root")
        .arg(&layout.state_root)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(&layout.id)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| RunError(format!("starting {}: {e}", layout.runtime)))
}

/// The last `n` lines of the plugin's log, joined on one line.
pub fn log_tail(layout: &Layout, n: usize) -> String {
    let bytes = fs::read(layout.log()).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        "(the log is empty)".to_owned()
    } else {
        tail.join(" | ")
    }
}

/// Waits until the plugin's socket accepts a connection, polling with
/// backoff, until `timeout` after `began` (when the start began). Fails
/// when the process exits first (with its status), the time is up
/// (naming the socket), with the log's last lines, or `cancelled` says so.
pub fn wait_ready(
    layout: &Layout,
    config: &PluginConfig,
    child: &mut Child,
    began: Instant,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<()> {
    let socket = layout.socket(config);
    // A unix socket path must fit in 108 bytes, and `<exec-root>/<64-hex
    // id>/socket/<name>` may not: connect through the directory's file
    // descriptor (`/proc/self/fd/N/name`) instead.
    let dir_path = layout.exec_dir.join("socket");
    let dir = fs::File::open(&dir_path).map_err(|e| io("opening", &dir_path, e))?;
    let short = format!(
        "/proc/self/fd/{}/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir),
        config.interface.socket
    );
    let deadline = began + timeout;
    let mut delay = Duration::from_millis(5);
    loop {
        if UnixStream::connect(&short).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(RunError(format!(
                "the plugin {} before its socket {} answered; last lines of {}: {}",
                describe(status),
                socket.display(),
                layout.log().display(),
                log_tail(layout, 20)
            )));
        }
        if cancelled() {
            return Err(RunError(format!(
                "asked to stop before {} answered",
                socket.display()
            )));
        }
        if Instant::now() >= deadline {
            return Err(RunError(format!(
                "no answer on {} after {} s; last lines of {}: {}",
                socket.display(),
                timeout.as_secs(),
                layout.log().display(),
                log_tail(layout, 20)
            )));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// How a `runc run` ended, in words: runc exits with the plugin's code,
/// or 128 + the signal that killed it.
pub fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(c), _) if c > 128 && c < 128 + 65 => format!("was killed by signal {}", c - 128),
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(sig)) => format!("ended: the runtime was killed by signal {sig}"),
        (None, None) => "ended".to_owned(),
    }
}

/// The runtime's view of the plugin: `running`, `stopped`… or `None` when
/// it does not know it.
pub fn state(layout: &Layout) -> Option<String> {
    let out = layout
        .runtime()
        .arg("state")
        .arg(&layout.id)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["status"].as_str().map(str::to_owned)
}

/// Deletes the container from the runtime's state, whatever it was
/// doing (`delete --force`); errors are ignored: used before a restart.
pub fn forget(layout: &Layout) {
    let _ = layout
        .runtime()
        .args(["delete", "--force", &layout.id])
        .output();
}

/// Stops the plugin (SIGTERM, then SIGKILL after `grace`), deletes it from
/// the runtime, and unmounts and removes what [`prepare`] made. Safe to
/// call on a half-prepared or already stopped plugin.
pub fn stop(layout: &Layout, grace: Duration) -> Result<()> {
    if state(layout).is_some() {
        let _ = layout.runtime().args(["kill", &layout.id, "TERM"]).output();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && state(layout).is_some_and(|s| s != "stopped") {
            std::thread::sleep(Duration::from_millis(50));
        }
        if state(layout).is_some_and(|s| s != "stopped") {
            let _ = layout.runtime().args(["kill", &layout.id, "KILL"]).output();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && state(layout).is_some_and(|s| s != "stopped") {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let out = layout
            .runtime()
            .args(["delete", "--force", &layout.id])
            .output()
            .map_err(|e| RunError(format!("{} delete: {e}", layout.runtime)))?;
        if !out.status.success() && state(layout).is_some() {
            return Err(RunError(format!(
                "{} delete {} failed: {}",
                layout.runtime,
                layout.id,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    crate::publish::unpublish(layout);
    let teardown = |e: std::io::Error| RunError(format!("stopping plugin {}: {e}", layout.id));
    for m in [&layout.exec_dir, &layout.propagated()] {
        crate::mounts::unmount_all(m).map_err(teardown)?;
    }
    // Never across a mount: should one have come back, this stops there.
    crate::mounts::remove_tree(&layout.exec_dir).map_err(teardown)?;
    for d in ["upper", "work"] {
        crate::mounts::remove_tree(&layout.plugin_dir.join(d)).map_err(teardown)?;
    }
    Ok(())
}
