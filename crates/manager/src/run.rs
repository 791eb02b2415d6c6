//! Enable, disable, restore: plugins run under a per-plugin supervisor
//! process (see `pluginctl_runtime::supervise`) that this module starts
//! and stops; the record says what the user asked for, the supervisor's
//! lease says what runs.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pluginctl_oci::Reference;
use pluginctl_runtime::proxy::Mounts;
use pluginctl_runtime::publish::Publish;
use pluginctl_runtime::run::{self, Layout as RunLayout};
use pluginctl_runtime::supervise::{self, Outcome, Policy};

use crate::store::RunPlace;
use crate::{Error, Manager, Record, Result};

/// Where and how plugins run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `<exec-root>`: bundles, rootfs mounts and sockets, one dir per
    /// plugin; `supervisors/` holds the supervisors' leases.
    pub exec_root: PathBuf,
    /// The OCI runtime (`runc` by default).
    pub runtime: String,
    /// How long `enable` waits for the plugin's socket.
    pub timeout: Duration,
    /// The command that becomes a plugin's supervisor. It is run as
    /// `<supervisor…> --root R --exec-root E --runtime X --publish-dir P
    /// --timeout SECONDS ID`, with stdout a pipe for its report, and must
    /// call [`Manager::supervise`]. `pluginctl supervise` by default.
    pub supervisor: Vec<OsString>,
    /// Where legacy plugin discovery looks for sockets
    /// (`/run/docker/plugins`).
    pub publish_dir: PathBuf,
    /// `Some(true)`/`Some(false)`: change whether `enable` publishes the
    /// socket there (recorded); `None`: as recorded.
    pub publish: Option<bool>,
    /// Where a published volume driver is registered for podman
    /// (`/etc/containers/containers.conf.d`); `None`: not at all.
    pub podman_conf_dir: Option<PathBuf>,
    /// Raised, it stops an `enable` in progress: the supervisor it started
    /// and the plugin are stopped, and the plugin stays disabled.
    pub cancel: Option<crate::Cancel>,
}

impl RunOptions {
    /// Defaults: `runc`, a 30 s timeout, `pluginctl supervise` from `PATH`,
    /// `/run/docker/plugins`, podman's drop-ins in
    /// `/etc/containers/containers.conf.d`.
    pub fn new(exec_root: &Path) -> RunOptions {
        RunOptions {
            exec_root: exec_root.to_owned(),
            runtime: "runc".to_owned(),
            timeout: Duration::from_secs(30),
            supervisor: vec!["pluginctl".into(), "supervise".into()],
            publish_dir: PathBuf::from("/run/docker/plugins"),
            publish: None,
            podman_conf_dir: Some(PathBuf::from("/etc/containers/containers.conf.d")),
            cancel: None,
        }
    }
}

/// What `restore` did for one plugin.
#[derive(Debug)]
pub struct RestoreResult {
    /// The plugin's name.
    pub name: String,
    /// `Ok(true)`: started; `Ok(false)`: its supervisor was running.
    pub result: Result<bool>,
}

/// The name engines use for a published plugin: its familiar name
/// without `:latest` (`sample`, `reg:5000/team/vol:1.0`).
fn published_name(record: &Record) -> String {
    Reference::parse(&record.name).map_or_else(
        |_| record.name.clone(),
        |r| {
            let f = r.familiar();
            f.strip_suffix(":latest").map_or(f.clone(), str::to_owned)
        },
    )
}

impl RunPlace {
    /// The place the options name.
    pub fn of(opts: &RunOptions) -> RunPlace {
        RunPlace {
            exec_root: opts.exec_root.clone(),
            runtime: opts.runtime.clone(),
            publish_dir: opts.publish_dir.clone(),
            podman_conf_dir: opts.podman_conf_dir.clone(),
        }
    }
}

impl Manager {
    fn layout_at(&self, record: &Record, place: &RunPlace) -> RunLayout {
        RunLayout {
            id: record.id.clone(),
            plugin_dir: self.layout.plugin_dir(&record.id),
            // Filled where the plugin is started (`supervise`): nothing
            // else mounts it.
            lowers: Vec::new(),
            exec_dir: place.exec_root.join(&record.id),
            state_root: place.exec_root.join("runc"),
            runtime: place.runtime.clone(),
            publish: record.publish.then(|| Publish {
                dir: place.publish_dir.clone(),
                name: published_name(record),
                podman_dir: place.podman_conf_dir.clone(),
            }),
        }
    }

