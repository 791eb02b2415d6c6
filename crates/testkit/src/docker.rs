//! A private dockerd (Debian `docker.io`) for interop tests: its own data
//! root, exec root, pid file and unix socket under a temp dir; networking
//! features off; stopped by PID (after removing its plugins) on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The Debian 20.10 CLI (a `docker` earlier on `$PATH` may be another one).
pub const DOCKER: &str = "/usr/bin/docker";
/// The daemon.
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// A running dockerd.
pub struct Dockerd {
    child: Child,
    /// The daemon's unix socket.
    pub socket: PathBuf,
    /// Its state directory.
    pub dir: tempfile::TempDir,
}

/// Whether dockerd and the CLI are installed.
pub fn available() -> bool {
    Path::new(DOCKER).exists() && Path::new(DOCKERD).exists()
}

impl Dockerd {
    /// Starts one; panics with its log when it does not come up in 60 s.
    pub fn start() -> Dockerd {
        Dockerd::start_with(&[])
    }

    /// Starts one with more daemon options (`--authorization-plugin=NAME`).
    pub fn start_with(options: &[&str]) -> Dockerd {
        assert!(
            available(),
            "dockerd is missing: `cargo xtask test` installs docker.io"
        );
        // Short paths: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("pcd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let socket = dir.path().join("d.sock");
        for d in ["data", "exec"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("state dirs");
        }
        std::fs::write(dir.path().join("daemon.json"), "{}").expect("daemon.json");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("log");
        let child = Command::new(DOCKERD)
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--storage-driver=vfs",
            ])
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .arg("--config-file")
            .arg(dir.path().join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(options)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let mut d = Dockerd { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if d.docker(&["version"]).status.success() {
                return d;
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("dockerd exited ({st}): {}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer in 60 s: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs the Docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    /// `GET path` of the Engine API, through curl on the unix socket.
    pub fn api_get(&self, path: &str) -> Output {
        Command::new("curl")
            .args(["-sS", "--unix-socket"])
            .arg(&self.socket)
            .arg(format!("http://localhost{path}"))
            .output()
            .expect("run curl")
    }

    /// The daemon's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ls = self.docker(&["plugin", "ls", "-q"]);
        for id in String::from_utf8_lossy(&ls.stdout).split_whitespace() {
            let _ = self.docker(&["plugin", "rm", "-f", id]);
        }
        // SIGTERM lets dockerd stop its containerd; then wait, then insist.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
