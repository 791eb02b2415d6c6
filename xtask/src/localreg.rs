//! A throwaway CNCF distribution registry for the benchmarks and the demo.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::Result;

/// A `docker-registry serve` on 127.0.0.1 with its storage in `dir`; killed
/// by PID on drop.
pub(crate) struct LocalRegistry {
    child: std::process::Child,
    pub(crate) host: String,
}

impl LocalRegistry {
    pub(crate) fn start(dir: &Path) -> Result<LocalRegistry> {
        LocalRegistry::start_with(dir, None)
    }

    /// One that is a pull-through cache of `proxy` (a registry URL) when
    /// given: distribution's `proxy: remoteurl:`.
    pub(crate) fn start_with(dir: &Path, proxy: Option<&str>) -> Result<LocalRegistry> {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.join("storage").display()
            ) + &proxy.map_or_else(String::new, |u| format!("proxy:\n  remoteurl: {u}\n")),
        )
        .map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log = fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting docker-registry: {e}"))?;
        let reg = LocalRegistry { child, host };
        let addr: std::net::SocketAddr = reg.host.parse().map_err(|e| format!("{e}"))?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(reg);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(format!(
            "docker-registry did not listen on {} in 10 s",
            reg.host
        ))
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
