//! The proxy a volume driver is published through.
//!
//! A volume driver cannot be published as a link to its socket: the paths
//! it answers (`Mountpoint`) are in its own view of the filesystem, and
//! engines use a legacy plugin's paths as they are. Docker rewrites them
//! for its managed plugins (a path under the propagated mount to the host
//! side of it, anything else into the plugin's rootfs); for a published
//! volume driver the supervisor does the same in a small HTTP/1.1 proxy
//! that listens at the published path.
//!
//! The proxy also sees every `VolumeDriver.Mount` and `Unmount` an engine
//! sends, and keeps which volumes are mounted ([`Mounts`]) in a file that
//! outlives the supervisor, so that `disable` can refuse a plugin in use,
//! as Docker does, even after a restart.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::activate::connect;
use crate::http::{Message, read_message, write_message};

/// How a volume driver's paths map to the host.
#[derive(Debug, Clone)]
pub struct Rewrite {
    /// The plugin's propagated mount, in its view (`/data`); empty if none.
    pub propagated_mount: String,
    /// The host side of the propagated mount.
    pub propagated_host: PathBuf,
    /// The plugin's rootfs as the host sees it while it runs.
    pub rootfs_host: PathBuf,
}

impl Rewrite {
    /// The host path for a path the plugin answered; empty stays empty.
    pub fn host_path(&self, p: &str) -> String {
        if p.is_empty() || !p.starts_with('/') {
            return p.to_owned();
        }
        let pm = self.propagated_mount.trim_end_matches('/');
        if !pm.is_empty()
            && let Some(rest) = p.strip_prefix(pm)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return join(&self.propagated_host, rest);
        }
        join(&self.rootfs_host, p)
    }

    /// Rewrites the `Mountpoint`s of a VolumeDriver answer (`Mount`,
    /// `Path`: top level; `Get`: `Volume`; `List`: `Volumes[]`).
    pub fn answer(&self, v: &mut serde_json::Value) {
        let fix = |m: &mut serde_json::Value| {
            if let Some(s) = m.get("Mountpoint").and_then(|s| s.as_str()) {
                let host = self.host_path(s);
                m["Mountpoint"] = serde_json::Value::String(host);
            }
        };
        fix(v);
        if let Some(vol) = v.get_mut("Volume").filter(|x| x.is_object()) {
            fix(vol);
        }
        if let Some(list) = v.get_mut("Volumes").and_then(|l| l.as_array_mut()) {
            list.iter_mut().filter(|x| x.is_object()).for_each(fix);
        }
    }
}

fn join(base: &Path, rest: &str) -> String {
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        base.to_string_lossy().into_owned()
    } else {
        base.join(rest).to_string_lossy().into_owned()
    }
}

/// How long an engine's idle keep-alive connection is kept.
const IDLE: std::time::Duration = std::time::Duration::from_secs(300);
/// How long the plugin may take to answer (a mount can be slow).
const ANSWER: std::time::Duration = std::time::Duration::from_secs(120);

/// Serves one engine connection: each request is passed to the plugin on
/// a connection of its own, and the answer back, its paths rewritten.
fn serve(
    client: UnixStream,
    plugin: &Path,
    rewrite: &Rewrite,
    mounts: &Mounts,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(IDLE))?;
    let mut out = client.try_clone()?;
    let mut reader = BufReader::new(client);
    while let Some(request) = read_message(&mut reader, false)? {
        let path = request
            .first
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut response = match ask(plugin, &request) {
            Ok(r) => r,
            // Restarting, or gone: the engine gets an answer it can show.
            Err(e) => Message {
                first: "HTTP/1.1 503 Service Unavailable".to_owned(),
                headers: vec!["Content-Type: application/json".to_owned()],
                body: serde_json::json!({ "Err": format!("the plugin did not answer: {e}") })
                    .to_string()
                    .into_bytes(),
                close: false,
            },
        };
        if path.starts_with("/VolumeDriver.")
            && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&response.body)
        {
            let ok = response.first.split_whitespace().nth(1) == Some("200")
                && v.get("Err")
                    .and_then(|e| e.as_str())
                    .is_none_or(str::is_empty);
            if ok {
                mounts.record(&path, &request.body);
            }
            rewrite.answer(&mut v);
            response.body = v.to_string().into_bytes();
        }
        write_message(&mut out, &response, request.close)?;
        if request.close {
            break;
        }
    }
    Ok(())
}

