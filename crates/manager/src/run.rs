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
}

impl RunOptions {
    /// Defaults: `runc`, a 30 s timeout, `pluginctl supervise` from `PATH`,
    /// `/run/docker/plugins`.
    pub fn new(exec_root: &Path) -> RunOptions {
        RunOptions {
            exec_root: exec_root.to_owned(),
            runtime: "runc".to_owned(),
            timeout: Duration::from_secs(30),
            supervisor: vec!["pluginctl".into(), "supervise".into()],
            publish_dir: PathBuf::from("/run/docker/plugins"),
            publish: None,
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

/// Where a published socket goes: `<dir>/<name>.sock`, the name as
/// engines ask for it (`sample`, not `sample:latest`).
fn published_at(dir: &Path, record: &Record) -> PathBuf {
    let name = Reference::parse(&record.name).map_or_else(
        |_| record.name.clone(),
        |r| {
            let f = r.familiar();
            f.strip_suffix(":latest").map_or(f.clone(), str::to_owned)
        },
    );
    dir.join(format!("{name}.sock"))
}

impl RunPlace {
    /// The place the options name.
    pub fn of(opts: &RunOptions) -> RunPlace {
        RunPlace {
            exec_root: opts.exec_root.clone(),
            runtime: opts.runtime.clone(),
            publish_dir: opts.publish_dir.clone(),
        }
    }
}

impl Manager {
    fn layout_at(&self, record: &Record, place: &RunPlace) -> RunLayout {
        RunLayout {
            id: record.id.clone(),
            plugin_dir: self.layout.plugin_dir(&record.id),
            exec_dir: place.exec_root.join(&record.id),
            state_root: place.exec_root.join("runc"),
            runtime: place.runtime.clone(),
            publish: record
                .publish
                .then(|| published_at(&place.publish_dir, record)),
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
    /// to), and returns once its socket accepts a connection. On failure
    /// the plugin is stopped, everything mounted is undone, it stays
    /// disabled (with the reason recorded as `failed`), and the error says
    /// what happened. A plugin recorded enabled whose supervisor is gone
    /// is started again.
    pub fn enable(&self, what: &str, opts: &RunOptions) -> Result<Record> {
        let _op = self.layout.operation()?;
        let record = self.get(what)?;
        let name = record.familiar_name();
        let fail = |e: String| Error::State(format!("enabling {name}: {e}"));
        if let Some(pid) = self.running(&record) {
            if record.enabled {
                return Err(Error::State(format!(
                    "plugin {name} is already enabled (supervisor pid {pid})"
                )));
            }
            // An enable that died after starting its supervisor: adopt it,
            // once its plugin serves.
            let place = Self::place(&record, opts);
            self.wait_adopted(&record, &place, opts.timeout)
                .map_err(fail)?;
            return self.update(&record.id, |r| r.enabled = true);
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
        let started = match self.start_supervisor(&record, &place, opts.timeout, &opts.supervisor) {
            // Another supervisor won the lease (a concurrent enable, or one
            // a killed enable started): its plugin, once it serves.
            Err(_) if self.running(&record).is_some() => self
                .wait_adopted(&record, &place, opts.timeout)
                .map(|()| Vec::new()),
            other => other,
        };
        let running = self.running(&record).is_some();
        let record = self.update(&record.id, |r| match &started {
            Ok(_) => r.enabled = true,
            // A live supervisor whose plugin did not answer in time: its
            // own enable records it.
            Err(_) if running => {}
            Err(e) => {
                r.enabled = false;
                r.failed = Some(e.clone());
            }
        })?;
        for w in started.map_err(fail)? {
            tracing::warn!(plugin = %name, "{w}");
        }
        tracing::info!(plugin = %name, "enabled");
        Ok(record)
    }

    /// Waits for the socket of a plugin whose supervisor someone else
    /// started, as long as that supervisor lives.
    fn wait_adopted(
        &self,
        record: &Record,
        place: &RunPlace,
        timeout: Duration,
    ) -> std::result::Result<(), String> {
        let layout = self.layout_at(record, place);
        let socket = layout.socket(&record.config);
        let deadline = Instant::now() + timeout;
        loop {
            if pluginctl_runtime::activate::connect(&socket).is_ok() {
                return Ok(());
            }
            if supervise::running(&layout).is_none() {
                return Err(format!(
                    "the plugin's supervisor ended before {} answered; last lines of {}: {}",
                    socket.display(),
                    layout.log().display(),
                    run::log_tail(&layout, 20)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on {} after {} s",
                    socket.display(),
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the supervisor and reads its report: the warnings, once the
    /// plugin is ready; the reason, when it is not. A supervisor that says
    /// nothing for the timeout and 15 s more is killed, with its runtime.
    fn start_supervisor(
        &self,
        record: &Record,
        place: &RunPlace,
        timeout: Duration,
        supervisor: &[OsString],
    ) -> std::result::Result<Vec<String>, String> {
        let layout = self.layout_at(record, place);
        let log_path = layout.log();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let (program, args) = supervisor
            .split_first()
            .ok_or("no supervisor command is set")?;
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
            .map_err(|e| format!("starting the supervisor {}: {e}", program.to_string_lossy()))?;
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
        let deadline = Instant::now() + timeout + Duration::from_secs(15);
        let mut warnings = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l == "ready" => return Ok(warnings),
                Ok(l) => match l.strip_prefix("error: ") {
                    Some(e) => {
                        let _ = child.wait();
                        return Err(e.to_owned());
                    }
                    None => warnings.push(l.strip_prefix("warning: ").unwrap_or(&l).to_owned()),
                },
                Err(gone) => {
                    let silent = gone == std::sync::mpsc::RecvTimeoutError::Timeout;
                    if silent {
                        kill_group(child.id(), true);
                    }
                    let status = child
                        .wait()
                        .map_or_else(|e| e.to_string(), |s| s.to_string());
                    // What it left behind goes, unless another supervisor
                    // holds the plugin now.
                    if supervise::running(&layout).is_none() {
                        let _ = run::stop(&layout, Duration::from_secs(2));
                    }
                    let what = if silent {
                        format!(
                            "the supervisor said nothing for {} s and was killed",
                            (timeout + Duration::from_secs(15)).as_secs()
                        )
                    } else {
                        format!("the supervisor ended ({status}) before the plugin was ready")
                    };
                    return Err(format!(
                        "{what}; last lines of {}: {}",
                        log_path.display(),
                        run::log_tail(&layout, 20)
                    ));
                }
            }
        }
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
        let layout = self.layout_at(&record, &RunPlace::of(opts));
        let policy = Policy {
            timeout: opts.timeout,
            ..Policy::default()
        };
        let outcome =
            supervise::supervise(&layout, &record.config, &record.settings, &policy, report)
                .map_err(|e| Error::State(e.to_string()))?;
        if let Outcome::Failed(reason) = outcome {
            self.update(&record.id, |r| {
                r.enabled = false;
                r.failed = Some(reason.clone());
            })?;
            return Err(Error::State(format!(
                "plugin {}: {reason}",
                record.familiar_name()
            )));
        }
        Ok(())
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
        let dir = Path::new("/run/docker/plugins");
        assert_eq!(published_at(dir, &r), dir.join("sample.sock"));
        r.name = "reg.example:5000/team/vol:1.0".into();
        assert_eq!(
            published_at(dir, &r),
            dir.join("reg.example:5000/team/vol:1.0.sock")
        );
    }
}