    /// Where the plugin runs or ran: as recorded, else as the options say.
    fn place(record: &Record, opts: &RunOptions) -> RunPlace {
        record.run.clone().unwrap_or_else(|| RunPlace::of(opts))
    }

    /// The PID of the plugin's live supervisor, if it has one (`0` for a
    /// supervisor that has not written it yet).
    pub fn running(&self, record: &Record) -> Option<u32> {
        let place = record.run.as_ref()?;
        supervise::running(&self.layout_at(record, place))
    }

    /// Refuses a plugin that runs, whatever its record says (an enable in
    /// progress records it only once it serves).
    pub(crate) fn refuse_running(&self, record: &Record, doing: &str) -> Result<()> {
        if record.enabled || self.running(record).is_some() {
            return Err(Error::State(format!(
                "plugin {} is enabled; disable it before {doing}",
                record.familiar_name()
            )));
        }
        Ok(())
    }

    /// Changes a record under the metadata lock, from its current state.
    fn update(&self, id: &str, f: impl FnOnce(&mut Record)) -> Result<Record> {
        let lock = self.layout.lock()?;
        let mut r = self.layout.find(&lock, id)?;
        f(&mut r);
        self.layout.save(&lock, &r)?;
        Ok(r)
    }

    /// Removes what a removed plugin left in its exec root: the
    /// supervisor's lease and the mounts its proxy counted.
    pub(crate) fn forget_run(&self, record: &Record) -> Result<()> {
        let Some(place) = record.run.as_ref() else {
            return Ok(());
        };
        let layout = self.layout_at(record, place);
        supervise::remove_lease(&layout).map_err(|e| Error::State(e.to_string()))?;
        remove_if_there(&layout.mounts_file())
    }

    /// The volumes engines have mounted through the plugin's published
    /// socket, with their numbers of mounts: `disable` refuses a plugin
    /// with any, unless forced.
    pub fn in_use(&self, record: &Record) -> Vec<(String, usize)> {
        record.run.as_ref().map_or_else(Vec::new, |place| {
            Mounts::load(&self.layout_at(record, place).mounts_file()).in_use()
        })
    }

    /// Where the plugin's output goes (`plugins/<id>/plugin.log`; rotated
    /// to `plugin.log.1`).
    pub fn log_path(&self, record: &Record) -> PathBuf {
        self.layout.plugin_dir(&record.id).join("plugin.log")
    }

    /// Where the plugin's socket is on the host while it runs.
    pub fn socket_path(&self, record: &Record, opts: &RunOptions) -> PathBuf {
        self.layout_at(record, &Self::place(record, opts))
            .socket(&record.config)
    }

    /// `docker plugin enable`: starts the plugin's supervisor, which runs
    /// it under the OCI runtime on an overlay of its rootfs (never written
    /// to), records it enabled once its socket answers, and then lets this
    /// return. On failure the plugin is stopped, everything mounted is
    /// undone, it stays disabled (with the reason recorded as `failed`),
    /// and the error says what happened. A plugin recorded enabled whose
    /// supervisor is gone is started again; one whose enable is in
    /// progress elsewhere is waited for. The record never depends on this
    /// caller living: the supervisor records how the start ended.
    pub fn enable(&self, what: &str, opts: &RunOptions) -> Result<Record> {
        let _op = self.layout.operation()?;
        let record = self.get(what)?;
        let name = record.familiar_name();
        // A record from before sockets were checked may name one outside
        // the plugin's socket directory: never start it.
        record
            .config
            .check_socket()
            .map_err(|e| Error::Invalid(format!("plugin {name}: {e}")))?;
        if let Some(pid) = self.running(&record) {
            if record.enabled {
                return Err(Error::State(format!(
                    "plugin {name} is already enabled (supervisor pid {pid})"
                )));
            }
            // An enable in progress, or one that died after starting its
            // supervisor: its outcome.
            tracing::info!(plugin = %name, pid, "an enable is in progress; waiting for it");
            return self.wait_adopted(&record, opts);
        }
        let place = RunPlace::of(opts);
        if let Some(old) = record.run.as_ref().filter(|p| **p != place) {
            // Leftovers where it ran before, since it starts elsewhere now.
            let _ = run::stop(&self.layout_at(&record, old), Duration::from_secs(1));
        }
        let record = self.update(&record.id, |r| {
            if let Some(p) = opts.publish {
                r.publish = p;
            }
            r.failed = None;
            r.run = Some(place.clone());
        })?;
        let started = self.start_supervisor(&record, &place, opts);
        if let Err(Start::Lost) = started {
            // Another supervisor won the lease (a concurrent enable, or
            // one a killed enable started): its outcome.
            return self.wait_adopted(&record, opts);
        }
        let running = self.running(&record).is_some();
        let record = self.update(&record.id, |r| match &started {
            Ok(_) => r.enabled = true,
            // A live supervisor whose report this caller stopped reading:
            // it records its own outcome.
            Err(_) if running => {}
            Err(Start::Interrupted) => r.enabled = false,
            Err(Start::Failed(e)) => {
                r.enabled = false;
                r.failed = Some(e.clone());
            }
            Err(Start::Lost) => {}
        })?;
        match started {
            Ok(warnings) => {
                for w in warnings {
                    tracing::warn!(plugin = %name, "{w}");
                }
            }
            Err(Start::Interrupted) => {
                return Err(Error::Interrupted(format!(
                    "enabling {name} (the plugin was stopped and stays disabled)"
                )));
            }
            Err(Start::Failed(e)) => {
                return Err(Error::State(format!("enabling {name}: {e}")));
            }
            Err(Start::Lost) => {}
        }
        tracing::info!(plugin = %name, "enabled");
        Ok(record)
    }

