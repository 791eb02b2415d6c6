//! Plugins under runc (root): enable until the socket answers, speak the
//! VolumeDriver protocol, see the volume on the host through the
//! propagated mount, disable with nothing left mounted or running; and
//! the failures: an entrypoint that cannot run, a socket that never comes.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use common::*;

fn volume_plugin() -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/x86_64-unknown-linux-gnu");
    ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("volume-plugin"))
        .find(|p| p.is_file())
        .expect("`cargo xtask test` builds the static sample plugin")
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

fn context(dir: &Path, entrypoint: &str, extra_env: &str) {
    for d in ["rootfs/data", "rootfs/run/docker/plugins"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(volume_plugin(), dir.join("rootfs/volume-plugin")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"description":"sample","entrypoint":["{entrypoint}"],
                "interface":{{"types":["docker.volumedriver/1.0"],"socket":"sample.sock"}},
                "propagatedMount":"/data","env":[{{"name":"VOLUME_ROOT","value":"/data"}}{extra_env}]}}"#
        ),
    )
    .unwrap();
}

/// Connects through the directory's descriptor: the full path of a socket
/// under a long exec root does not fit in a unix socket address.
fn connect(sock: &Path) -> std::io::Result<UnixStream> {
    let dir = std::fs::File::open(sock.parent().unwrap())?;
    let short = format!(
        "/proc/self/fd/{}/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir),
        sock.file_name().unwrap().to_string_lossy()
    );
    UnixStream::connect(short)
}

fn call(sock: &Path, path: &str, body: &str) -> String {
    let mut s = connect(sock).unwrap();
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
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut b = vec![0; len];
    r.read_exact(&mut b).unwrap();
    String::from_utf8(b).unwrap()
}

fn mounted_under(dir: &Path) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter(|l| l.contains(&*dir.to_string_lossy()))
        .count()
}

#[test]
fn enable_speak_disable_and_failures() {
    if !is_root() {
        eprintln!("runc needs root; CI runs as root");
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("prt")
        .tempdir_in("/tmp")
        .unwrap();
    let root = tmp.path().join("root");
    // Long enough that `<run>/<id>/socket/sample.sock` passes the 108 bytes
    // of a unix socket address: enable must cope.
    let run = tmp
        .path()
        .join("run-under-a-directory-name-long-enough-to-matter");
    let with_run = |c: &mut std::process::Command| {
        c.arg("--exec-root").arg(&run);
    };
    let ctx = tmp.path().join("ctx");
    context(&ctx, "/volume-plugin", "");
    let mut c = pluginctl(&root);
    with_run(&mut c);
    ok(&c.args(["create", "sample"]).arg(&ctx).output().unwrap());
    let mut c = pluginctl(&root);
    with_run(&mut c);
    ok(&c.args(["enable", "sample"]).output().unwrap());
    let id = ok(&pluginctl(&root)
        .args(["inspect", "--format", "{{.Id}}", "sample"])
        .output()
        .unwrap())
    .trim()
    .to_owned();
    let sock = run.join(&id).join("socket/sample.sock");
    assert!(sock.as_os_str().len() > 108, "{}", sock.display());
    assert_eq!(
        call(&sock, "/Plugin.Activate", "{}"),
        r#"{"Implements":["VolumeDriver"]}"#
    );
    assert_eq!(
        call(&sock, "/VolumeDriver.Create", r#"{"Name":"v1"}"#),
        r#"{"Err":""}"#
    );
    let m = call(&sock, "/VolumeDriver.Mount", r#"{"Name":"v1","ID":"c1"}"#);
    assert!(m.contains("/data/v1"), "{m}");
    // The volume is on the host, through the propagated mount.
    let host_side = root.join("plugins").join(&id).join("propagated-mount/v1");
    assert!(host_side.is_dir());
    assert_eq!(
        ok(&pluginctl(&root)
            .args(["ls", "-q", "--filter", "enabled=true"])
            .output()
            .unwrap())
        .trim(),
        &id[..12]
    );
    // Its output is in its log.
    let logs = ok(&pluginctl(&root)
        .args(["logs", "--tail", "1", "sample"])
        .output()
        .unwrap());
    assert!(
        logs.contains("volume-plugin: serving on /run/docker/plugins/sample.sock"),
        "{logs}"
    );
    assert_eq!(logs.lines().count(), 1);
    // The stored rootfs is never written: the plugin's writes go to the overlay.
    assert!(
        !root
            .join("plugins")
            .join(&id)
            .join("rootfs/data/v1")
            .exists()
    );
    let mut c = pluginctl(&root);
    with_run(&mut c);
    ok(&c.args(["disable", "sample"]).output().unwrap());
    assert_eq!(mounted_under(tmp.path()), 0, "nothing stays mounted");
    assert!(!run.join(&id).exists());
    assert!(connect(&sock).is_err());
    assert!(host_side.is_dir(), "data in the propagated mount survives");

    // An entrypoint that cannot run: the error says it exited, with the log.
    let bad = tmp.path().join("bad");
    context(&bad, "/nonexistent", "");
    ok(&pluginctl(&root)
        .args(["create", "bad"])
        .arg(&bad)
        .output()
        .unwrap());
    let mut c = pluginctl(&root);
    with_run(&mut c);
    let err = fails(
        &c.args(["enable", "--timeout", "10", "bad"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("exited") && err.contains("plugin.log"),
        "{err}"
    );
    assert_eq!(mounted_under(tmp.path()), 0);
    let v: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
        .args(["inspect", "bad"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(v[0]["Enabled"], serde_json::json!(false));

    // A socket that never appears (it is made elsewhere): a timeout naming it.
    let quiet = tmp.path().join("quiet");
    context(
        &quiet,
        "/volume-plugin",
        r#",{"name":"SOCKET_DIR","value":"/data"}"#,
    );
    ok(&pluginctl(&root)
        .args(["create", "quiet"])
        .arg(&quiet)
        .output()
        .unwrap());
    let mut c = pluginctl(&root);
    with_run(&mut c);
    let started = std::time::Instant::now();
    let err = fails(
        &c.args(["enable", "--timeout", "2", "quiet"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("no answer on") && err.contains("sample.sock"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(mounted_under(tmp.path()), 0);

    // rm -f of an enabled plugin disables it first.
    let mut c = pluginctl(&root);
    with_run(&mut c);
    ok(&c.args(["enable", "sample"]).output().unwrap());
    let mut c = pluginctl(&root);
    with_run(&mut c);
    let err = fails(&c.args(["rm", "sample"]).output().unwrap());
    assert!(err.contains("enabled"), "{err}");
    let mut c = pluginctl(&root);
    with_run(&mut c);
    ok(&c.args(["rm", "-f", "sample"]).output().unwrap());
    assert_eq!(mounted_under(tmp.path()), 0);
}
