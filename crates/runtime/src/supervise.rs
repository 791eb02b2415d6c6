//! The per-plugin supervisor: one process per enabled plugin that owns the
//! OCI runtime's `run`, keeps the plugin's log bounded, restarts the plugin
//! when it dies (exponential backoff, a cap per window, then "failed"), and
//! on SIGTERM stops it and undoes every mount.
//!
//! Its life is a *lease*: an exclusively locked file holding its PID
//! ([`crate::run::Layout::lease`]). A live lease is a live supervisor; the
//! kernel drops the lock when the process dies however it dies, so a
//! killed supervisor is seen as gone and `restore` can take over.
//!
//! Whoever starts the supervisor learns how the start went from lines the
//! supervisor writes on a report stream (its stdout, a pipe):
//! `warning: …` any number of times, then `ready` or `error: …`.

use std::collections::VecDeque;
use std::fs;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pluginctl_oci::{PluginConfig, PluginSettings};

use crate::activate;
use crate::run::{self, Layout, RunError};

type Result<T> = std::result::Result<T, RunError>;

/// How a supervisor behaves.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How long the first start may take to answer on its socket.
    pub timeout: Duration,
    /// Restarts allowed within [`Policy::window`]; one more crash and the
    /// plugin is marked failed.
    pub max_restarts: usize,
    /// The window restarts are counted in.
    pub window: Duration,
    /// The first restart's delay; doubled for each restart in the window.
    pub backoff: Duration,
    /// The longest delay.
    pub max_backoff: Duration,
    /// Between SIGTERM and SIGKILL when stopping.
    pub grace: Duration,
    /// The log is rotated (to `plugin.log.1`) past this size.
    pub log_max: u64,
}

impl Default for Policy {
    /// 30 s to start, 5 restarts in 60 s from 100 ms up to 10 s apart,
    /// 10 s of grace, a 10 MiB log.
    fn default() -> Policy {
        Policy {
            timeout: Duration::from_secs(30),
            max_restarts: 5,
            window: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            grace: Duration::from_secs(10),
            log_max: 10 << 20,
        }
    }
}

/// How a supervisor's life ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Asked to stop (SIGTERM, SIGINT, SIGHUP): the plugin was stopped.
    Stopped,
    /// The first start failed (reported as `error: …`): nothing runs and
    /// nothing stays mounted. The reason, for the record.
    NotStarted(String),
    /// The plugin kept dying: the reason, for the record.
    Failed(String),
}

/// A held lease: the supervisor's proof of life.
#[derive(Debug)]
pub struct Lease {
    _file: fs::File,
}

fn open_lease(path: &Path) -> Result<fs::File> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(|e| RunError(format!("creating {}: {e}", dir.display())))?;
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| RunError(format!("opening {}: {e}", path.display())))
}

/// Takes the plugin's lease for this process, or says which live
/// supervisor holds it.
pub fn acquire(layout: &Layout) -> Result<Lease> {
    use rustix::fs::{FlockOperation, flock};
    let path = layout.lease();
    let mut file = open_lease(&path)?;
    // A [`running`] probe holds the lock shared for an instant: only a
    // holder that stays is a supervisor.
    let mut tries = 0;
    while flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        tries += 1;
        if tries == 20 {
            let pid = running(layout).map_or_else(|| "?".to_owned(), |p| p.to_string());
            return Err(RunError(format!(
                "plugin {} is already supervised (pid {pid}, lease {})",
                layout.id,
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    written.map_err(|e| RunError(format!("writing {}: {e}", path.display())))?;
    Ok(Lease { _file: file })
}

/// Removes the lease of a plugin nobody supervises (it is being removed):
/// taken first, so that a live supervisor's lease is never unlinked.
pub fn remove_lease(layout: &Layout) -> Result<()> {
    use rustix::fs::{FlockOperation, flock};
    let path = layout.lease();
    let Ok(file) = fs::File::open(&path) else {
        return Ok(());
    };
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        return Err(RunError(format!(
            "plugin {} is supervised (lease {})",
            layout.id,
            path.display()
        )));
    }
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RunError(format!("removing {}: {e}", path.display()))),
    }
}

/// The PID of the live supervisor of this plugin, if there is one.
pub fn running(layout: &Layout) -> Option<u32> {
    use rustix::fs::{FlockOperation, flock};
    let mut file = fs::File::open(layout.lease()).ok()?;
    if flock(&file, FlockOperation::NonBlockingLockShared).is_ok() {
        return None; // nobody holds it
    }
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    // A supervisor between taking the lock and writing its PID.
    Some(text.trim().parse().unwrap_or(0))
}

/// The live supervisors under an exec root, as (plugin ID, PID): every
/// lease in `<exec-root>/supervisors/` that someone holds.
pub fn live(exec_root: &Path) -> Vec<(String, u32)> {
    let Ok(dir) = fs::read_dir(exec_root.join("supervisors")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let id = e
                .file_name()
                .to_string_lossy()
                .strip_suffix(".pid")?
                .to_owned();
            let layout = Layout {
                exec_dir: exec_root.join(&id),
                state_root: exec_root.join("runc"),
                plugin_dir: std::path::PathBuf::new(),
                lowers: Vec::new(),
                runtime: String::new(),
                publish: None,
                id,
            };
            running(&layout).map(|pid| (layout.id, pid))
        })
        .collect()
}

