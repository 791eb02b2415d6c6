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

impl Manager {
    fn run_layout(&self, record: &Record, opts: &RunOptions) -> RunLayout {
        RunLayout {
            id: record.id.clone(),
            plugin_dir: self.layout.plugin_dir(&record.id),
            exec_dir: opts.exec_root.join(&record.id),
            state_root: opts.exec_root.join("runc"),
            runtime: opts.runtime.clone(),
            publish: record
                .publish
                .then(|| published_at(&opts.publish_dir, record)),
        }
    }

    /// The PID of the plugin's live supervisor, if it has one.
    pub fn running(&self, record: &Record, opts: &RunOptions) -> Option<u32> {
        supervise::running(&self.run_layout(record, opts))
    }

    /// Where the plugin's output goes (`plugins/<id>/plugin.log`; rotated
    /// to `plugin.log.1`).
    pub fn log_path(&self, record: &Record) -> PathBuf {
        self.layout.plugin_dir(&record.id).join("plugin.log")
    }

    /// Where the plugin's socket is on the host while it runs.
    pub fn socket_path(&self, record: &Record, opts: &RunOptions) -> PathBuf {
        self.run_layout(record, opts).socket(&record.config)
    }

    /// `docker plugin enable`: starts the plugin's supervisor, which runs
    /// it under the OCI runtime on an overlay of its rootfs (never written
    /// to), and returns once its socket accepts a connection. On failure
    /// the plugin is stopped, everything mounted is undone, it stays
    /// disabled, and the error says what happened. A plugin recorded
    /// enabled whose supervisor is gone is started again.
    pub fn enable(&self, what: &str, opts: &RunOptions) -> Result<Record> {
        let _op = self.layout.operation()?;
        let mut record = self.get(what)?;
        let name = record.familiar_name();
        if let Some(pid) = self.running(&record, opts) {
            if record.enabled {
                return Err(Error::State(format!(
                    "plugin {name} is already enabled (supervisor pid {pid})"
                )));
            }
            // An enable that died after starting its supervisor: adopt it,
            // once its plugin serves.
            self.wait_adopted(&record, opts)
                .map_err(|e| Error::State(format!("enabling {name}: {e}")))?;
            let lock = self.layout.lock()?;
            record.enabled = true;
            self.layout.save(&lock, &record)?;
            return Ok(record);
        }
        if let Some(p) = opts.publish {
            record.publish = p;
        }
        record.failed = None;
        {
            let lock = self.layout.lock()?;
            self.layout.save(&lock, &record)?;
        }
        let started = match self.start_supervisor(&record, opts) {
            // Another supervisor won the lease (a concurrent enable, or one
            // a killed enable started): its plugin, once it serves.
            Err(_) if self.running(&record, opts).is_some() => {
                self.wait_adopted(&record, opts).map(|()| Vec::new())
            }
            other => other,
        };
        let lock = self.layout.lock()?;
        let mut now = self.layout.find(&lock, &record.id)?;
        if started.is_ok() {
            now.enabled = true;
        } else if self.running(&now, opts).is_none() {
            now.enabled = false;
        }
        // else: a live supervisor whose plugin did not answer in time; its
        // own enable records it.
        self.layout.save(&lock, &now)?;
        drop(lock);
        record = now;
        for w in started.map_err(|e| Error::State(format!("enabling {name}: {e}")))? {
            tracing::warn!(plugin = %name, "{w}");
        }
        tracing::info!(plugin = %name, "enabled");
        Ok(record)
    }

