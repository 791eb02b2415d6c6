//! A Docker volume plugin that stores each volume as a directory.
//!
//! It serves Docker's VolumeDriver protocol (`/Plugin.Activate`,
//! `/VolumeDriver.Create|Remove|Mount|Unmount|Path|Get|List|Capabilities`;
//! JSON in, JSON out, `{"Err": "…"}` on failure) over HTTP/1.1 on the unix
//! socket `/run/docker/plugins/$SOCKET` (default `sample.sock`), keeping
//! volumes under `$VOLUME_ROOT` (default `/data`, the plugin's propagated
//! mount). It exits on SIGTERM or SIGINT, removing its socket: as PID 1
//! of the plugin's namespace, an unhandled SIGTERM would be ignored.
//! `$START_DELAY_MS` makes it wait that long before it listens, as a
//! plugin with a slow start does. Built static, so that it needs nothing
//! else in its rootfs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

struct State {
    root: PathBuf,
    /// Mount counts per volume.
    mounts: Mutex<BTreeMap<String, u32>>,
}

fn main() {
    let socket_name = std::env::var("SOCKET").unwrap_or_else(|_| "sample.sock".to_owned());
    let dir = std::env::var("SOCKET_DIR").unwrap_or_else(|_| "/run/docker/plugins".to_owned());
    let root = PathBuf::from(std::env::var("VOLUME_ROOT").unwrap_or_else(|_| "/data".to_owned()));
    if let Err(e) = std::fs::create_dir_all(&root) {
        eprintln!("volume-plugin: creating {}: {e}", root.display());
        std::process::exit(1);
    }
    let path = Path::new(&dir).join(&socket_name);
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(mut signals) => {
            let path = path.clone();
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    eprintln!("volume-plugin: signal {sig}, exiting");
                    let _ = std::fs::remove_file(&path);
                    std::process::exit(0);
                }
            });
        }
        Err(e) => eprintln!("volume-plugin: no signal handling: {e}"),
    }
    if let Some(ms) = std::env::var("START_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        eprintln!("volume-plugin: starting in {ms} ms");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("volume-plugin: listening on {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    eprintln!(
        "volume-plugin: serving on {}, volumes in {}",
        path.display(),
        root.display()
    );
    let state = Arc::new(State {
        root,
        mounts: Mutex::new(BTreeMap::new()),
    });
    for conn in listener.incoming().flatten() {
        let state = Arc::clone(&state);
        std::thread::spawn(move || serve(conn, &state));
    }
}

fn serve(conn: UnixStream, state: &State) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = handle(state, &path, &String::from_utf8_lossy(&body));
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1.1+json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if out.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// The string value of `"key"` in a flat JSON object (the protocol's
/// requests are that simple: `{"Name": "v1", "Opts": {...}}`).
fn field(body: &str, key: &str) -> Option<String> {
    let at = body.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = body[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn err(message: &str) -> String {
    format!("{{\"Err\":{}}}", quote(message))
}

/// A volume name must be one path component.
fn volume_dir(state: &State, body: &str) -> Result<(String, PathBuf), String> {
    let name = field(body, "Name").ok_or_else(|| err("missing Name"))?;
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(err(&format!("invalid volume name {name:?}")));
    }
    let dir = state.root.join(&name);
    Ok((name, dir))
}

fn handle(state: &State, path: &str, body: &str) -> String {
    match path {
        "/Plugin.Activate" => r#"{"Implements":["VolumeDriver"]}"#.to_owned(),
        "/VolumeDriver.Capabilities" => r#"{"Capabilities":{"Scope":"local"}}"#.to_owned(),
        "/VolumeDriver.Create" => match volume_dir(state, body) {
            Ok((_, dir)) => match std::fs::create_dir_all(&dir) {
                Ok(()) => r#"{"Err":""}"#.to_owned(),
                Err(e) => err(&format!("creating {}: {e}", dir.display())),
            },
            Err(e) => e,
        },
        "/VolumeDriver.Remove" => match volume_dir(state, body) {
            Ok((name, dir)) => {
                let in_use = state
                    .mounts
                    .lock()
                    .is_ok_and(|m| m.get(&name).copied().unwrap_or(0) > 0);
                if in_use {
                    return err(&format!("volume {name} is in use"));
                }
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => r#"{"Err":""}"#.to_owned(),
                    Err(e) => err(&format!("removing {name}: {e}")),
                }
            }
            Err(e) => e,
        },
        "/VolumeDriver.Mount" | "/VolumeDriver.Path" | "/VolumeDriver.Unmount" => {
            match volume_dir(state, body) {
                Ok((name, dir)) => {
                    if !dir.is_dir() {
                        return err(&format!("no such volume: {name}"));
                    }
                    if let Ok(mut m) = state.mounts.lock() {
                        let n = m.entry(name).or_insert(0);
                        match path {
                            "/VolumeDriver.Mount" => *n += 1,
                            "/VolumeDriver.Unmount" => *n = n.saturating_sub(1),
                            _ => {}
                        }
                    }
                    if path == "/VolumeDriver.Unmount" {
                        r#"{"Err":""}"#.to_owned()
                    } else {
                        format!(
                            "{{\"Mountpoint\":{},\"Err\":\"\"}}",
                            quote(&dir.to_string_lossy())
                        )
                    }
                }
                Err(e) => e,
            }
        }
        "/VolumeDriver.Get" => match volume_dir(state, body) {
            Ok((name, dir)) if dir.is_dir() => format!(
                "{{\"Volume\":{{\"Name\":{},\"Mountpoint\":{}}},\"Err\":\"\"}}",
                quote(&name),
                quote(&dir.to_string_lossy())
            ),
            Ok((name, _)) => err(&format!("no such volume: {name}")),
            Err(e) => e,
        },
        "/VolumeDriver.List" => {
            let mut vols = Vec::new();
            if let Ok(rd) = std::fs::read_dir(&state.root) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let dir = state.root.join(&name);
                        vols.push(format!(
                            "{{\"Name\":{},\"Mountpoint\":{}}}",
                            quote(&name),
                            quote(&dir.to_string_lossy())
                        ));
                    }
                }
            }
            vols.sort();
            format!("{{\"Volumes\":[{}],\"Err\":\"\"}}", vols.join(","))
        }
        other => err(&format!("unknown endpoint {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(sock: &Path, path: &str, body: &str) -> String {
        let mut s = UnixStream::connect(sock).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut r = BufReader::new(s);
        let mut len = 0;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("Content-Length: ") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut b = vec![0; len];
        r.read_exact(&mut b).unwrap();
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn the_volume_driver_protocol() {
        let dir = std::env::temp_dir().join(format!("volume-plugin-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let sock = dir.join("run/sample.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let state = Arc::new(State {
            root: dir.join("data"),
            mounts: Mutex::new(BTreeMap::new()),
        });
        std::fs::create_dir_all(&state.root).unwrap();
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            for c in listener.incoming().flatten() {
                let st = Arc::clone(&st);
                std::thread::spawn(move || serve(c, &st));
            }
        });
        assert_eq!(
            call(&sock, "/Plugin.Activate", "{}"),
            r#"{"Implements":["VolumeDriver"]}"#
        );
        assert_eq!(
            call(&sock, "/VolumeDriver.Create", r#"{"Name":"v1","Opts":{}}"#),
            r#"{"Err":""}"#
        );
        assert!(dir.join("data/v1").is_dir());
        let m = call(&sock, "/VolumeDriver.Mount", r#"{"Name":"v1","ID":"x"}"#);
        assert!(m.contains("\"Mountpoint\"") && m.contains("data/v1"), "{m}");
        assert!(call(&sock, "/VolumeDriver.Remove", r#"{"Name":"v1"}"#).contains("in use"));
        call(&sock, "/VolumeDriver.Unmount", r#"{"Name":"v1","ID":"x"}"#);
        assert!(call(&sock, "/VolumeDriver.List", "{}").contains("\"v1\""));
        assert!(call(&sock, "/VolumeDriver.Get", r#"{"Name":"nope"}"#).contains("no such volume"));
        assert!(
            call(&sock, "/VolumeDriver.Create", r#"{"Name":"../x"}"#)
                .contains("invalid volume name")
        );
        assert_eq!(
            call(&sock, "/VolumeDriver.Remove", r#"{"Name":"v1"}"#),
            r#"{"Err":""}"#
        );
        assert!(!dir.join("data/v1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
