//! Each plugin binary, run as dockerd would find it: on `$SOCKET_DIR`,
//! answering `/Plugin.Activate` on one keep-alive connection, then exiting
//! on SIGTERM and removing its socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn call(conn: &mut BufReader<UnixStream>, path: &str, body: &str) -> (u16, String) {
    write!(
        conn.get_mut(),
        "POST {path} HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\
         Content-Type: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn run(bin: &str, socket: &str, implements: &str, probe: (&str, &str, &str)) {
    let dir = std::env::temp_dir().join(format!("driver-plugins-{socket}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(bin)
        .env("SOCKET_DIR", dir.join("plugins"))
        .env("STATE_DIR", dir.join("state"))
        .env("LOG_DIR", dir.join("logs"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sock = dir.join("plugins").join(socket);
    let mut conn = None;
    for _ in 0..500 {
        if let Ok(c) = UnixStream::connect(&sock) {
            conn = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut conn = BufReader::new(conn.expect("the plugin listens"));
    assert_eq!(
        call(&mut conn, "/Plugin.Activate", "{}\n"),
        (200, format!("{{\"Implements\":[\"{implements}\"]}}"))
    );
    let (path, body, want) = probe;
    let (status, reply) = call(&mut conn, path, body);
    assert_eq!(status, 200);
    assert!(reply.contains(want), "{reply}");
    assert_eq!(call(&mut conn, "/Nope", "").0, 404);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let name = Path::new(bin).file_name().unwrap().to_string_lossy();
    assert!(
        log.contains(&format!("{name}: /Plugin.Activate {{}}\n")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{name}: signal 15, exiting")),
        "{log}"
    );
    assert!(!Path::new(&sock).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn network_plugin() {
    let caps = (
        "/NetworkDriver.GetCapabilities",
        "null\n",
        "\"Scope\":\"local\"",
    );
    run(
        env!("CARGO_BIN_EXE_network-plugin"),
        "network.sock",
        "NetworkDriver",
        caps,
    );
}

#[test]
fn ipam_plugin() {
    let pool = (
        "/IpamDriver.RequestPool",
        "{\"AddressSpace\":\"sample-local\",\"Pool\":\"\",\"SubPool\":\"\",\"Options\":{},\"V6\":false}\n",
        "\"Pool\":\"10.77.0.0/16\"",
    );
    run(
        env!("CARGO_BIN_EXE_ipam-plugin"),
        "ipam.sock",
        "IpamDriver",
        pool,
    );
}

#[test]
fn authz_plugin() {
    let req = (
        "/AuthZPlugin.AuthZReq",
        "{\"RequestMethod\":\"GET\",\"RequestUri\":\"/_ping\"}\n",
        "{\"Allow\":true}",
    );
    run(
        env!("CARGO_BIN_EXE_authz-plugin"),
        "authz.sock",
        "authz",
        req,
    );
}

#[test]
fn log_plugin() {
    let caps = ("/LogDriver.Capabilities", "null\n", "\"ReadLogs\":true");
    run(
        env!("CARGO_BIN_EXE_log-plugin"),
        "log.sock",
        "LogDriver",
        caps,
    );
}