    /// Waits for the socket of a plugin whose supervisor someone else
    /// started, as long as that supervisor lives.
    fn wait_adopted(&self, record: &Record, opts: &RunOptions) -> std::result::Result<(), String> {
        let layout = self.run_layout(record, opts);
        let socket = layout.socket(&record.config);
        let deadline = Instant::now() + opts.timeout;
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
                    opts.timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the supervisor and reads its report: the warnings, once the
    /// plugin is ready; the reason, when it is not.
    fn start_supervisor(
        &self,
        record: &Record,
        opts: &RunOptions,
    ) -> std::result::Result<Vec<String>, String> {
        let layout = self.run_layout(record, opts);
        let log_path = layout.log();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let (program, args) = opts
            .supervisor
            .split_first()
            .ok_or("no supervisor command is set")?;
        let mut child = Command::new(program)
            .args(args)
            .arg("--root")
            .arg(self.layout.root())
            .arg("--exec-root")
            .arg(&opts.exec_root)
            .arg("--runtime")
            .arg(&opts.runtime)
            .arg("--publish-dir")
            .arg(&opts.publish_dir)
            .arg("--timeout")
            .arg(opts.timeout.as_secs().max(1).to_string())
            .arg(&record.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting the supervisor {}: {e}", program.to_string_lossy()))?;
        let mut warnings = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l == "ready" => return Ok(warnings),
                Some(Ok(l)) => match l.strip_prefix("error: ") {
                    Some(e) => {
                        let _ = child.wait();
                        return Err(e.to_owned());
                    }
                    None => warnings.push(l.strip_prefix("warning: ").unwrap_or(&l).to_owned()),
                },
                Some(Err(_)) | None => {
                    let status = child
                        .wait()
                        .map_or_else(|e| e.to_string(), |s| s.to_string());
                    // Whatever it left behind goes.
                    let _ = run::stop(&layout, Duration::from_secs(2));
                    return Err(format!(
                        "the supervisor ended ({status}) before the plugin was ready; last lines of {}: {}",
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
        let layout = self.run_layout(&record, opts);
        let policy = Policy {
            timeout: opts.timeout,
            ..Policy::default()
        };
        let outcome =
            supervise::supervise(&layout, &record.config, &record.settings, &policy, report)
                .map_err(|e| Error::State(e.to_string()))?;
        if let Outcome::Failed(reason) = outcome {
            let lock = self.layout.lock()?;
            let mut now = self.layout.find(&lock, &record.id)?;
            now.enabled = false;
            now.failed = Some(reason.clone());
            self.layout.save(&lock, &now)?;
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
    /// left is cleared here. Recorded disabled.
    pub fn disable(&self, what: &str, opts: &RunOptions, force: bool) -> Result<Record> {
        let _op = self.layout.operation()?;
        let mut record = self.get(what)?;
        let name = record.familiar_name();
        let layout = self.run_layout(&record, opts);
        let pid = supervise::running(&layout);
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
        if let Some(pid) = pid.filter(|p| *p > 0) {
            use rustix::process::{Pid, Signal, kill_process};
            let signal = if force { Signal::KILL } else { Signal::TERM };
            if let Some(p) = Pid::from_raw(i32::try_from(pid).unwrap_or(0)) {
                let _ = kill_process(p, signal);
            }
            let mut deadline = Instant::now() + grace + Duration::from_secs(20);
            let mut killed = force;
            while supervise::running(&layout).is_some() {
                if Instant::now() > deadline {
                    if killed {
                        return Err(Error::State(format!(
                            "disabling {name}: its supervisor (pid {pid}) survives SIGKILL"
                        )));
                    }
                    // A supervisor stuck in its stop: the stop below does
                    // its work.
                    tracing::warn!(plugin = %name, pid, "the supervisor did not stop; killing it");
                    if let Some(p) = Pid::from_raw(i32::try_from(pid).unwrap_or(0)) {
                        let _ = kill_process(p, Signal::KILL);
                    }
                    killed = true;
                    deadline = Instant::now() + Duration::from_secs(5);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        run::stop(&layout, grace).map_err(|e| Error::State(format!("disabling {name}: {e}")))?;
        let lock = self.layout.lock()?;
        record.enabled = false;
        self.layout.save(&lock, &record)?;
        tracing::info!(plugin = %name, "disabled");
        Ok(record)
    }

    /// Starts every plugin recorded enabled whose supervisor is not running
    /// (after a reboot, or a killed supervisor). Running ones are left
    /// alone, so it can be run any number of times.
    pub fn restore(&self, opts: &RunOptions) -> Result<Vec<RestoreResult>> {
        let mut done = Vec::new();
        for record in self.list()?.into_iter().filter(|r| r.enabled) {
            let name = record.familiar_name();
            let result = if self.running(&record, opts).is_some() {
                Ok(false)
            } else {
                self.enable(&record.id, opts).map(|_| true)
            };
            done.push(RestoreResult { name, result });
        }
        Ok(done)
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
