//! What the store, lifecycle, crash and Docker tests share: the binary
//! with a root, and the checks of its exit.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `pluginctl` binary of this build (`target/<profile>/pluginctl`).
pub fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target profile directory")
        .join("pluginctl")
}

/// `pluginctl --root ROOT`, with no stdin (so never a terminal to ask on)
/// and none of this machine's registry host files (`--hosts-dir` still
/// names some).
pub fn pluginctl(root: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--root")
        .arg(root)
        .env("PLUGINCTL_HOSTS_DIR", "")
        .stdin(Stdio::null());
    c
}

/// Every file, directory and link under `dir` with its content's
/// checksum (files), target (links) and mode: equal trees give equal lists.
pub fn tree(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let what = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_owned()
            } else if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else {
                pluginctl_testkit::image::sha256_of(&std::fs::read(&p).unwrap())
            };
            out.push(format!("{rel} {:o} {what}", m.mode() & 0o7777));
        }
    }
    out.sort();
    out
}

/// The stdout of a command that must succeed.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

/// The stderr of a command that must fail with status 1.
pub fn fails(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).expect("UTF-8 output")
}

/// The static sample volume plugin `cargo xtask test` builds.
pub fn volume_plugin() -> PathBuf {
    sample_plugin("volume-plugin")
}

/// A static sample plugin `cargo xtask test` builds (`volume-plugin`, and
/// `network-plugin`, `ipam-plugin`, `authz-plugin`, `log-plugin` of
/// `examples/driver-plugins`).
pub fn sample_plugin(bin: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/x86_64-unknown-linux-gnu");
    ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join(bin))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{}/debug/{bin} is missing: `cargo xtask test` builds it (static)",
                target.display()
            )
        })
}

/// A tar of one file, the static busybox, at `<dir>/busybox.tar`: an image
/// for `docker import` and `podman import`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("busybox-static: `cargo xtask test` installs it");
    let content = dir.join("busybox-image");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::copy(busybox, content.join("busybox")).unwrap();
    let tar = dir.join("busybox.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&content)
            .arg("-cf")
            .arg(&tar)
            .arg("busybox")
            .status()
            .unwrap()
            .success()
    );
    tar
}

/// SIGINT to a process, as Ctrl-C sends it.
pub fn interrupt(pid: u32) {
    assert!(
        Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Whether the tests run as root (runc, mounts and dockerd need it).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// A create context of Docker's sample config (`testdata`) and a
/// one-file rootfs: nothing in it runs.
pub fn sample_context(dir: &Path) {
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    std::fs::write(dir.join("rootfs/volume-stub"), b"#!/bin/sh\n").unwrap();
    std::fs::copy(
        testdata("plugin-context-config.json"),
        dir.join("config.json"),
    )
    .unwrap();
}

/// A file of `testdata/docker-20.10/`.
pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/docker-20.10")
        .join(name)
}

/// Stops the plugins a test left running under an exec root, whether the
/// test passed or panicked: each supervisor gets SIGTERM (it stops its
/// plugin, unpublishes and unmounts), and a supervisor still there after
/// 15 s gets SIGKILL. Declare it after the temporary directory, so that it
/// drops first.
pub struct Supervisors(pub PathBuf);

impl Drop for Supervisors {
    fn drop(&mut self) {
        use pluginctl_runtime::supervise::live;
        let signal = |sig: &str| {
            for (_, pid) in live(&self.0) {
                let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
            }
        };
        signal("-TERM");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !live(&self.0).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        signal("-KILL");
    }
}

/// A plugin's rootfs as it runs, to look at: its flattened tree (the flat
/// driver, older roots), or its layer chain mounted read-only through
/// `pluginctl layers mount` (unmounted on drop).
pub struct RootfsView {
    path: PathBuf,
    mount: Option<(PathBuf, tempfile::TempDir)>,
}

impl RootfsView {
    /// Where the tree is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootfsView {
    fn drop(&mut self) {
        if let Some((root, exec)) = &self.mount {
            let _ = pluginctl(root)
                .arg("--exec-root")
                .arg(exec.path())
                .args(["layers", "umount", "--force"])
                .arg(&self.path)
                .output();
        }
    }
}

/// The top of a plugin's layer chain, from its record (`None`: flattened).
pub fn chain_of(root: &Path, id: &str) -> Option<String> {
    let rec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("plugins").join(id).join("plugin.json")).unwrap(),
    )
    .unwrap();
    rec["chain"].as_str().map(str::to_owned)
}

/// The rootfs of plugin `id` (its full ID) under `root`.
pub fn rootfs_view(root: &Path, id: &str) -> RootfsView {
    let Some(chain) = chain_of(root, id) else {
        return RootfsView {
            path: root.join("plugins").join(id).join("rootfs"),
            mount: None,
        };
    };
    let exec = tempfile::tempdir().unwrap();
    let target = exec.path().join("view");
    ok(&pluginctl(root)
        .arg("--exec-root")
        .arg(exec.path())
        .args(["layers", "mount", &chain])
        .arg(&target)
        .output()
        .unwrap());
    RootfsView {
        path: target,
        mount: Some((root.to_owned(), exec)),
    }
}