/// Keeps `log` under `max` bytes: past it, the content goes to
/// `<log>.1` (replacing an older one) and the log is truncated in place.
/// In place, because the plugin holds the log open for appending (it is
/// its stdout): it goes on writing at the new end. Returns whether it
/// rotated.
pub fn rotate(log: &Path, max: u64) -> std::io::Result<bool> {
    let Ok(meta) = fs::metadata(log) else {
        return Ok(false);
    };
    if meta.len() <= max {
        return Ok(false);
    }
    let mut old = log.as_os_str().to_owned();
    old.push(".1");
    let mut tmp = old.clone();
    tmp.push(".tmp");
    fs::copy(log, &tmp)?;
    fs::rename(&tmp, &old)?;
    fs::OpenOptions::new().write(true).open(log)?.set_len(0)?;
    Ok(true)
}

enum Event {
    Exited(std::process::ExitStatus),
    Stop,
}

/// A line of the supervisor's own in the plugin's log.
fn note(layout: &Layout, what: &str) {
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.log())
    {
        let _ = writeln!(f, "pluginctl supervisor: {what}");
    }
}

/// Stops what is left when giving up; a failure to is logged, and the
/// plugin is still recorded failed (the next disable or enable clears up).
fn give_up(layout: &Layout) {
    if let Err(e) = run::stop(layout, Duration::from_secs(2)) {
        note(layout, &format!("cleaning up: {e}"));
    }
}

fn watch(mut child: Child, tx: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = tx.send(Event::Exited(status));
        }
    });
}