    /// Waits for the outcome of a start someone else's supervisor is
    /// making: it records the plugin enabled once it serves, or disabled
    /// (and why) when it fails.
    fn wait_adopted(&self, record: &Record, opts: &RunOptions) -> Result<Record> {
        let name = record.familiar_name();
        let place = Self::place(record, opts);
        let layout = self.layout_at(record, &place);
        // The other supervisor has its own timeout, and says nothing for
        // at most as long as a start of ours may.
        let limit = opts.timeout + Duration::from_secs(15);
        let deadline = Instant::now() + limit;
        loop {
            let now = self.get(&record.id)?;
            let pid = supervise::running(&layout);
            if now.enabled && pid.is_some() {
                return Ok(now);
            }
            if pid.is_none() {
                // Ended: the record says how, unless it was killed.
                let why = now.failed.clone().unwrap_or_else(|| {
                    format!(
                        "its supervisor ended before the plugin was ready; last lines of {}: {}",
                        layout.log().display(),
                        run::log_tail(&layout, 20)
                    )
                });
                if now.enabled {
                    // Recorded enabled, but nothing runs it any more.
                    self.update(&record.id, |r| r.enabled = false)?;
                }
                return Err(Error::State(format!(
                    "enabling {name}: another enable of it failed: {why}"
                )));
            }
            if crate::cancelled(opts.cancel.as_ref()) {
                return Err(Error::Interrupted(format!(
                    "waiting for the enable of {name} in progress (it goes on)"
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::State(format!(
                    "plugin {name} is being enabled by another command (supervisor pid {}), which has not finished after {} s",
                    pid.unwrap_or(0),
                    limit.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the supervisor and reads its report: the warnings, once the
    /// plugin is ready; the reason, when it is not. A supervisor that says
    /// nothing for the timeout and 15 s more, or that the caller's cancel
    /// flag interrupts, is killed with its runtime, and what it left is
    /// undone.
    fn start_supervisor(
        &self,
        record: &Record,
        place: &RunPlace,
        opts: &RunOptions,
    ) -> std::result::Result<Vec<String>, Start> {
        let timeout = opts.timeout;
        let layout = self.layout_at(record, place);
        let log_path = layout.log();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Start::Failed(format!("opening {}: {e}", log_path.display())))?;
        let (program, args) = opts
            .supervisor
            .split_first()
            .ok_or_else(|| Start::Failed("no supervisor command is set".to_owned()))?;
        let mut child = Command::new(program)
            .args(args)
            .arg("--root")
            .arg(self.layout.root())
            .arg("--exec-root")
            .arg(&place.exec_root)
            .arg("--runtime")
            .arg(&place.runtime)
            .arg("--publish-dir")
            .arg(&place.publish_dir)
            .arg("--timeout")
            .arg(timeout.as_secs().max(1).to_string())
            .arg(&record.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                Start::Failed(format!(
                    "starting the supervisor {}: {e}",
                    program.to_string_lossy()
                ))
            })?;
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let silence = timeout + Duration::from_secs(15);
        let deadline = Instant::now() + silence;
        let mut warnings = Vec::new();
        let ended = loop {
            if crate::cancelled(opts.cancel.as_ref()) {
                kill_group(child.id(), true);
                break Ended::Interrupted;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(l) if l == "ready" => return Ok(warnings),
                Ok(l) => match l.strip_prefix("error: ") {
                    Some(e) => break Ended::Said(e.to_owned()),
                    None => warnings.push(l.strip_prefix("warning: ").unwrap_or(&l).to_owned()),
                },
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if left.is_zero() => {
                    kill_group(child.id(), true);
                    break Ended::Silent;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break Ended::Gone,
            }
        };
        let status = child
            .wait()
            .map_or_else(|e| e.to_string(), |s| s.to_string());
        if supervise::running(&layout).is_some() {
            // Another supervisor holds the plugin now (ours lost the lease).
            return Err(Start::Lost);
        }
        // What ours left behind goes.
        let _ = run::stop(&layout, Duration::from_secs(2));
        let tail = || {
            format!(
                "last lines of {}: {}",
                log_path.display(),
                run::log_tail(&layout, 20)
            )
        };
        Err(match ended {
            Ended::Interrupted => Start::Interrupted,
            Ended::Said(e) => Start::Failed(e),
            Ended::Silent => Start::Failed(format!(
                "the supervisor said nothing for {} s and was killed; {}",
                silence.as_secs(),
                tail()
            )),
            Ended::Gone => Start::Failed(format!(
                "the supervisor ended ({status}) before the plugin was ready; {}",
                tail()
            )),
        })
    }

    /// The supervisor's side of [`Manager::enable`]: runs the plugin until
    /// SIGTERM, reporting on `report`; records the plugin failed (and
    /// disabled) when it keeps dying.
    pub fn supervise(
        &self,
        what: &str,
        opts: &RunOptions,
        report: &mut dyn std::io::Write,
    ) -> Result<()> {
        let record = match self.get(what) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(report, "error: {e}");
                return Err(e);
            }
        };
        // Where its enable recorded it runs (the podman drop-in directory
        // included, which the supervisor's command line does not carry).
        let mut layout = self.layout_at(&record, &Self::place(&record, opts));
        layout.lowers = match self.lowers(&record) {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(report, "error: {e}");
                return Err(e);
            }
        };
        let policy = Policy {
            timeout: opts.timeout,
            ..Policy::default()
        };
        let id = record.id.clone();
        // The record follows the start whoever waits for it (an enable
        // interrupted meanwhile, a restore, another enable).
        let mut on_ready = || {
            self.update(&id, |r| {
                r.enabled = true;
                r.failed = None;
            })
            .map(drop)
            .map_err(|e| format!("recording the plugin enabled: {e}"))
        };
        let outcome = supervise::supervise(
            &layout,
            &record.config,
            &record.settings,
            &policy,
            report,
            &mut on_ready,
        )
        .map_err(|e| Error::State(e.to_string()))?;
        match outcome {
            Outcome::Stopped => Ok(()),
            Outcome::NotStarted(reason) | Outcome::Failed(reason) => {
                self.update(&record.id, |r| {
                    r.enabled = false;
                    r.failed = Some(reason.clone());
                })?;
                Err(Error::State(format!(
                    "plugin {}: {reason}",
                    record.familiar_name()
                )))
            }
        }
    }

    /// `docker plugin disable`: the supervisor stops the plugin (SIGTERM,
    /// SIGKILL after 10 s; at once with `force`), deletes it from the
    /// runtime, unmounts everything and exits; whatever a dead supervisor
    /// left is cleared here, holding the plugin's lease so that no
    /// supervisor starts meanwhile. Recorded disabled.
    pub fn disable(&self, what: &str, opts: &RunOptions, force: bool) -> Result<Record> {
        let _op = self.layout.operation()?;
        let record = self.get(what)?;
        let name = record.familiar_name();
        let layout = self.layout_at(&record, &Self::place(&record, opts));
        let fail = |e: String| Error::State(format!("disabling {name}: {e}"));
        let mut pid = supervise::running(&layout);
        if !record.enabled && pid.is_none() {
            let why = record
                .failed
                .as_deref()
                .map(|f| format!(" (it failed: {f})"))
                .unwrap_or_default();
            return Err(Error::State(format!("plugin {name} is not enabled{why}")));
        }
        let in_use = Mounts::load(&layout.mounts_file()).in_use();
        if !force && !in_use.is_empty() {
            let list: Vec<String> = in_use
                .iter()
                .map(|(v, n)| format!("{v} ({n} mount{})", if *n == 1 { "" } else { "s" }))
                .collect();
            return Err(Error::State(format!(
                "plugin {name} is in use: volume{} {} mounted by an engine; `disable -f` stops it anyway",
                if list.len() == 1 { "" } else { "s" },
                list.join(", ")
            )));
        }
        let grace = if force {
            Duration::ZERO
        } else {
            Policy::default().grace
        };
        // A supervisor that holds its lease but has not written its PID yet
        // writes it in a moment.
        let wrote = Instant::now() + Duration::from_secs(2);
        while pid == Some(0) && Instant::now() < wrote {
            std::thread::sleep(Duration::from_millis(10));
            pid = supervise::running(&layout);
        }
        if let Some(pid) = pid.filter(|p| *p > 0) {
            kill_group(pid, force);
            let mut deadline = Instant::now() + grace + Duration::from_secs(20);
            let mut killed = force;
            while supervise::running(&layout).is_some() {
                if Instant::now() > deadline {
                    if killed {
                        return Err(fail(format!("its supervisor (pid {pid}) survives SIGKILL")));
                    }
                    // A supervisor stuck in its stop: the stop below does
                    // its work.
                    tracing::warn!(plugin = %name, pid, "the supervisor did not stop; killing it");
                    kill_group(pid, true);
                    killed = true;
                    deadline = Instant::now() + Duration::from_secs(5);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let lease = supervise::acquire(&layout).map_err(|e| fail(e.to_string()))?;
        run::stop(&layout, grace).map_err(|e| fail(e.to_string()))?;
        // Stopped: nothing is mounted through it any more.
        remove_if_there(&layout.mounts_file())?;
        drop(lease);
        let record = self.update(&record.id, |r| r.enabled = false)?;
        tracing::info!(plugin = %name, "disabled");
        Ok(record)
    }

    /// Starts every plugin recorded enabled whose supervisor is not running
    /// (after a reboot, or a killed supervisor), where it ran before.
    /// Running ones are left alone, so it can be run any number of times.
    pub fn restore(&self, opts: &RunOptions) -> Result<Vec<RestoreResult>> {
        let mut done = Vec::new();
        for record in self.list()?.into_iter().filter(|r| r.enabled) {
            let name = record.familiar_name();
            let result = if self.running(&record).is_some() {
                Ok(false)
            } else {
                let mut o = opts.clone();
                if let Some(p) = &record.run {
                    o.exec_root.clone_from(&p.exec_root);
                    o.runtime.clone_from(&p.runtime);
                    o.publish_dir.clone_from(&p.publish_dir);
                }
                self.enable(&record.id, &o).map(|_| true)
            };
            done.push(RestoreResult { name, result });
        }
        Ok(done)
    }
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// How a start the caller made did not succeed.
enum Start {
    /// The reason, for the record and the error.
    Failed(String),
    /// Another supervisor holds the lease: its start is the one to wait for.
    Lost,
    /// The caller's cancel flag: the supervisor was killed, its plugin
    /// stopped.
    Interrupted,
}

/// Why the report of a start stopped coming.
enum Ended {
    Interrupted,
    Said(String),
    Silent,
    Gone,
}

/// SIGTERM (or SIGKILL) to a supervisor, and with `kill`, to its whole
/// process group (it leads one: `setsid`), the runtime's process included.
fn kill_group(pid: u32, kill: bool) {
    use rustix::process::{Pid, Signal, kill_process, kill_process_group};
    let Some(p) = Pid::from_raw(i32::try_from(pid).unwrap_or(0)) else {
        return;
    };
    if kill {
        let _ = kill_process_group(p, Signal::KILL);
        let _ = kill_process(p, Signal::KILL);
    } else {
        let _ = kill_process(p, Signal::TERM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_names_are_what_engines_ask_for() {
        let mut r: Record = serde_json::from_str(
            r#"{"id":"a","name":"docker.io/library/sample:latest","manifest":{"mediaType":"x","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"config_digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","layers":[],"config":{},"settings":{"Env":[],"Args":[],"Mounts":[],"Devices":[]},"enabled":false,"created":""}"#,
        )
        .unwrap();
        assert_eq!(published_name(&r), "sample");
        r.name = "reg.example:5000/team/vol:1.0".into();
        assert_eq!(published_name(&r), "reg.example:5000/team/vol:1.0");
    }
}