/// One request to the plugin, on a connection of its own.
fn ask(plugin: &Path, request: &Message) -> std::io::Result<Message> {
    let upstream = connect(plugin)?;
    upstream.set_read_timeout(Some(ANSWER))?;
    upstream.set_write_timeout(Some(ANSWER))?;
    let mut up_out = upstream.try_clone()?;
    write_message(&mut up_out, request, true)?;
    read_message(&mut BufReader::new(upstream), true)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "it closed the connection without answering",
        )
    })
}

/// The volumes mounted through the proxy: for each, the IDs of its mounts
/// (the `ID` an engine sends with `Mount` and `Unmount`; one that sends
/// none counts once per call). Kept in a JSON file, rewritten atomically
/// on every change and read back by the next supervisor.
#[derive(Debug)]
pub struct Mounts {
    file: PathBuf,
    by_volume: Mutex<BTreeMap<String, Vec<String>>>,
}

impl Mounts {
    /// What `file` holds (nothing when it is missing or unreadable).
    pub fn load(file: &Path) -> Mounts {
        let by_volume = std::fs::read(file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Mounts {
            file: file.to_owned(),
            by_volume: Mutex::new(by_volume),
        }
    }

    /// Counts a successful `/VolumeDriver.Mount` or `Unmount`.
    fn record(&self, path: &str, request: &[u8]) {
        let v: serde_json::Value = serde_json::from_slice(request).unwrap_or_default();
        let Some(name) = v.get("Name").and_then(|n| n.as_str()) else {
            return;
        };
        let id = v.get("ID").and_then(|n| n.as_str()).unwrap_or_default();
        let mut map = self
            .by_volume
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match path {
            "/VolumeDriver.Mount" => map.entry(name.to_owned()).or_default().push(id.to_owned()),
            "/VolumeDriver.Unmount" => {
                if let Some(ids) = map.get_mut(name) {
                    let at = ids.iter().position(|x| x == id).unwrap_or(0);
                    if !ids.is_empty() {
                        ids.remove(at);
                    }
                    if ids.is_empty() {
                        map.remove(name);
                    }
                }
            }
            _ => return,
        }
        let tmp = self.file.with_extension("mounts.tmp");
        let written = std::fs::write(&tmp, serde_json::to_vec(&*map).unwrap_or_default())
            .and_then(|()| std::fs::rename(&tmp, &self.file));
        if let Err(e) = written {
            eprintln!(
                "pluginctl supervisor: recording mounts in {}: {e}",
                self.file.display()
            );
        }
    }

    /// The volumes in use and how many mounts each has.
    pub fn in_use(&self) -> Vec<(String, usize)> {
        self.by_volume
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(v, ids)| (v.clone(), ids.len()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// Listens at `at` (a path of any length: bound through its directory's
/// descriptor) and proxies every connection to the plugin's socket, on
/// threads of their own, for the life of the process; mounts are counted
/// in `mounts_file`, starting from what it holds.
pub fn proxy(
    at: &Path,
    plugin: PathBuf,
    rewrite: Rewrite,
    mounts_file: &Path,
) -> std::io::Result<()> {
    let mounts = Arc::new(Mounts::load(mounts_file));
    let dir = std::fs::File::open(at.parent().unwrap_or(Path::new("/")))?;
    let name = at
        .file_name()
        .ok_or_else(|| std::io::Error::other("a path without a file name"))?;
    let short = format!(
        "/proc/self/fd/{}/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir),
        name.to_string_lossy()
    );
    let listener = UnixListener::bind(short)?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (plugin, rewrite, mounts) = (plugin.clone(), rewrite.clone(), Arc::clone(&mounts));
            std::thread::spawn(move || {
                let _ = serve(conn, &plugin, &rewrite, &mounts);
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn rewrite() -> Rewrite {
        Rewrite {
            propagated_mount: "/data".into(),
            propagated_host: "/var/lib/pluginctl/plugins/ID/propagated-mount".into(),
            rootfs_host: "/run/pluginctl/ID/rootfs".into(),
        }
    }

    #[test]
    fn paths_go_where_docker_scopes_them() {
        let r = rewrite();
        assert_eq!(
            r.host_path("/data/v1"),
            "/var/lib/pluginctl/plugins/ID/propagated-mount/v1"
        );
        assert_eq!(
            r.host_path("/data"),
            "/var/lib/pluginctl/plugins/ID/propagated-mount"
        );
        assert_eq!(
            r.host_path("/database/v1"),
            "/run/pluginctl/ID/rootfs/database/v1"
        );
        assert_eq!(r.host_path(""), "");
        let mut v = serde_json::json!({
            "Mountpoint": "/data/a",
            "Volume": {"Name": "b", "Mountpoint": "/data/b"},
            "Volumes": [{"Name": "c", "Mountpoint": "/data/c"}, {"Name": "d"}],
            "Err": ""
        });
        r.answer(&mut v);
        assert_eq!(
            v["Mountpoint"],
            "/var/lib/pluginctl/plugins/ID/propagated-mount/a"
        );
        assert_eq!(
            v["Volume"]["Mountpoint"],
            "/var/lib/pluginctl/plugins/ID/propagated-mount/b"
        );
        assert_eq!(
            v["Volumes"][0]["Mountpoint"],
            "/var/lib/pluginctl/plugins/ID/propagated-mount/c"
        );
        assert!(v["Volumes"][1].get("Mountpoint").is_none());
    }

    #[test]
    fn a_keep_alive_engine_connection_through_the_proxy() {
        let tmp = tempfile::tempdir().unwrap();
        let plugin = tmp.path().join("plugin.sock");
        let listener = UnixListener::bind(&plugin).unwrap();
        // The plugin: one request per connection; a chunked answer.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut out = conn.try_clone().unwrap();
                let req = read_message(&mut BufReader::new(conn), false)
                    .unwrap()
                    .unwrap();
                let body = if req.body == br#"{"Name":"bad","ID":"c"}"# {
                    r#"{"Err":"no such volume"}"#.to_owned()
                } else if req.first.contains("/VolumeDriver.Mount") {
                    r#"{"Mountpoint":"/data/v1","Err":""}"#.to_owned()
                } else if req.first.contains("/VolumeDriver.Unmount") {
                    r#"{"Err":""}"#.to_owned()
                } else {
                    r#"{"Implements":["VolumeDriver"]}"#.to_owned()
                };
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                )
                .unwrap();
            }
        });
        let at = tmp.path().join("published.sock");
        let counts = tmp.path().join("p.mounts");
        proxy(&at, plugin, rewrite(), &counts).unwrap();
        let conn = UnixStream::connect(&at).unwrap();
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        let mounted =
            r#"{"Mountpoint":"/var/lib/pluginctl/plugins/ID/propagated-mount/v1","Err":""}"#;
        let steps = [
            (
                "/Plugin.Activate",
                "",
                r#"{"Implements":["VolumeDriver"]}"#,
                vec![],
            ),
            (
                "/VolumeDriver.Mount",
                r#"{"Name":"v1","ID":"c"}"#,
                mounted,
                vec![("v1", 1)],
            ),
            (
                "/VolumeDriver.Mount",
                r#"{"Name":"v1","ID":"d"}"#,
                mounted,
                vec![("v1", 2)],
            ),
            // A failed mount is not counted.
            (
                "/VolumeDriver.Mount",
                r#"{"Name":"bad","ID":"c"}"#,
                r#"{"Err":"no such volume"}"#,
                vec![("v1", 2)],
            ),
            (
                "/VolumeDriver.Unmount",
                r#"{"Name":"v1","ID":"c"}"#,
                r#"{"Err":""}"#,
                vec![("v1", 1)],
            ),
            (
                "/VolumeDriver.Unmount",
                r#"{"Name":"v1","ID":"d"}"#,
                r#"{"Err":""}"#,
                vec![],
            ),
        ];
        for (path, body, want, in_use) in steps {
            write!(
                w,
                "POST {path} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let answer = read_message(&mut r, false).unwrap().unwrap();
            assert_eq!(answer.first, "HTTP/1.1 200 OK");
            assert!(answer.headers.iter().any(|h| h.starts_with("Content-Type")));
            assert_eq!(String::from_utf8(answer.body).unwrap(), want);
            // What a new supervisor would read back.
            let now = Mounts::load(&counts).in_use();
            let want: Vec<(String, usize)> =
                in_use.iter().map(|(v, n)| ((*v).to_owned(), *n)).collect();
            assert_eq!(now, want, "after {path} {body}");
        }
    }

    #[test]
    fn an_unreachable_plugin_gets_the_engine_a_503() {
        let tmp = tempfile::tempdir().unwrap();
        let at = tmp.path().join("published.sock");
        proxy(
            &at,
            tmp.path().join("absent.sock"),
            rewrite(),
            &tmp.path().join("p.mounts"),
        )
        .unwrap();
        let conn = UnixStream::connect(&at).unwrap();
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        for _ in 0..2 {
            write!(
                w,
                "POST /VolumeDriver.List HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}"
            )
            .unwrap();
            let answer = read_message(&mut r, false).unwrap().unwrap();
            assert_eq!(answer.first, "HTTP/1.1 503 Service Unavailable");
            let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
            assert!(v["Err"].as_str().unwrap().contains("did not answer"), "{v}");
        }
    }
}