/// Runs the plugin until asked to stop or until it keeps dying: takes the
/// lease, clears what a dead run left, prepares the bundle, starts the
/// runtime, waits for the socket, checks `Plugin.Activate`, publishes the
/// socket when the layout says so, calls `on_ready` (whose error fails
/// the start), and reports on `report`. Returns `Err` (after reporting
/// it) when the lease is held by another supervisor, and
/// [`Outcome::NotStarted`] when the first start fails: the plugin is then
/// stopped and nothing stays mounted.
pub fn supervise(
    layout: &Layout,
    config: &PluginConfig,
    settings: &PluginSettings,
    policy: &Policy,
    report: &mut dyn std::io::Write,
    on_ready: &mut dyn FnMut() -> std::result::Result<(), String>,
) -> Result<Outcome> {
    let fail = |report: &mut dyn std::io::Write, e: RunError| {
        let _ = writeln!(report, "error: {e}");
        let _ = report.flush();
        Err(e)
    };
    let not_started = |report: &mut dyn std::io::Write, e: RunError| {
        let _ = writeln!(report, "error: {e}");
        let _ = report.flush();
        Ok(Outcome::NotStarted(e.0))
    };
    if let Err(e) = config.check_socket() {
        return fail(report, RunError(e.to_string()));
    }
    // The timeout covers the whole start, not only the wait on the socket.
    let began = Instant::now();
    let _lease = match acquire(layout) {
        Ok(l) => l,
        Err(e) => return fail(report, e),
    };
    let (tx, rx) = mpsc::channel();
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| RunError(format!("installing signal handlers: {e}")));
    let mut signals = match signals {
        Ok(s) => s,
        Err(e) => return not_started(report, e),
    };
    let stop_tx = tx.clone();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asked_by_signal = std::sync::Arc::clone(&asked);
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            asked_by_signal.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = stop_tx.send(Event::Stop);
        }
    });
    let stop_asked = || asked.load(std::sync::atomic::Ordering::SeqCst);
    // A supervisor killed earlier may have left the plugin running.
    if let Err(e) = run::stop(layout, Duration::from_secs(1)) {
        return not_started(report, e);
    }
    let first = run::prepare(layout, config, settings).and_then(|bundle| {
        let mut child = run::start(layout, &bundle)?;
        run::wait_ready(
            layout,
            config,
            &mut child,
            began,
            policy.timeout,
            &stop_asked,
        )?;
        crate::publish::publish(layout, config)?;
        Ok((bundle, child))
    });
    let (bundle, child) = match first {
        Ok(started) => started,
        Err(e) => {
            // It never served: no grace to give.
            let _ = run::stop(layout, Duration::from_millis(300));
            if stop_asked() {
                let _ = writeln!(report, "error: {e}");
                return Ok(Outcome::Stopped);
            }
            return not_started(report, e);
        }
    };
    match activate::activate(&layout.socket(config), Duration::from_secs(5)) {
        Ok(implements) => {
            for w in activate::mismatches(config, &implements) {
                let _ = writeln!(report, "warning: {w}");
            }
        }
        Err(e) => {
            note(layout, &format!("no usable answer to Plugin.Activate: {e}"));
        }
    }
    if let Err(e) = on_ready() {
        let _ = run::stop(layout, policy.grace);
        return not_started(report, RunError(e));
    }
    let _ = writeln!(report, "ready");
    let _ = report.flush();
    note(layout, "the plugin is ready");
    watch(child, tx.clone());

    let mut restarts: VecDeque<Instant> = VecDeque::new();
    loop {
        let event = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(e) => e,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = rotate(&layout.log(), policy.log_max) {
                    note(layout, &format!("rotating the log: {e}"));
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Event::Stop,
        };
        match event {
            Event::Stop => {
                note(layout, "stopping the plugin");
                run::stop(layout, policy.grace)?;
                return Ok(Outcome::Stopped);
            }
            Event::Exited(status) => {
                let how = run::describe(status);
                let now = Instant::now();
                while restarts
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > policy.window)
                {
                    restarts.pop_front();
                }
                if restarts.len() >= policy.max_restarts {
                    let reason = format!(
                        "the plugin {how}, after {} restarts in {} s; giving up",
                        restarts.len(),
                        policy.window.as_secs()
                    );
                    note(layout, &reason);
                    give_up(layout);
                    return Ok(Outcome::Failed(reason));
                }
                let exponent = u32::try_from(restarts.len()).unwrap_or(u32::MAX).min(16);
                let delay = policy
                    .backoff
                    .saturating_mul(1 << exponent)
                    .min(policy.max_backoff);
                note(
                    layout,
                    &format!(
                        "the plugin {how}; restart {} of {} in {} ms",
                        restarts.len() + 1,
                        policy.max_restarts,
                        delay.as_millis()
                    ),
                );
                if let Ok(Event::Stop) = rx.recv_timeout(delay) {
                    note(layout, "stopping the plugin");
                    run::stop(layout, policy.grace)?;
                    return Ok(Outcome::Stopped);
                }
                restarts.push_back(Instant::now());
                // `run` removes its container when the plugin ends; make
                // sure, or the ID stays taken.
                run::forget(layout);
                match run::start(layout, &bundle) {
                    Ok(child) => watch(child, tx.clone()),
                    Err(e) => {
                        let reason = format!("restarting the plugin: {e}");
                        note(layout, &reason);
                        give_up(layout);
                        return Ok(Outcome::Failed(reason));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &Path) -> Layout {
        Layout {
            id: "a".repeat(64),
            plugin_dir: dir.join("plugins/a"),
            lowers: vec![dir.join("plugins/a/rootfs")],
            exec_dir: dir.join("run").join("a".repeat(64)),
            state_root: dir.join("run/runc"),
            runtime: "runc".into(),
            publish: None,
        }
    }

    #[test]
    fn one_lease_per_plugin_and_it_dies_with_its_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let l = layout(tmp.path());
        assert_eq!(running(&l), None);
        let lease = acquire(&l).unwrap();
        assert_eq!(running(&l), Some(std::process::id()));
        assert_eq!(
            live(&tmp.path().join("run")),
            vec![("a".repeat(64), std::process::id())]
        );
        let err = acquire(&l).unwrap_err().to_string();
        assert!(
            err.contains("already supervised") && err.contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(lease);
        assert_eq!(running(&l), None);
        assert!(live(&tmp.path().join("run")).is_empty());
        drop(acquire(&l).unwrap());
    }

    #[test]
    fn rotation_keeps_an_appending_writer_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("plugin.log");
        let mut w = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        w.write_all(&[b'x'; 100]).unwrap();
        assert!(!rotate(&log, 100).unwrap(), "at the limit: kept");
        w.write_all(b"y\n").unwrap();
        assert!(rotate(&log, 100).unwrap());
        assert_eq!(
            fs::read(tmp.path().join("plugin.log.1")).unwrap().len(),
            102
        );
        assert_eq!(fs::metadata(&log).unwrap().len(), 0);
        w.write_all(b"after\n").unwrap();
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            "after\n",
            "no hole before it"
        );
        assert!(!rotate(&tmp.path().join("absent.log"), 1).unwrap());
    }
}
